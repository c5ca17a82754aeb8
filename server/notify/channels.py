"""The channels: the log (development), e-mail over SMTP, SMS through a generic HTTP gateway."""

from __future__ import annotations

import asyncio
import logging
import smtplib
from email.message import EmailMessage

import aiohttp

from server.notify.base import Notification, Notifier, NotifyError

log = logging.getLogger(__name__)


class LogNotifier(Notifier):
    channel = "log"

    async def send(self, notification: Notification) -> None:
        # Subject only: bodies may name a patient and a time, which logs must not keep.
        log.info("notification (log channel): %s", notification.subject)


class SmtpNotifier(Notifier):
    channel = "email"
    carries_attachments = True

    def __init__(self, host: str, port: int, sender: str, *, username: str | None = None,
                 password: str | None = None, starttls: bool = False, timeout: float = 20.0) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.username, self.password, self.starttls, self.timeout = username, password, starttls, timeout

    def accepts(self, notification: Notification) -> bool:
        return bool(notification.email)

    def _message(self, notification: Notification) -> EmailMessage:
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = notification.email or ""
        message["Subject"] = notification.subject
        message.set_content(notification.body)
        for attachment in notification.attachments:
            maintype, _, subtype = attachment.content_type.partition("/")
            subtype = subtype.partition(";")[0]
            message.add_attachment(attachment.data, maintype=maintype, subtype=subtype.strip(),
                                   filename=attachment.filename)
        return message

    def _send_blocking(self, message: EmailMessage) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(message)

    async def send(self, notification: Notification) -> None:
        # smtplib blocks: a thread keeps the event loop (and every call in progress) responsive.
        try:
            await asyncio.to_thread(self._send_blocking, self._message(notification))
        except (OSError, smtplib.SMTPException) as exc:
            raise NotifyError(f"SMTP delivery failed: {type(exc).__name__}") from None


class HttpSmsNotifier(Notifier):
    """POSTs {"to", "message"} as JSON to a gateway URL with a bearer token (most Vietnamese SMS
    brand-name gateways accept this shape or sit behind a small adapter that does)."""

    channel = "sms"

    def __init__(self, url: str, token: str | None = None, timeout: float = 10.0) -> None:
        self.url, self.token, self.timeout = url, token, timeout

    def accepts(self, notification: Notification) -> bool:
        return bool(notification.phone)

    async def send(self, notification: Notification) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        text = f"{notification.subject}\n{notification.body}"[:640]
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout)) as http, \
                    http.post(self.url, json={"to": notification.phone, "message": text}, headers=headers) as reply:
                if reply.status >= 300:
                    raise NotifyError(f"SMS gateway answered {reply.status}")
        except aiohttp.ClientError as exc:
            raise NotifyError(f"SMS gateway unreachable: {type(exc).__name__}") from None
