"""Screen sharing between two real browsers through our server.

The doctor's page shares its screen with the page's own button: headless Chromium answers
getDisplayMedia with its virtual display (the window), with no picker (``--use-fake-ui-for-media-stream``,
already among the browser tests' flags). The patient's page decodes it in a separate tile labelled
"<name> — màn hình" while the doctor's camera keeps playing; stopping the share removes that tile
only.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Page

from server.demo import Demo
from tests.e2e.helpers import wait_for, wait_media_rising
from tests.e2e.test_call import open_room

pytestmark = pytest.mark.e2e

# framesDecoded and frameWidth of the inbound video of each source ("camera" / "screen"), by the mids
# the server's offer announced.
VIDEO_BY_SOURCE_JS = """
async () => {
  const call = window.caunoi;
  if (!call || !call.subscriber) return {};
  const sourceOf = call.trackSources;
  const out = {};
  (await call.subscriber.getStats()).forEach((s) => {
    if (s.type !== 'inbound-rtp' || s.kind !== 'video' || !sourceOf.has(s.mid)) return;
    out[sourceOf.get(s.mid)] = {frames: s.framesDecoded || 0, width: s.frameWidth || 0};
  });
  return out;
}
"""


async def video_by_source(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = await page.evaluate(VIDEO_BY_SOURCE_JS)
    return result


async def test_the_doctor_shares_a_screen_the_patient_sees_it_apart_from_the_camera(
    live: tuple[TestServer, Demo],
    new_user_page: Callable[[str], Awaitable[Page]],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    _server, demo = live
    doctor_name = demo.users["doctor"].display_name
    title = f"Khám từ xa · {demo.users['patient1'].display_name}"
    doctor = await new_user_page(demo.users["doctor"].email)
    patient = await new_user_page(demo.users["patient1"].email)
    await open_room(doctor, title)
    await open_room(patient, title)
    await wait_media_rising(patient, "the patient")

    await doctor.click("#share-screen")
    await doctor.wait_for_selector("#share-screen[aria-pressed=true]")  # once the screen is picked
    await patient.wait_for_selector(f"figure.screen figcaption:has-text('{doctor_name} — màn hình')")
    start: dict[str, Any] = {}

    async def both_decode() -> str | None:
        video = await video_by_source(patient)
        if "screen" not in video or "camera" not in video:
            return f"the patient receives {video}"
        if not start:
            start.update({source: v["frames"] for source, v in video.items()})
        if video["screen"]["frames"] < start["screen"] + 10 or video["camera"]["frames"] < start["camera"] + 10:
            return f"the patient decodes {video} (from {start})"
        return None

    await wait_for(both_decode, 25)
    # At full resolution: the patient decodes the screen as wide as the doctor captured it (headless
    # Chromium's display is the window: 390 px on this phone-sized page), never a scaled-down layer.
    captured = await doctor.evaluate("window.caunoi.screen.getVideoTracks()[0].getSettings().width")
    video = await video_by_source(patient)
    assert captured and video["screen"]["width"] == captured, (captured, video)
    assert await patient.locator("figure.remote").count() == 2  # the doctor's camera tile and the screen

    # Stop sharing: the screen tile goes, the camera tile stays and keeps playing.
    await doctor.click("#share-screen")
    await doctor.wait_for_selector("#share-screen[aria-pressed=false]")

    async def screen_gone() -> str | None:
        count = await patient.locator("figure.screen").count()
        return None if count == 0 else "the patient still shows the screen tile"

    await wait_for(screen_gone, 10)
    assert await patient.locator("figure.remote").count() == 1
    camera_at = (await video_by_source(patient))["camera"]["frames"]

    async def camera_goes_on() -> str | None:
        frames = (await video_by_source(patient)).get("camera", {}).get("frames", 0)
        return None if frames > camera_at + 15 else f"the camera is at {frames} frames (was {camera_at})"

    await wait_for(camera_goes_on, 10)

    # Sharing again works (the same media section is reused).
    await doctor.click("#share-screen")
    await patient.wait_for_selector("figure.screen")
    screen_at: dict[str, int] = {}

    async def screen_again() -> str | None:
        video = await video_by_source(patient)
        if "screen" not in video:
            return f"the patient receives {video}"
        screen_at.setdefault("frames", video["screen"]["frames"])
        return None if video["screen"]["frames"] > screen_at["frames"] + 10 else f"screen at {video['screen']}"

    await wait_for(screen_again, 20)

    tracebacks = [r for r in caplog.records if r.exc_info and r.levelno >= logging.ERROR]
    assert not tracebacks, [r.getMessage() for r in tracebacks]
