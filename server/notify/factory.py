"""Build the configured channels from settings."""

from __future__ import annotations

from server.notify.base import Notifier
from server.notify.channels import HttpSmsNotifier, LogNotifier, SmtpNotifier
from server.settings import Settings, SettingsError


def notifiers_from(settings: Settings) -> list[Notifier]:
    result: list[Notifier] = []
    for name in settings.notifiers:
        if name == "log":
            result.append(LogNotifier())
        elif name == "email":
            result.append(SmtpNotifier(settings.smtp_host, settings.smtp_port, settings.smtp_from,
                                       username=settings.smtp_username, password=settings.smtp_password,
                                       starttls=settings.smtp_starttls))
        elif name == "sms":
            if not settings.sms_gateway_url:
                raise SettingsError("CAUNOI_NOTIFIERS includes sms but CAUNOI_SMS_GATEWAY_URL is not set")
            result.append(HttpSmsNotifier(settings.sms_gateway_url, settings.sms_gateway_token))
    return result
