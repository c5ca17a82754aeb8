"""Simulcast from a real browser through media/ alone: one Chromium page publishes three layers,
four Chromium pages subscribe; the one that asks for a thumbnail gets the low layer.

Runs in scripts/netns-run.sh's namespace like every media test: Chromium and the relay meet on the
namespace's veth address; no server/ code and no public STUN server are involved.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright

from media.ice import IceConfig
from media.sfu import Participant, Sfu, TrackInfo

CHROMIUM = "/usr/bin/chromium"
# As tests/e2e (see there): Chromium keeps only the last --disable-features, so Playwright's own list
# is repeated, with WebRtcHideLocalIpsWithMdns so that candidates carry the namespace's address.
DISABLED_FEATURES = (
    "AvoidUnnecessaryBeforeUnloadCheckSync,DestroyProfileOnBrowserClose,HttpsUpgrades,"
    "HttpsFirstBalancedModeAutoEnable,LensOverlay,MediaRouter,PaintHolding,ThirdPartyStoragePartitioning,"
    "AvoidCorsURLLoaderRestartOnRedirect,TcpPortRandomizationWin,OptimizationHints,"
    "NetworkTimeServiceQuerying,AimEnabled,PreconnectToSearch,WebRtcHideLocalIpsWithMdns"
)
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--autoplay-policy=no-user-gesture-required",
        f"--disable-features={DISABLED_FEATURES}"]

WIDTH = 960  # Chromium sends three simulcast layers from 960x540 up

PUBLISH = """async (width) => {
  const canvas = document.createElement('canvas'); canvas.width = width; canvas.height = width * 9 / 16;
  const g = canvas.getContext('2d'); let n = 0;
  setInterval(() => {  // moving squares, so that every frame has something to encode
    n++; g.fillStyle = `hsl(${n % 360},70%,40%)`; g.fillRect(0, 0, canvas.width, canvas.height);
    g.fillStyle = '#fff';
    for (let i = 0; i < 60; i++) g.fillRect((i * 97 + n * 9) % canvas.width, (i * 53 + n * 5) % canvas.height, 30, 30);
  }, 33);
  const audio = new AudioContext(); const tone = audio.createOscillator();
  const out = audio.createMediaStreamDestination(); tone.connect(out); tone.start();
  const pc = window.pc = new RTCPeerConnection({iceServers: []});
  pc.addTransceiver(canvas.captureStream(30).getVideoTracks()[0], {direction: 'sendonly', sendEncodings: [
    {rid: 'l', scaleResolutionDownBy: 4, maxBitrate: 150000},
    {rid: 'm', scaleResolutionDownBy: 2, maxBitrate: 400000},
    {rid: 'h', maxBitrate: 1200000}]});
  pc.addTransceiver(out.stream.getAudioTracks()[0], {direction: 'sendonly'});
  await pc.setLocalDescription();
  await new Promise((done) => { if (pc.iceGatheringState === 'complete') done();
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && done()); });
  return pc.localDescription.sdp;
}"""

ANSWER = """async (offer) => {
  if (!window.pc) {
    const pc = window.pc = new RTCPeerConnection({iceServers: []});
    pc.addEventListener('track', (e) => {
      const element = document.createElement(e.track.kind); element.autoplay = true; element.muted = false;
      element.srcObject = new MediaStream([e.track]); document.body.appendChild(element);
    });
  }
  await pc.setRemoteDescription({type: 'offer', sdp: offer});
  await pc.setLocalDescription();
  await new Promise((done) => { if (pc.iceGatheringState === 'complete') done();
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && done()); });
  return pc.localDescription.sdp;
}"""

STATS = """async () => {
  const out = {frames: 0, width: 0, samples: 0};
  if (!window.pc) return out;
  (await pc.getStats()).forEach((s) => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') {
      out.frames = s.framesDecoded || 0; out.width = s.frameWidth || 0;
    }
    if (s.type === 'inbound-rtp' && s.kind === 'audio') out.samples = s.totalSamplesReceived || 0;
  });
  return out;
}"""


class PageSink:
    """A subscriber page's side of the subscriber connection: answers the relay's offers."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.participant: Participant | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def send_subscriber_offer(self, sdp: str, tracks: list[TrackInfo]) -> None:
        task = asyncio.get_running_loop().create_task(self._answer(sdp))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _answer(self, sdp: str) -> None:
        answer = await self.page.evaluate(ANSWER, sdp)
        assert self.participant is not None
        await self.participant.handle_subscriber_answer(answer)


@pytest.fixture(scope="module")
def chromium_present() -> None:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/services.sh (apt-get install chromium)", pytrace=False)


@pytest.fixture
async def browser(chromium_present: None) -> AsyncIterator[Browser]:
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


async def test_four_browsers_receive_a_simulcast_publisher_and_a_thumbnail_gets_the_low_layer(
        browser: Browser) -> None:
    sfu = Sfu(IceConfig())
    room = sfu.room("class")
    try:
        publisher_page = await browser.new_page()
        teacher = room.add("teacher", PageSink(publisher_page), can_publish=True, can_subscribe=False)
        answer = await teacher.handle_publisher_offer(await publisher_page.evaluate(PUBLISH, WIDTH))
        assert "a=simulcast:recv l;m;h" in answer
        await publisher_page.evaluate("(a) => pc.setRemoteDescription({type: 'answer', sdp: a})", answer)

        pages: list[Page] = []
        for i in range(4):
            page = await browser.new_page()
            sink = PageSink(page)
            student = room.add(f"student{i}", sink, can_publish=False, can_subscribe=True)
            sink.participant = student
            if i == 3:
                student.set_video_layer("teacher", 0)  # this one shows the teacher as a thumbnail
            pages.append(page)

        start = time.monotonic()
        first_frames: float | None = None
        deadline = start + 45
        while True:
            stats: list[dict[str, Any]] = [await page.evaluate(STATS) for page in pages]
            full, thumbnail = stats[:3], stats[3]
            if first_frames is None and all(s["frames"] > 0 for s in stats):
                first_frames = time.monotonic() - start
            done = (all(s["frames"] > 20 and s["samples"] > 0 for s in stats)
                    and all(s["width"] == WIDTH for s in full) and thumbnail["width"] == WIDTH // 4)
            if done:
                break
            if time.monotonic() > deadline:
                camera = teacher.published.get(("video", "camera"))
                layers = camera.bitrates if camera is not None else []
                raise AssertionError(f"after 45 s: pages decode {stats} (want width {WIDTH} for three and "
                                     f"{WIDTH // 4} for the thumbnail); layer bitrates at the relay {layers}")
            await asyncio.sleep(0.5)
        forwarder = teacher.published[("video", "camera")]
        assert forwarder.layers == 3 and all(seen > 0 for seen in forwarder.last_packet_at), "a layer never came"
        # Before the browser turned its top layer on, the others got the best layer it did send.
        assert first_frames is not None and first_frames < 10, f"first frames everywhere after {first_frames} s"
    finally:
        await sfu.close()
