"""Relay benchmark: one publisher, N subscribers on loopback, Cầu Nối's forwarding relay against
aiortc's MediaRelay (decode + re-encode per subscriber) in the same run.

    python bench/relay.py [--quick] [--sizes 1,2,4] [--relays caunoi,mediarelay] [--png chart.png]
                          [--profile relay.pstats]

Processes: the relay runs in a child process pinned to CPU 0 (``--serve``, a small HTTP control API
on 127.0.0.1); this process, pinned to CPU 1, is the load: the publisher (640x480 30 fps VP8 at
~600 kbps, pre-encoded once so that encoding costs nothing during the run, plus live Opus) and N
lightweight subscribers. A subscriber does ICE, DTLS and SRTP with aiortc, then its RTP is taken off
the socket, unprotected and counted without reassembly or decoding, so that the load generator is
not the bottleneck. Everything stays on 127.0.0.1: aioice offers only that address, no STUN server.

Per N: relay CPU (% of one core, from /proc), delivered video fps per subscriber (min, median), RTP
loss, latency (publisher send -> subscriber arrival of a frame's last packet, minus the same path
without a relay, measured first), relay RSS. A series stops once it cannot hold full rate.
Prints one JSON document; writes a PNG chart (CPU and fps against N).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fractions
import hashlib
import itertools
import json
import math
import os
import signal
import statistics
import struct
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import av
import pylibsrtp
from aiohttp import web
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import AUDIO_PTIME, MediaStreamError, MediaStreamTrack
from aiortc.sdp import SessionDescription

from media.ice import IceConfig, apply_host_addresses

FPS = 30
WIDTH, HEIGHT = 640, 480
BITRATE = 600_000
LOOP_FRAMES = 150  # 5 s of pre-encoded video, a keyframe at the start of each loop
RELAY_CPU, LOAD_CPU = 0, 1
FULL_SIZES = [1, 2, 4, 8, 16, 32, 64, 128, 256]
QUICK_SIZES = [1, 4, 16, 64]
HOLD_FPS, HOLD_LOSS = 0.95, 0.5


def rtc_config() -> RTCConfiguration:
    return RTCConfiguration(iceServers=[])  # never aiortc's default public STUN server


def frame_pts(k: int) -> int:
    """Frame k's RTP timestamp offset: 3000 ticks apart plus a small irregular part (< 1 ms) that never
    repeats in a pattern, so that a subscriber's timestamps can be matched to the publisher's frames
    whatever offset the relay applied."""
    return 3000 * k + int.from_bytes(hashlib.blake2b(k.to_bytes(4, "big"), digest_size=2).digest(), "big") % 89


# --- the relay process -----------------------------------------------------------------------------


class _OfferSink:
    def __init__(self) -> None:
        self.offers: asyncio.Queue[str] = asyncio.Queue()

    async def send_subscriber_offer(self, sdp: str, tracks: list[Any]) -> None:
        self.offers.put_nowait(sdp)


class CaunoiRelay:
    def __init__(self) -> None:
        from media.sfu import Sfu

        self.sfu = Sfu(IceConfig())
        self.room = self.sfu.room("bench")
        self.sinks: dict[str, _OfferSink] = {}

    async def publish(self, sdp: str) -> str:
        participant = self.room.add("publisher", _OfferSink(), can_publish=True, can_subscribe=False)
        return await participant.handle_publisher_offer(sdp)

    async def subscribe(self, sid: str) -> str:
        sink = self.sinks[sid] = _OfferSink()
        self.room.add(sid, sink, can_publish=False, can_subscribe=True)
        return await asyncio.wait_for(sink.offers.get(), 20)

    async def answer(self, sid: str, sdp: str) -> None:
        await self.room.participants[sid].handle_subscriber_answer(sdp)

    async def close(self) -> None:
        await self.sfu.close()


class MediaRelayBaseline:
    """What media/ did before the forwarding relay: aiortc's MediaRelay, one encoder per subscriber."""

    def __init__(self) -> None:
        from aiortc.contrib.media import MediaRelay

        self.relay = MediaRelay()
        self.tracks: dict[str, MediaStreamTrack] = {}
        self.pcs: dict[str, RTCPeerConnection] = {}
        self.drains: list[asyncio.Task[None]] = []

    async def publish(self, sdp: str) -> str:
        pc = self.pcs["publisher"] = RTCPeerConnection(rtc_config())

        @pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            self.tracks[track.kind] = track
            self.drains.append(asyncio.ensure_future(_drain(self.relay.subscribe(track, buffered=False))))

        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return pc.localDescription.sdp

    async def subscribe(self, sid: str) -> str:
        pc = self.pcs[sid] = RTCPeerConnection(rtc_config())
        for kind in ("video", "audio"):
            pc.addTransceiver(self.relay.subscribe(self.tracks[kind], buffered=False), direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        return pc.localDescription.sdp

    async def answer(self, sid: str, sdp: str) -> None:
        await self.pcs[sid].setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))

    async def close(self) -> None:
        for pc in self.pcs.values():
            await pc.close()


