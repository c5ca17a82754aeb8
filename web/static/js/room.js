// The room page: one publisher connection (we offer our camera and microphone) and one subscriber
// connection (the server offers everyone else's tracks), as docs/architecture.md describes.
import { Signal } from "./signal.js";

const $ = (id) => document.getElementById(id);
const t = JSON.parse($("i18n").textContent);
const callEl = $("call");
const roomName = callEl.dataset.room;
const canPublish = callEl.dataset.canPublish === "true";
const csrf = document.querySelector('meta[name="csrf-token"]').content;

const state = {
  signal: null, publisher: null, subscriber: null, stream: null, iceServers: [],
  trackOwners: new Map(), tiles: new Map(), names: new Map(), leaving: false, retries: 0, pinger: null,
};
window.caunoi = state; // for diagnostics and the browser tests (getStats)

function status(text) { $("status").textContent = text; }

async function fetchToken() {
  const response = await fetch(`/api/rooms/${encodeURIComponent(roomName)}/token`, {
    method: "POST", headers: { "X-CSRF-Token": csrf }, credentials: "same-origin",
  });
  if (!response.ok) throw new Error((await response.json()).error?.message || response.statusText);
  return response.json();
}

async function openCamera() {
  if (!canPublish) return null;
  try {
    return await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true },
      video: { width: { ideal: 640 }, height: { ideal: 480 }, frameRate: { max: 24 } },
    });
  } catch (err) {
    status(t.no_devices);
    return null;
  }
}

function tile(participantId) {
  let entry = state.tiles.get(participantId);
  if (entry) return entry;
  const figure = document.createElement("figure");
  figure.className = "tile remote";
  figure.dataset.participant = participantId;
  const video = document.createElement("video");
  video.autoplay = true; video.playsInline = true; video.muted = true;
  const audio = document.createElement("audio");
  audio.autoplay = true;
  const caption = document.createElement("figcaption");
  const badge = document.createElement("span");
  badge.className = "badge";
  caption.textContent = state.names.get(participantId) || "…";
  figure.append(video, audio, caption, badge);
  $("tiles").append(figure);
  entry = { figure, video, audio, caption, badge, stream: new MediaStream(), muted: { audio: false, video: false } };
  video.srcObject = entry.stream;
  audio.srcObject = entry.stream;
  state.tiles.set(participantId, entry);
  return entry;
}

function showMute(participantId, kind, muted) {
  const entry = tile(participantId);
  entry.muted[kind] = muted;
  const parts = [];
  if (entry.muted.audio) parts.push("🔇");
  if (entry.muted.video) parts.push("📷✕");
  entry.badge.textContent = parts.join(" ");
  entry.badge.title = parts.length ? t.muted : "";
}

function addParticipant(info) {
  state.names.set(info.id, info.name);
  const entry = tile(info.id);
  entry.caption.textContent = info.name;
  showMute(info.id, "audio", info.audio_muted);
  showMute(info.id, "video", info.video_muted);
}

function removeParticipant(participantId) {
  const entry = state.tiles.get(participantId);
  if (!entry) return;
  entry.stream.getTracks().forEach((track) => entry.stream.removeTrack(track));
  entry.figure.remove();
  state.tiles.delete(participantId);
  if (state.tiles.size === 0) status(t.alone);
}

function newPeer(target) {
  const pc = new RTCPeerConnection({ iceServers: state.iceServers });
  pc.addEventListener("icecandidate", (e) => {
    const c = e.candidate;
    state.signal?.send({ type: "candidate", target, candidate: c ? {
      candidate: c.candidate, sdpMid: c.sdpMid, sdpMLineIndex: c.sdpMLineIndex } : null });
  });
  return pc;
}

// Simulcast: the relay gives each subscriber the layer its link and view can take (a thumbnail, a
// weak 3G link) without lowering anyone else's. Lowest layer first; Chromium sends three layers only
// from 960 px up, so smaller cameras send two.
function simulcastLayers(track) {
  const width = track.getSettings().width || 640;
  if (width >= 960) {
    return [{ rid: "l", scaleResolutionDownBy: 4, maxBitrate: 150000 },
            { rid: "m", scaleResolutionDownBy: 2, maxBitrate: 500000 },
            { rid: "h", maxBitrate: 1200000 }];
  }
  return [{ rid: "l", scaleResolutionDownBy: 2, maxBitrate: 200000 }, { rid: "h", maxBitrate: 800000 }];
}

// What this page wants of one participant's video: "high", "low" (thumbnail) or "off" (audio only).
function setQuality(participantId, quality) {
  state.signal?.send({ type: "video_preference", participant_id: participantId, quality });
}
state.setQuality = setQuality;

