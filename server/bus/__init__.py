"""The message bus: one interface, an in-process and a Redis implementation chosen at start-up."""

from server.bus.base import Bus, Subscription
from server.bus.local import LocalBus

__all__ = ["Bus", "LocalBus", "Subscription"]
