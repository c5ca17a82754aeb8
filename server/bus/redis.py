"""The Redis bus: several nodes share channels through Redis pub/sub.

One Redis connection per node carries every subscribed channel; a reader task fans messages out
to the local subscriptions, so a thousand participants cost one connection, not a thousand.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import defaultdict

import redis.asyncio as aioredis

from server.bus.base import Bus, Message, Subscription

log = logging.getLogger(__name__)


class RedisBus(Bus):
    def __init__(self, url: str, prefix: str = "caunoi:") -> None:
        self._redis = aioredis.from_url(url, decode_responses=True)
        self._pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        self._prefix = prefix
        self._subscriptions: dict[str, set[Subscription]] = defaultdict(set)
        self._reader: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def publish(self, channel: str, message: Message) -> None:
        await self._redis.publish(self._prefix + channel, json.dumps(message, separators=(",", ":")))

    async def subscribe(self, channel: str) -> Subscription:
        subscription = Subscription(channel)
        async with self._lock:
            if channel not in self._subscriptions:
                await self._pubsub.subscribe(self._prefix + channel)
            self._subscriptions[channel].add(subscription)
            if self._reader is None:
                self._reader = asyncio.create_task(self._read(), name="redis-bus-reader")
        return subscription

    async def unsubscribe(self, subscription: Subscription) -> None:
        async with self._lock:
            subscribers = self._subscriptions.get(subscription.channel)
            if subscribers is not None:
                subscribers.discard(subscription)
                if not subscribers:
                    del self._subscriptions[subscription.channel]
                    await self._pubsub.unsubscribe(self._prefix + subscription.channel)
        subscription.deliver(None)

    async def _read(self) -> None:
        while True:
            try:
                if not self._pubsub.subscribed:
                    await asyncio.sleep(0.05)
                    continue
                item = await self._pubsub.get_message(timeout=1.0)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis restarting: keep the node alive, retry
                log.warning("redis bus read failed: %s", exc)
                await asyncio.sleep(1.0)
                continue
            if item is None or item.get("type") != "message":
                continue
            channel = str(item["channel"])[len(self._prefix):]
            try:
                message = json.loads(item["data"])
            except ValueError:
                message = None
            if not isinstance(message, dict):  # None would read as "subscription closed"
                log.warning("dropped a malformed bus message on %s", channel)
                continue
            for subscription in list(self._subscriptions.get(channel, ())):
                subscription.deliver(message)

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except Exception:
            return False

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        for subscribers in list(self._subscriptions.values()):
            for subscription in list(subscribers):
                subscription.deliver(None)
        self._subscriptions.clear()
        await self._pubsub.aclose()
        await self._redis.aclose()
