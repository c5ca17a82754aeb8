"""Simulcast through the app: the teacher's browser publishes two layers; a student who asks for the
thumbnail receives the low layer while the other receives the high one; "off" keeps the audio."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Page

from server.demo import Demo
from tests.e2e.helpers import inbound, wait_for, wait_media_rising

pytestmark = pytest.mark.e2e


async def test_a_thumbnail_gets_the_low_layer(
    live: tuple[TestServer, Demo], new_user_page: Callable[[str], Awaitable[Page]]
) -> None:
    _server, demo = live
    pages = {}
    for handle in ("teacher", "student1", "student2"):
        page = await new_user_page(demo.users[handle].email)
        await page.click("text=Lớp 5A · Toán")
        await page.wait_for_url("**/rooms/r-*")
        pages[handle] = page
    await wait_media_rising(pages["student1"], "student 1")
    await wait_media_rising(pages["student2"], "student 2")
    teacher_id = demo.users["teacher"].id

    async def widths() -> dict[str, int]:
        """The width each student decodes of the teacher's video (the highest inbound video width)."""
        result = {}
        for handle in ("student1", "student2"):
            result[handle] = await pages[handle].evaluate(f"""async () => {{
                const owners = window.caunoi.trackOwners; let width = 0;
                (await window.caunoi.subscriber.getStats()).forEach((s) => {{
                  if (s.type === 'inbound-rtp' && s.kind === 'video' && owners.get(s.mid) === '{teacher_id}')
                    width = Math.max(width, s.frameWidth || 0);
                }});
                return width; }}""")
        return result

    async def full_size() -> str | None:
        w = await widths()
        return None if w["student1"] >= 640 and w["student2"] >= 640 else f"students decode widths {w}"

    await wait_for(full_size, 20)
    await pages["student2"].evaluate(f"window.caunoi.setQuality('{teacher_id}', 'low')")

    async def thumbnail() -> str | None:
        w = await widths()
        return None if w["student2"] <= 320 and w["student1"] >= 640 else f"widths {w} (want ≤ 320 for student 2)"

    await wait_for(thumbnail, 20)
    # Audio only: video stops arriving, audio keeps flowing.
    await pages["student2"].evaluate(f"window.caunoi.setQuality('{teacher_id}', 'off')")
    await pages["student2"].wait_for_timeout(1500)
    before = await inbound(pages["student2"])
    await pages["student2"].wait_for_timeout(2000)
    after = await inbound(pages["student2"])
    assert before and after and after["audio"]["totalSamplesReceived"] > before["audio"]["totalSamplesReceived"]
