"""What a notification is, and the interface every channel implements."""

from __future__ import annotations

import abc
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str  # e.g. "text/calendar; method=REQUEST"
    data: bytes


@dataclass(frozen=True)
class Notification:
    subject: str
    body: str
    email: str | None = None
    phone: str | None = None
    attachments: tuple[Attachment, ...] = field(default_factory=tuple)


class NotifyError(Exception):
    """The channel refused or could not deliver; the message says why (no personal data)."""


class Notifier(abc.ABC):
    channel: str
    # Whether the channel delivers attachments (e-mail does; a log line or an SMS does not). Senders
    # build attachments such as a confirmation's .ics only when an accepting channel carries them.
    carries_attachments: bool = False

    def accepts(self, notification: Notification) -> bool:
        """Whether this channel can reach the recipient at all (an address or number is known)."""
        return True

    @abc.abstractmethod
    async def send(self, notification: Notification) -> None: ...
