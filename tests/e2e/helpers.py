"""Polling helpers that explain failure (as LiveKit's tests do)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from playwright.async_api import Page

INBOUND_STATS_JS = """
async () => {
  const pc = window.caunoi && window.caunoi.subscriber;
  if (!pc) return null;
  const out = {video: null, audio: null};
  (await pc.getStats()).forEach((s) => {
    if (s.type !== 'inbound-rtp') return;
    if (s.kind === 'video') out.video = {framesDecoded: s.framesDecoded || 0, frameWidth: s.frameWidth || 0,
                                         frameHeight: s.frameHeight || 0};
    if (s.kind === 'audio') out.audio = {totalSamplesReceived: s.totalSamplesReceived || 0};
  });
  return out;
}
"""


async def wait_for(check: Callable[[], Awaitable[str | None]], timeout: float, interval: float = 0.25) -> None:
    """Poll ``check`` until it returns None; on timeout fail with the last reason it gave."""
    deadline = time.monotonic() + timeout
    reason: str | None = "never checked"
    while time.monotonic() < deadline:
        reason = await check()
        if reason is None:
            return
        await asyncio.sleep(interval)
    raise AssertionError(f"after {timeout:.0f} s: {reason}")


async def inbound(page: Page) -> dict[str, Any] | None:
    result: dict[str, Any] | None = await page.evaluate(INBOUND_STATS_JS)
    return result


async def wait_media_rising(page: Page, who: str, timeout: float = 20.0) -> None:
    """Video framesDecoded and audio totalSamplesReceived both rise on ``page``."""
    first: dict[str, Any] = {}

    async def check() -> str | None:
        stats = await inbound(page)
        if not stats or not stats["video"] or not stats["audio"]:
            return f"{who} has no inbound video and audio yet ({stats})"
        video, audio = stats["video"], stats["audio"]
        if not first:
            first.update(frames=video["framesDecoded"], samples=audio["totalSamplesReceived"])
        if video["framesDecoded"] <= first["frames"] or video["framesDecoded"] < 10:
            return f"{who} decoded {video['framesDecoded']} video frames (started at {first['frames']})"
        if audio["totalSamplesReceived"] <= first["samples"]:
            return f"{who} received {audio['totalSamplesReceived']} audio samples (not rising)"
        if not video["frameWidth"] or not video["frameHeight"]:
            return f"{who} decodes video without a frame size"
        return None

    await wait_for(check, timeout)
