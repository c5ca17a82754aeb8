"""Notifications (reminders, confirmations) through pluggable channels: log, e-mail, SMS."""

from server.notify.base import Attachment, Notification, Notifier

__all__ = ["Attachment", "Notification", "Notifier"]
