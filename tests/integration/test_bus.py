"""The message bus (server/bus) against its two implementations: in-process and real Redis."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import redis.asyncio as aioredis

from server.bus.base import Bus, Message, Subscription
from server.bus.local import LocalBus
from server.bus.redis import RedisBus
from tests.conftest import REDIS_URL

PREFIX = "caunoi:"
MAXSIZE = 1024  # Subscription's default bound
WAIT = 5.0  # seconds a message may take to arrive through Redis
QUIET = 0.3  # seconds to wait before concluding that nothing arrives


def channel_name() -> str:
    return f"test-{uuid.uuid4().hex}"


async def next_message(subscription: Subscription) -> Message | None:
    return await asyncio.wait_for(subscription.get(), WAIT)


async def assert_nothing_arrives(subscription: Subscription) -> None:
    with pytest.raises(TimeoutError):
        message = await asyncio.wait_for(subscription.get(), QUIET)
        pytest.fail(f"unexpected message on {subscription.channel}: {message!r}")


async def eventually(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting until {what}")
        await asyncio.sleep(0.01)


@pytest.fixture
async def redis_client() -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(REDIS_URL, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


async def redis_subscribers(client: aioredis.Redis, channel: str) -> int:
    counts = dict(await client.pubsub_numsub(PREFIX + channel))
    return int(counts.get(PREFIX + channel, 0))


async def wait_redis_subscribers(client: aioredis.Redis, channel: str, count: int) -> None:
    """Redis confirms (UN)SUBSCRIBE asynchronously; wait until it counts `count` node connections."""
    deadline = time.monotonic() + WAIT
    while (current := await redis_subscribers(client, channel)) != count:
        if time.monotonic() > deadline:
            pytest.fail(f"Redis shows {current} subscribers on {channel}, expected {count}")
        await asyncio.sleep(0.01)


@pytest.fixture(params=["local", pytest.param("redis", marks=pytest.mark.redis)])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[Bus]:
    instance: Bus = LocalBus() if request.param == "local" else RedisBus(REDIS_URL)
    try:
        yield instance
    finally:
        await instance.close()


@pytest.fixture
def subscribed(bus: Bus, request: pytest.FixtureRequest) -> Callable[[str], Awaitable[Subscription]]:
    """Subscribe, and on Redis wait until the server has the subscription (no lost first message)."""

    async def _subscribe(channel: str) -> Subscription:
        subscription = await bus.subscribe(channel)
        if isinstance(bus, RedisBus):
            client = aioredis.from_url(REDIS_URL, decode_responses=True)
            try:
                await wait_redis_subscribers(client, channel, 1)
            finally:
                await client.aclose()
        return subscription

    return _subscribe


async def test_publish_subscribe_delivers_in_order(
    bus: Bus, subscribed: Callable[[str], Awaitable[Subscription]]
) -> None:
    channel = channel_name()
    subscription = await subscribed(channel)
    sent = [{"seq": i, "text": f"tin nhắn {i}", "nested": {"ok": i % 2 == 0}} for i in range(50)]
    for message in sent:
        await bus.publish(channel, message)
    received = [await next_message(subscription) for _ in sent]
    assert received == sent
    await assert_nothing_arrives(subscription)


async def test_two_subscribers_on_one_channel_both_get_every_message(
    bus: Bus, subscribed: Callable[[str], Awaitable[Subscription]]
) -> None:
    channel = channel_name()
    first = await subscribed(channel)
    second = await subscribed(channel)
    assert first is not second
    for i in range(5):
        await bus.publish(channel, {"seq": i})
    for subscription in (first, second):
        assert [await next_message(subscription) for _ in range(5)] == [{"seq": i} for i in range(5)]


async def test_subscriber_on_another_channel_gets_nothing(
    bus: Bus, subscribed: Callable[[str], Awaitable[Subscription]]
) -> None:
    channel = channel_name()
    listener = await subscribed(channel)
    others = [await subscribed(channel + "-other"), await subscribed(channel[:-1])]
    await bus.publish(channel, {"for": "listener"})
    # Once the listener has its message the fan-out is done: the others would have theirs too.
    assert await next_message(listener) == {"for": "listener"}
    for other in others:
        await assert_nothing_arrives(other)


async def test_unsubscribe_ends_iteration_and_stops_delivery(
    bus: Bus, subscribed: Callable[[str], Awaitable[Subscription]]
) -> None:
    channel = channel_name()
    leaving = await subscribed(channel)
    staying = await subscribed(channel)
    received: list[Message] = []

    async def consume() -> None:
        async for message in leaving:
            received.append(message)

    consumer = asyncio.create_task(consume())
    try:
        for i in range(3):
            await bus.publish(channel, {"seq": i})
        await eventually(lambda: len(received) == 3, "the consumer has three messages")
        await bus.unsubscribe(leaving)
        await asyncio.wait_for(consumer, WAIT)  # `async for` ends on unsubscribe
    finally:
        consumer.cancel()
    assert received == [{"seq": i} for i in range(3)]

    await bus.publish(channel, {"seq": "after"})
    for i in range(3):
        assert await next_message(staying) == {"seq": i}
    assert await next_message(staying) == {"seq": "after"}
    await assert_nothing_arrives(leaving)


async def test_unsubscribe_returns_none_from_get(
    bus: Bus, subscribed: Callable[[str], Awaitable[Subscription]]
) -> None:
    channel = channel_name()
    subscription = await subscribed(channel)
    await bus.unsubscribe(subscription)
    assert await next_message(subscription) is None
    await bus.publish(channel, {"late": True})
    await assert_nothing_arrives(subscription)

    # The channel is usable again by a new subscriber.
    again = await subscribed(channel)
    await bus.publish(channel, {"again": True})
    assert await next_message(again) == {"again": True}
    await assert_nothing_arrives(subscription)


async def test_slow_subscriber_queue_is_bounded(
    bus: Bus, subscribed: Callable[[str], Awaitable[Subscription]]
) -> None:
    channel = channel_name()
    slow = await subscribed(channel)
    extra = 25
    for i in range(MAXSIZE + extra):
        await bus.publish(channel, {"seq": i})
    await eventually(lambda: slow.dropped == extra, f"{extra} messages are dropped")
    assert slow._queue.qsize() == MAXSIZE
    assert slow._queue.maxsize == MAXSIZE

    # More messages never grow the queue: each one drops the oldest.
    for i in range(MAXSIZE + extra, MAXSIZE + extra + 10):
        await bus.publish(channel, {"seq": i})
    await eventually(lambda: slow.dropped == extra + 10, "ten more messages are dropped")
    assert slow._queue.qsize() == MAXSIZE

    received = [await next_message(slow) for _ in range(MAXSIZE)]
    assert received == [{"seq": i} for i in range(extra + 10, MAXSIZE + extra + 10)]
    await assert_nothing_arrives(slow)


async def test_subscription_drops_oldest_and_counts() -> None:
    subscription = Subscription("direct", maxsize=3)
    for i in range(5):
        subscription.deliver({"seq": i})
    assert subscription.dropped == 2
    assert [await subscription.get() for _ in range(3)] == [{"seq": 2}, {"seq": 3}, {"seq": 4}]
    # The end-of-subscription marker still gets in when the queue is full.
    for i in range(3):
        subscription.deliver({"seq": i})
    subscription.deliver(None)
    assert [await subscription.get() for _ in range(3)] == [{"seq": 1}, {"seq": 2}, None]


async def test_close_ends_all_subscriptions(
    bus: Bus, subscribed: Callable[[str], Awaitable[Subscription]]
) -> None:
    first, second = channel_name(), channel_name()
    subscriptions = [await subscribed(first), await subscribed(first), await subscribed(second)]
    await bus.close()
    for subscription in subscriptions:
        assert await next_message(subscription) is None


@pytest.mark.redis
async def test_redis_ping_is_true() -> None:
    bus = RedisBus(REDIS_URL)
    try:
        assert await bus.ping() is True
    finally:
        await bus.close()


@pytest.mark.redis
async def test_redis_ping_is_false_when_redis_is_unreachable() -> None:
    bus = RedisBus("redis://127.0.0.1:1/0")
    try:
        assert await bus.ping() is False
    finally:
        await bus.close()


@pytest.mark.redis
async def test_two_redis_nodes_see_each_others_messages(redis_client: aioredis.Redis) -> None:
    channel = channel_name()
    node_a, node_b = RedisBus(REDIS_URL), RedisBus(REDIS_URL)
    try:
        on_a = await node_a.subscribe(channel)
        on_b = await node_b.subscribe(channel)
        # One Redis connection per node, whatever the number of local subscribers.
        also_on_b = await node_b.subscribe(channel)
        await wait_redis_subscribers(redis_client, channel, 2)
        assert await redis_subscribers(redis_client, channel) == 2

        await node_a.publish(channel, {"from": "a", "seq": 1})
        await node_b.publish(channel, {"from": "b", "seq": 2})
        await node_a.publish(channel, {"from": "a", "seq": 3})
        expected = [{"from": "a", "seq": 1}, {"from": "b", "seq": 2}, {"from": "a", "seq": 3}]
        for subscription in (on_a, on_b, also_on_b):
            assert [await next_message(subscription) for _ in expected] == expected

        # A node whose last local subscriber leaves drops its Redis subscription.
        await node_b.unsubscribe(on_b)
        await node_b.unsubscribe(also_on_b)
        await wait_redis_subscribers(redis_client, channel, 1)
        await node_a.publish(channel, {"from": "a", "seq": 4})
        assert await next_message(on_a) == {"from": "a", "seq": 4}
    finally:
        await node_a.close()
        await node_b.close()


@pytest.mark.redis
async def test_redis_wire_format_is_prefixed_json(redis_client: aioredis.Redis) -> None:
    channel = channel_name()
    bus = RedisBus(REDIS_URL)
    raw = redis_client.pubsub(ignore_subscribe_messages=True)
    try:
        await raw.subscribe(PREFIX + channel)
        await wait_redis_subscribers(redis_client, channel, 1)
        await bus.publish(channel, {"text": "Xin chào", "n": 1})
        deadline = time.monotonic() + WAIT
        item = None
        while item is None and time.monotonic() < deadline:
            item = await raw.get_message(timeout=0.5)
        assert item is not None, "nothing arrived on the prefixed Redis channel"
        assert item["channel"] == PREFIX + channel
        assert json.loads(item["data"]) == {"text": "Xin chào", "n": 1}
    finally:
        await raw.aclose()
        await bus.close()


@pytest.mark.redis
async def test_redis_malformed_message_is_skipped(redis_client: aioredis.Redis) -> None:
    channel = channel_name()
    bus = RedisBus(REDIS_URL)
    try:
        subscription = await bus.subscribe(channel)
        await wait_redis_subscribers(redis_client, channel, 1)
        await redis_client.publish(PREFIX + channel, "this is {not json")
        await redis_client.publish(PREFIX + channel, "")
        await redis_client.publish(PREFIX + channel, json.dumps({"raw": "valid"}))
        await bus.publish(channel, {"after": "malformed"})
        assert await next_message(subscription) == {"raw": "valid"}
        assert await next_message(subscription) == {"after": "malformed"}
        assert subscription.dropped == 0
        await assert_nothing_arrives(subscription)
    finally:
        await bus.close()