async def _drain(track: MediaStreamTrack) -> None:
    with contextlib.suppress(MediaStreamError):
        while True:
            await track.recv()


def serve(kind: str, profile: str | None) -> None:
    os.sched_setaffinity(0, {RELAY_CPU})
    apply_host_addresses(["127.0.0.1"])
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()

    async def main() -> None:
        relay: CaunoiRelay | MediaRelayBaseline = CaunoiRelay() if kind == "caunoi" else MediaRelayBaseline()
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)

        async def handle(request: web.Request) -> web.Response:
            body = await request.json()
            op = request.match_info["op"]
            if op == "publish":
                return web.json_response({"sdp": await relay.publish(body["sdp"])})
            if op == "subscribe":
                return web.json_response({"sdp": await relay.subscribe(body["id"])})
            await relay.answer(body["id"], body["sdp"])
            return web.json_response({})

        app = web.Application()
        app.router.add_post("/{op}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        print(f"PORT {port}", flush=True)
        await stop.wait()
        await relay.close()
        await runner.cleanup()

    asyncio.run(main())
    if profiler is not None and profile:
        profiler.disable()
        profiler.dump_stats(profile)


# --- the publisher ---------------------------------------------------------------------------------


def encode_loop() -> list[bytes]:
    """LOOP_FRAMES of 640x480 VP8 at BITRATE, encoded once with aiortc's encoder settings (CBR, realtime)."""
    codec = av.CodecContext.create("libvpx", "w")
    codec.width, codec.height, codec.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    codec.bit_rate = BITRATE
    codec.time_base = fractions.Fraction(1, FPS)
    codec.framerate = FPS
    codec.gop_size = LOOP_FRAMES
    codec.qmin, codec.qmax = 2, 56
    codec.options = {"deadline": "realtime", "cpu-used": "-6", "lag-in-frames": "0", "minrate": str(BITRATE),
                     "maxrate": str(BITRATE), "bufsize": str(BITRATE), "undershoot-pct": "100",
                     "overshoot-pct": "15", "static-thresh": "1"}
    ramp = bytes(x & 0xFF for x in range(WIDTH + 256))
    frames: list[bytes] = []
    for k in range(LOOP_FRAMES):
        # A moving diagonal ramp: enough detail and motion that CBR spends its budget.
        luma = b"".join(ramp[(k * 4 + y) % 256:][:WIDTH] for y in range(HEIGHT))
        frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
        frame.planes[0].update(luma)
        frame.planes[1].update(bytes([128]) * frame.planes[1].buffer_size)
        frame.planes[2].update(bytes([(k * 2) & 0xFF]) * frame.planes[2].buffer_size)
        frame.pts = k
        frame.time_base = fractions.Fraction(1, FPS)
        frames.append(b"".join(bytes(p) for p in codec.encode(frame)))
    return frames


class EncodedVideoTrack(MediaStreamTrack):
    """Yields pre-encoded VP8 packets at 30 fps; aiortc's sender only packetises them."""

    kind = "video"

    def __init__(self, frames: list[bytes], sent: dict[int, float]) -> None:
        super().__init__()
        self._frames = frames
        self._sent = sent
        self._k = 0
        self._index = 0
        self._start = time.monotonic()
        self.sender: Any = None

    async def recv(self) -> av.Packet:
        k = self._k
        self._k += 1
        await asyncio.sleep(max(0.0, self._start + k / FPS - time.monotonic()))
        # Answer a PLI as an encoder would: aiortc's sender only sets this flag for its encoder, so
        # restart the loop, whose first frame is a keyframe.
        if self.sender is not None and self.sender._RTCRtpSender__force_keyframe:
            self.sender._RTCRtpSender__force_keyframe = False
            self._index = 0
        packet = av.Packet(self._frames[self._index])
        self._index = (self._index + 1) % len(self._frames)
        packet.pts = frame_pts(k)
        packet.time_base = fractions.Fraction(1, 90000)
        self._sent[packet.pts] = time.time()
        return packet


class ToneTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        self._pts = 0
        self._start = time.monotonic()
        samples = int(AUDIO_PTIME * 48000)
        self._tone = b"".join(int(3000 * math.sin(i / 20)).to_bytes(2, "little", signed=True) for i in range(samples))

    async def recv(self) -> av.AudioFrame:
        samples = int(AUDIO_PTIME * 48000)
        await asyncio.sleep(max(0.0, self._start + self._pts / 48000 - time.monotonic()))
        frame = av.AudioFrame(format="s16", layout="mono", samples=samples)
        frame.planes[0].update(self._tone)
        frame.sample_rate = 48000
        frame.pts = self._pts
        frame.time_base = fractions.Fraction(1, 48000)
        self._pts += samples
        return frame


# --- lightweight subscribers -----------------------------------------------------------------------


class Stream:
    __slots__ = ("first", "last", "received")

    def __init__(self) -> None:
        self.received = 0
        self.first: int | None = None
        self.last = 0

    def add(self, seq: int) -> None:
        if self.first is None:
            self.first = self.last = seq
        else:
            ext = self.last + ((seq - self.last + 0x8000) & 0xFFFF) - 0x8000  # unwrap near the last
            self.last = max(self.last, ext)
        self.received += 1

    def expected(self) -> int:
        return 0 if self.first is None else self.last - self.first + 1


class Subscriber:
    """ICE/DTLS by aiortc; RTP counted straight off the socket (unprotect + a header read)."""

    def __init__(self, sid: str) -> None:
        self.sid = sid
        self.pc = RTCPeerConnection(rtc_config())
        self.video_pts: set[int] = set()
        self.streams: dict[int, Stream] = {}
        self.frames: list[tuple[int, float]] = []  # (RTP timestamp, arrival) of each frame's last packet
        self.counting = False
        self.offset: int | None = None

    async def connect(self, http: aiohttp.ClientSession, base: str) -> None:
        async with http.post(f"{base}/subscribe", json={"id": self.sid}) as response:
            offer = (await response.json())["sdp"]
        for media in SessionDescription.parse(offer).media:
            if media.kind == "video":
                self.video_pts |= {c.payloadType for c in media.rtp.codecs if c.payloadType is not None}
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        async with http.post(f"{base}/answer", json={"id": self.sid, "sdp": self.pc.localDescription.sdp}):
            pass

    def take_over_rtp(self) -> bool:
        dtls = self.pc.getTransceivers()[0].receiver.transport
        pair = dtls.transport._connection._nominated.get(1)
        if pair is None or dtls._rx_srtp is None:
            return False
        protocol = pair.protocol
        original: Callable[[bytes, Any], None] = protocol.datagram_received
        unprotect = dtls._rx_srtp.unprotect
        video_pts = self.video_pts
        streams = self.streams
        frames = self.frames
        header = struct.Struct("!HLL")

        def datagram_received(data: bytes, addr: Any) -> None:
            if 127 < data[0] < 192 and not 192 <= data[1] <= 223:  # RTP (RTCP is 192-223 here)
                if not self.counting:
                    return
                try:
                    plain = unprotect(data)
                except pylibsrtp.Error:
                    return
                seq, ts, ssrc = header.unpack_from(plain, 2)
                stream = streams.get(ssrc)
                if stream is None:
                    stream = streams[ssrc] = Stream()
                stream.add(seq)
                if plain[1] & 0x80 and (plain[1] & 0x7F) in video_pts:
                    frames.append((ts, time.time()))
                return
            original(data, addr)

        protocol.datagram_received = datagram_received  # type: ignore[method-assign]
        return True

    def reset(self) -> None:
        self.streams.clear()
        self.frames.clear()


def latencies(sub: Subscriber, sent: dict[int, float]) -> list[float]:
    """Publisher send -> arrival (ms) for each frame, after finding the subscriber's timestamp offset."""
    if not sub.frames:
        return []
    if sub.offset is None:
        newest_first = sorted(sent, reverse=True)
        head = [ts for ts, _ in sub.frames[:12]]
        best, best_hits = None, 0
        for pts in newest_first[:900]:
            offset = (head[0] - pts) % (1 << 32)
            hits = sum(1 for ts in head if (ts - offset) % (1 << 32) in sent)
            if hits > best_hits:
                best, best_hits = offset, hits
        if best is None or best_hits < max(2, len(head) // 2):
            return []
        sub.offset = best
    out = []
    for ts, arrival in sub.frames:
        when = sent.get((ts - sub.offset) % (1 << 32))
        if when is not None:
            out.append((arrival - when) * 1000)
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2) if ordered else 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_busy() -> dict[int, tuple[float, float]]:
    """Per CPU since boot, from /proc/stat: busy seconds (all but idle and iowait), and of those the
    seconds spent in softirq, where the kernel delivers loopback packets (ours, mostly)."""
    busy: dict[int, tuple[float, float]] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for line in Path("/proc/stat").read_text().splitlines():
        name, *values = line.split()
        if name.startswith("cpu") and name != "cpu":
            ticks = [int(v) for v in values]
            busy[int(name[3:])] = ((sum(ticks[:8]) - ticks[3] - ticks[4]) / tick, ticks[6] / tick)
    return busy


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


# --- one series ------------------------------------------------------------------------------------


async def publish(pc: RTCPeerConnection, frames: list[bytes], sent: dict[int, float]) -> None:
    video = EncodedVideoTrack(frames, sent)
    video.sender = pc.addTransceiver(video, direction="sendonly").sender
    pc.addTransceiver(ToneTrack(), direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())


async def wait_connected(subs: list[Subscriber], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    pending = [s for s in subs]
    while pending and time.monotonic() < deadline:
        pending = [s for s in pending if not (s.pc.connectionState == "connected" and s.take_over_rtp())]
        await asyncio.sleep(0.1)
    if pending:
        raise RuntimeError(f"{len(pending)} subscribers did not connect in {timeout} s")


async def measure(subs: list[Subscriber], sent: dict[int, float], pid: int | None, settle: float,
                  window: float, direct_ms: float) -> dict[str, Any]:
    await asyncio.sleep(settle)
    for sub in subs:
        sub.reset()
        sub.counting = True
    busy0 = cpu_busy()
    cpu0, load0, t0 = (cpu_seconds(pid) if pid else 0.0), time.process_time(), time.monotonic()
    sent_before = len(sent)
    await asyncio.sleep(window)
    elapsed = time.monotonic() - t0
    cpu1, load1 = (cpu_seconds(pid) if pid else 0.0), time.process_time()
    busy1 = cpu_busy()
    relay_pct, load_pct = 100 * (cpu1 - cpu0) / elapsed, 100 * (load1 - load0) / elapsed
    for sub in subs:
        sub.counting = False
    sent_fps = (len(sent) - sent_before) / elapsed
    fps = [len(sub.frames) / elapsed for sub in subs]
    received = sum(st.received for sub in subs for st in sub.streams.values())
    expected = sum(st.expected() for sub in subs for st in sub.streams.values())
    lat = [x for sub in subs for x in latencies(sub, sent)]
    return {
        "subscribers": len(subs),
        "cpu_pct": round(relay_pct, 1),
        "fps_sent": round(sent_fps, 1),
        "fps_min": round(min(fps), 1) if fps else 0.0,
        "fps_median": round(statistics.median(fps), 1) if fps else 0.0,
        "loss_pct": round(100 * (1 - received / expected), 2) if expected else 100.0,
        "latency_ms_p50": round(pct(lat, 0.5) - direct_ms, 2) if lat else None,
        "latency_ms_p95": round(pct(lat, 0.95) - direct_ms, 2) if lat else None,
        "latency_raw_ms_p50": pct(lat, 0.5) if lat else None,
        "rss_mb": rss_mb(pid) if pid else 0.0,
        "loadgen_cpu_pct": round(load_pct, 1),
        # Work by other processes on each pinned CPU during the window: a run on a busy machine shows it.
        "other_on_relay_cpu_pct": round(max(0.0, 100 * (busy1[RELAY_CPU][0] - busy0[RELAY_CPU][0]) / elapsed
                                            - (relay_pct if pid else 0.0)), 1),
        "other_on_load_cpu_pct": round(max(0.0, 100 * (busy1[LOAD_CPU][0] - busy0[LOAD_CPU][0]) / elapsed
                                           - load_pct), 1),
        # Part of "other": kernel packet delivery (softirq), which loopback traffic charges to a CPU
        # rather than to the process that sent it.
        "softirq_relay_cpu_pct": round(100 * (busy1[RELAY_CPU][1] - busy0[RELAY_CPU][1]) / elapsed, 1),
        "softirq_load_cpu_pct": round(100 * (busy1[LOAD_CPU][1] - busy0[LOAD_CPU][1]) / elapsed, 1),
    }


def holds(run: dict[str, Any]) -> bool:
    return bool(run["fps_min"] >= HOLD_FPS * run["fps_sent"] and run["loss_pct"] < HOLD_LOSS)


async def direct_latency(frames: list[bytes], window: float) -> float:
    """The same path without a relay: publisher -> lightweight subscriber, median ms."""
    sent: dict[int, float] = {}
    pub = RTCPeerConnection(rtc_config())
    sub = Subscriber("direct")
    try:
        await publish(pub, frames, sent)
        await sub.pc.setRemoteDescription(pub.localDescription)
        sub.video_pts = {c.payloadType for m in SessionDescription.parse(pub.localDescription.sdp).media
                         if m.kind == "video" for c in m.rtp.codecs if c.payloadType is not None}
        await sub.pc.setLocalDescription(await sub.pc.createAnswer())
        await pub.setRemoteDescription(sub.pc.localDescription)
        await wait_connected([sub])
        run = await measure([sub], sent, None, 1.0, window, 0.0)
        return float(run["latency_raw_ms_p50"] or 0.0)
    finally:
        await pub.close()
        await sub.pc.close()


async def series(kind: str, sizes: list[int], frames: list[bytes], settle: float, window: float,
                 direct_ms: float, profile: str | None) -> list[dict[str, Any]]:
    command = [sys.executable, __file__, "--serve", kind] + (["--profile", profile] if profile else [])
    relay = await asyncio.create_subprocess_exec(*command, stdout=asyncio.subprocess.PIPE)
    runs: list[dict[str, Any]] = []
    subs: list[Subscriber] = []
    pub = RTCPeerConnection(rtc_config())
    try:
        assert relay.stdout is not None
        line = await asyncio.wait_for(relay.stdout.readline(), 30)
        base = f"http://127.0.0.1:{int(line.split()[1])}"
        sent: dict[int, float] = {}
        async with aiohttp.ClientSession() as http:
            await publish(pub, frames, sent)
            async with http.post(f"{base}/publish", json={"sdp": pub.localDescription.sdp}) as response:
                answer = (await response.json())["sdp"]
            await pub.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
            await asyncio.sleep(1.0)  # the relay has the publisher's tracks before anyone subscribes
            for n in sizes:
                new = [Subscriber(f"s{i}") for i in range(len(subs), n)]
                for i in range(0, len(new), 16):
                    await asyncio.gather(*(s.connect(http, base) for s in new[i:i + 16]))
                subs += new
                await wait_connected(new, 30 + 0.2 * len(new))
                run = {"relay": kind, **await measure(subs, sent, relay.pid, settle, window, direct_ms)}
                runs.append(run)
                print(json.dumps(run), file=sys.stderr, flush=True)
                if not holds(run):
                    break
    finally:
        if relay.returncode is None:
            relay.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(relay.wait(), 30)
        except TimeoutError:
            relay.kill()
            await relay.wait()
        for sub in subs:
            await sub.pc.close()
        await pub.close()
    return runs


def per_core(runs: list[dict[str, Any]]) -> float:
    held = [r for r in runs if holds(r)]
    if not held:
        return 0.0
    best = max(held, key=lambda r: r["subscribers"])
    return round(best["subscribers"] / max(best["cpu_pct"], 0.1) * 100, 1)


# --- a PNG chart without matplotlib ----------------------------------------------------------------


def write_png(path: str, runs: list[dict[str, Any]]) -> None:
    """Two panels, N on a log2 axis: relay CPU % (left) and fps min (right); blue Cầu Nối, red MediaRelay.
    Grid lines: N = 1, 2, 4 ... 256; CPU every 25 %; fps every 5."""
    w, h, pad = 900, 380, 40
    pixels = bytearray(b"\xff" * (w * h * 3))

    def put(x: int, y: int, colour: tuple[int, int, int]) -> None:
        if 0 <= x < w and 0 <= y < h:
            i = (y * w + x) * 3
            pixels[i:i + 3] = bytes(colour)

    def line(x0: int, y0: int, x1: int, y1: int, colour: tuple[int, int, int], thick: int = 1) -> None:
        steps = max(abs(x1 - x0), abs(y1 - y0), 1)
        for s in range(steps + 1):
            x, y = x0 + (x1 - x0) * s // steps, y0 + (y1 - y0) * s // steps
            for dx in range(thick):
                for dy in range(thick):
                    put(x + dx, y + dy, colour)

    panel_w = (w - 3 * pad) // 2
    panels = [("cpu_pct", 0, max(100.0, *(r["cpu_pct"] for r in runs)), 25.0),
              ("fps_min", 1, 35.0, 5.0)]
    colours = {"caunoi": (30, 90, 200), "mediarelay": (210, 40, 40)}
    for key, index, top, step in panels:
        left = pad + index * (panel_w + pad)
        bottom, height = h - pad, h - 2 * pad

        def xy(n: int, v: float, left: int = left, bottom: int = bottom, height: int = height,
               top: float = top) -> tuple[int, int]:
            return left + int(math.log2(n) / 8 * panel_w), bottom - int(min(v, top) / top * height)

        grid = 0.0
        while grid <= top:
            y = bottom - int(grid / top * height)
            line(left, y, left + panel_w, y, (225, 225, 225))
            grid += step
        for e in range(9):
            x = left + int(e / 8 * panel_w)
            line(x, pad, x, bottom, (225, 225, 225))
        line(left, bottom, left + panel_w, bottom, (0, 0, 0))
        line(left, pad, left, bottom, (0, 0, 0))
        for relay, colour in colours.items():
            points = [xy(r["subscribers"], float(r[key])) for r in runs if r["relay"] == relay]
            for (x0, y0), (x1, y1) in itertools.pairwise(points):
                line(x0, y0, x1, y1, colour, 2)
            for x, y in points:
                for dx in range(-3, 4):
                    for dy in range(-3, 4):
                        put(x + dx, y + dy, colour)
    raw = b"".join(b"\x00" + bytes(pixels[y * w * 3:(y + 1) * w * 3]) for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack("!I", len(data)) + tag + data + struct.pack("!I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack("!IIBBBBB", w, h, 8, 2, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))
    Path(path).write_bytes(png)


# --- main ------------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> dict[str, Any]:
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else (QUICK_SIZES if args.quick else FULL_SIZES)
    settle, window = (1.0, 2.5) if args.quick else (2.0, 5.0)
    started = time.monotonic()
    frames = await asyncio.get_running_loop().run_in_executor(None, encode_loop)
    bitrate = sum(len(f) for f in frames) * 8 * FPS / len(frames)
    direct_ms = await direct_latency(frames, window)
    runs: list[dict[str, Any]] = []
    for kind in args.relays.split(","):
        runs += await series(kind, sizes, frames, settle, window, direct_ms,
                             args.profile if kind == "caunoi" else None)
    caunoi, baseline = per_core([r for r in runs if r["relay"] == "caunoi"]), \
        per_core([r for r in runs if r["relay"] == "mediarelay"])
    write_png(args.png, runs)
    return {
        "runs": runs,
        "subscribers_per_core": {"caunoi": caunoi, "mediarelay": baseline},
        "ratio": round(caunoi / baseline, 1) if baseline else None,
        "video_kbps": round(bitrate / 1000),
        "direct_latency_ms_p50": round(direct_ms, 2),
        "chart": args.png,
        "seconds": round(time.monotonic() - started, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="N = 1, 4, 16, 64 and short windows (< 90 s)")
    parser.add_argument("--sizes", help="comma-separated subscriber counts, e.g. 1,2,4")
    parser.add_argument("--png", default=str(Path(tempfile.gettempdir()) / "caunoi-bench-relay.png"),
                        help="where to write the chart (default: in the temporary directory)")
    parser.add_argument("--relays", default="caunoi,mediarelay", help="which series to run")
    parser.add_argument("--profile", help="cProfile the Cầu Nối relay process into this pstats file")
    parser.add_argument("--serve", choices=["caunoi", "mediarelay"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.profile)
        return
    if len(os.sched_getaffinity(0)) < 2:
        sys.exit("bench/relay.py needs two CPUs: one for the relay, one for the load")
    os.sched_setaffinity(0, {LOAD_CPU})
    apply_host_addresses(["127.0.0.1"])  # loopback only: aioice offers 127.0.0.1 and nothing else
    print(json.dumps(asyncio.run(run(args)), indent=2))


if __name__ == "__main__":
    main()
