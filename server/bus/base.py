"""The Bus interface: publish JSON-able messages on named channels; subscribe to a channel."""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncIterator
from typing import Any

Message = dict[str, Any]


class Subscription:
    """Messages of one channel, in order. A slow reader loses the oldest messages, never memory."""

    def __init__(self, channel: str, maxsize: int = 1024) -> None:
        self.channel = channel
        self._queue: asyncio.Queue[Message | None] = asyncio.Queue(maxsize)
        self.dropped = 0

    def deliver(self, message: Message | None) -> None:
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(message)

    async def get(self) -> Message | None:
        """The next message, or None once the subscription is closed."""
        return await self._queue.get()

    async def __aiter__(self) -> AsyncIterator[Message]:
        while (message := await self.get()) is not None:
            yield message


class Bus(abc.ABC):
    @abc.abstractmethod
    async def publish(self, channel: str, message: Message) -> None: ...

    @abc.abstractmethod
    async def subscribe(self, channel: str) -> Subscription: ...

    @abc.abstractmethod
    async def unsubscribe(self, subscription: Subscription) -> None: ...

    @abc.abstractmethod
    async def ping(self) -> bool: ...

    @abc.abstractmethod
    async def close(self) -> None: ...
