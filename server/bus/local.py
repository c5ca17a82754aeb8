"""The in-process bus: the embedded default, one node."""

from __future__ import annotations

from collections import defaultdict

from server.bus.base import Bus, Message, Subscription


class LocalBus(Bus):
    def __init__(self) -> None:
        self._subscriptions: dict[str, set[Subscription]] = defaultdict(set)

    async def publish(self, channel: str, message: Message) -> None:
        for subscription in list(self._subscriptions.get(channel, ())):
            subscription.deliver(message)

    async def subscribe(self, channel: str) -> Subscription:
        subscription = Subscription(channel)
        self._subscriptions[channel].add(subscription)
        return subscription

    async def unsubscribe(self, subscription: Subscription) -> None:
        subscribers = self._subscriptions.get(subscription.channel)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._subscriptions[subscription.channel]
        subscription.deliver(None)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        for subscribers in list(self._subscriptions.values()):
            for subscription in list(subscribers):
                await self.unsubscribe(subscription)