async function publish() {
  if (!state.stream) return;
  const pc = newPeer("publisher");
  state.publisher = pc;
  for (const track of state.stream.getTracks()) {
    const init = { direction: "sendonly", streams: [state.stream] };
    if (track.kind === "video") init.sendEncodings = simulcastLayers(track);
    pc.addTransceiver(track, init);
  }
  await pc.setLocalDescription(await pc.createOffer());
  state.signal.send({ type: "offer", sdp: pc.localDescription.sdp });
}

async function onServerOffer(message) {
  for (const ref of message.tracks) state.trackOwners.set(ref.mid, ref.participant_id);
  if (!state.subscriber) {
    const pc = newPeer("subscriber");
    pc.addEventListener("track", (e) => {
      const owner = state.trackOwners.get(e.transceiver.mid);
      if (!owner) return;
      const entry = tile(owner);
      entry.stream.getTracks().filter((tr) => tr.kind === e.track.kind).forEach((tr) => entry.stream.removeTrack(tr));
      entry.stream.addTrack(e.track);
      entry.audio.play().catch(() => {});
    });
    state.subscriber = pc;
  }
  const pc = state.subscriber;
  await pc.setRemoteDescription({ type: "offer", sdp: message.sdp });
  await pc.setLocalDescription(await pc.createAnswer());
  state.signal.send({ type: "answer", sdp: pc.localDescription.sdp });
}

async function onMessage(message) {
  switch (message.type) {
    case "joined":
      state.retries = 0;
      state.iceServers = message.ice_servers;
      status(message.participants.length ? t.connected : t.alone);
      message.participants.forEach(addParticipant);
      await publish();
      break;
    case "answer":
      await state.publisher?.setRemoteDescription({ type: "answer", sdp: message.sdp });
      break;
    case "offer":
      await onServerOffer(message);
      break;
    case "candidate": {
      const pc = message.target === "publisher" ? state.publisher : state.subscriber;
      if (pc && message.candidate) await pc.addIceCandidate(message.candidate);
      break;
    }
    case "participant_joined":
      addParticipant(message.participant);
      status(t.connected);
      break;
    case "participant_left":
      removeParticipant(message.participant_id);
      break;
    case "mute":
      showMute(message.participant_id, message.kind, message.muted);
      break;
    case "error":
      if (message.code === "replaced") { state.leaving = true; status(t.replaced); }
      else status(`${t.error} ${message.message}`);
      break;
  }
}

function teardown() {
  clearInterval(state.pinger);
  state.publisher?.close(); state.subscriber?.close();
  state.publisher = null; state.subscriber = null;
  state.trackOwners.clear();
  for (const id of [...state.tiles.keys()]) removeParticipant(id);
}

async function connect() {
  status(t.connecting);
  let grant;
  try {
    grant = await fetchToken();
  } catch (err) {
    status(`${t.error} ${err.message}`);
    return;
  }
  state.iceServers = grant.ice_servers;
  const signal = new Signal(grant.token);
  state.signal = signal;
  signal.addEventListener("open", () => {
    signal.send({ type: "join", room: roomName, protocol: 1 });
    state.pinger = setInterval(() => signal.send({ type: "ping", ts: Date.now() }), 20000);
  });
  signal.addEventListener("message", (e) => onMessage(e.detail).catch((err) => status(`${t.error} ${err.message}`)));
  signal.addEventListener("close", () => {
    teardown();
    if (state.leaving) return;
    // Weak 3G drops connections: come back by ourselves, a little slower each time.
    status(t.reconnecting);
    const delay = Math.min(1000 * 2 ** state.retries, 15000);
    state.retries += 1;
    setTimeout(connect, delay);
  });
}

function toggle(kind, button) {
  const track = state.stream?.getTracks().find((tr) => tr.kind === kind);
  if (!track) return;
  track.enabled = !track.enabled;
  const muted = !track.enabled;
  button.setAttribute("aria-pressed", String(muted));
  button.textContent = kind === "audio" ? (muted ? t.mic_off : t.mic_on) : (muted ? t.cam_off : t.cam_on);
  state.signal?.send({ type: "mute", kind, muted });
}

$("toggle-mic").addEventListener("click", (e) => toggle("audio", e.currentTarget));
$("toggle-cam").addEventListener("click", (e) => toggle("video", e.currentTarget));
$("leave").addEventListener("click", () => {
  state.leaving = true;
  state.signal?.send({ type: "leave" });
  state.signal?.close();
  teardown();
  state.stream?.getTracks().forEach((track) => track.stop());
  status(t.left);
  location.assign("/rooms");
});

state.stream = await openCamera();
if (state.stream) $("local-video").srcObject = state.stream;
else { $("toggle-mic").disabled = true; $("toggle-cam").disabled = true; }
await connect();
