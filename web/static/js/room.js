// The room page: one publisher connection (we offer our camera and microphone, and a shared screen
// while sharing) and one subscriber connection (the server offers everyone else's tracks), as
// docs/architecture.md describes. Each offer names its tracks' sources (camera, screen,
// microphone); each server offer says the source of every track, so a screen gets a tile of its own.
import { Signal } from "./signal.js";

const $ = (id) => document.getElementById(id);
const t = JSON.parse($("call-i18n").textContent); // web/templates/_call_body.html
const callEl = $("call");
const roomName = callEl.dataset.room;
const canPublish = callEl.dataset.canPublish === "true";
const csrf = document.querySelector('meta[name="csrf-token"]').content;

const state = {
  signal: null, publisher: null, subscriber: null, stream: null, iceServers: [],
  trackOwners: new Map(), tiles: new Map(), names: new Map(), leaving: false, retries: 0, pinger: null,
  trackSources: new Map(), // mid → "camera" | "screen" | "microphone" (trackOwners: mid → participant)
  sources: new Map(), // our publisher transceivers → "camera" | "microphone" | "screen"
  screen: null, screenTransceiver: null, negotiation: Promise.resolve(), answered: null,
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

const screenKey = (participantId) => `${participantId}:screen`;
const screenLabel = (participantId) => t.screen_of.replace("{name}", state.names.get(participantId) || "…");

// A participant's tile (camera and microphone), or with `screen` the separate, large tile of the
// screen they share.
function tile(participantId, screen = false) {
  const key = screen ? screenKey(participantId) : participantId;
  let entry = state.tiles.get(key);
  if (entry) return entry;
  const figure = document.createElement("figure");
  figure.className = screen ? "tile remote screen" : "tile remote";
  figure.dataset.participant = participantId;
  if (screen) figure.dataset.source = "screen";
  const video = document.createElement("video");
  video.autoplay = true; video.playsInline = true; video.muted = true;
  const audio = document.createElement("audio");
  audio.autoplay = true;
  const caption = document.createElement("figcaption");
  const badge = document.createElement("span");
  badge.className = "badge";
  caption.textContent = screen ? screenLabel(participantId) : state.names.get(participantId) || "…";
  figure.append(video, audio, caption, badge);
  $("tiles").append(figure);
  entry = { figure, video, audio, caption, badge, stream: new MediaStream(), muted: { audio: false, video: false },
            mid: null };
  video.srcObject = entry.stream;
  audio.srcObject = entry.stream;
  state.tiles.set(key, entry);
  return entry;
}

function removeTile(key) {
  const entry = state.tiles.get(key);
  if (!entry) return;
  entry.stream.getTracks().forEach((track) => entry.stream.removeTrack(track));
  entry.figure.remove();
  state.tiles.delete(key);
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
  const shared = state.tiles.get(screenKey(info.id));
  if (shared) shared.caption.textContent = screenLabel(info.id);
  showMute(info.id, "audio", info.audio_muted);
  showMute(info.id, "video", info.video_muted);
}

function removeParticipant(participantId) {
  if (!state.tiles.has(participantId)) return;
  removeTile(participantId);
  removeTile(screenKey(participantId));
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

// One publisher offer at a time: the next waits for the answer to the last (or for its refusal).
function negotiate() {
  state.negotiation = state.negotiation.then(async () => {
    const pc = state.publisher;
    if (!pc || pc.signalingState === "closed") return;
    await pc.setLocalDescription(await pc.createOffer());
    const tracks = [];
    for (const [transceiver, source] of state.sources) {
      if (transceiver.mid !== null && !transceiver.stopped) tracks.push({ mid: transceiver.mid, source });
    }
    const answered = new Promise((resolve) => { state.answered = resolve; });
    state.signal.send({ type: "offer", sdp: pc.localDescription.sdp, tracks });
    await Promise.race([answered, new Promise((resolve) => setTimeout(resolve, 15000))]);
  }).catch((err) => status(`${t.error} ${err.message}`));
  return state.negotiation;
}

async function publish() {
  state.sources.clear();
  state.screenTransceiver = null;
  if (!state.stream && !state.screen) return;
  const pc = newPeer("publisher");
  state.publisher = pc;
  for (const track of state.stream?.getTracks() || []) {
    const init = { direction: "sendonly", streams: [state.stream] };
    if (track.kind === "video") init.sendEncodings = simulcastLayers(track);
    state.sources.set(pc.addTransceiver(track, init), track.kind === "video" ? "camera" : "microphone");
  }
  if (state.screen) addScreenTransceiver(pc);
  await negotiate();
}

// --- sharing the screen ------------------------------------------------------------------------
// The screen is a second video track beside the camera, sent as one high layer (no simulcast):
// text on a shared screen must stay legible, so the encoder keeps the resolution and lowers the
// frame rate when the link is short ("detail", "maintain-resolution").

function addScreenTransceiver(pc) {
  const track = state.screen.getVideoTracks()[0];
  if (state.screenTransceiver) {
    state.screenTransceiver.sender.replaceTrack(track);
    state.screenTransceiver.direction = "sendonly";
  } else {
    state.screenTransceiver = pc.addTransceiver(track, {
      direction: "sendonly", streams: [state.screen], sendEncodings: [{ maxBitrate: 1500000 }],
    });
    state.sources.set(state.screenTransceiver, "screen");
  }
  const sender = state.screenTransceiver.sender;
  const parameters = sender.getParameters();
  parameters.degradationPreference = "maintain-resolution";
  sender.setParameters(parameters).catch(() => {}); // a hint: browsers without it just ignore it
}

// Share `stream` (a test may pass a canvas's captureStream()), else what the user picks.
async function shareScreen(stream = null) {
  if (state.screen || !canPublish) return;
  let screen = stream;
  if (!screen) {
    try {
      screen = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { max: 15 } }, audio: false });
    } catch (err) {
      if (err.name !== "NotAllowedError") status(`${t.error} ${err.message}`);
      return; // the user closed the picker
    }
  }
  const track = screen.getVideoTracks()[0];
  if (!track) return;
  track.contentHint = "detail";
  track.addEventListener("ended", () => stopScreen()); // the browser's own "Stop sharing" bar
  state.screen = screen;
  $("local-screen").srcObject = screen;
  $("local-screen-tile").hidden = false;
  showSharing(true);
  if (state.publisher) {
    addScreenTransceiver(state.publisher);
    await negotiate();
  } else if (state.joined) {
    await publish(); // no camera nor microphone: the screen is all we send
  }
}

async function stopScreen() {
  if (!state.screen) return;
  state.screen.getTracks().forEach((track) => track.stop());
  state.screen = null;
  $("local-screen").srcObject = null;
  $("local-screen-tile").hidden = true;
  showSharing(false);
  const transceiver = state.screenTransceiver;
  if (transceiver && state.publisher) {
    // The section stays (reused by the next share); inactive, the server unpublishes its track.
    await transceiver.sender.replaceTrack(null);
    transceiver.direction = "inactive";
    await negotiate();
  }
}

function showSharing(sharing) {
  const button = $("share-screen");
  button.setAttribute("aria-pressed", String(sharing));
  button.textContent = sharing ? t.stop_share : t.share;
}
state.shareScreen = shareScreen;
state.stopScreen = stopScreen;

async function onServerOffer(message) {
  state.trackOwners.clear();
  state.trackSources.clear();
  for (const ref of message.tracks) {
    state.trackOwners.set(ref.mid, ref.participant_id);
    state.trackSources.set(ref.mid, ref.source || (ref.kind === "audio" ? "microphone" : "camera"));
  }
  if (!state.subscriber) {
    const pc = newPeer("subscriber");
    pc.addEventListener("track", (e) => {
      const owner = state.trackOwners.get(e.transceiver.mid);
      if (!owner) return;
      const screen = state.trackSources.get(e.transceiver.mid) === "screen";
      const entry = tile(owner, screen);
      if (screen) entry.mid = e.transceiver.mid;
      entry.stream.getTracks().filter((tr) => tr.kind === e.track.kind).forEach((tr) => entry.stream.removeTrack(tr));
      entry.stream.addTrack(e.track);
      entry.audio.play().catch(() => {});
    });
    state.subscriber = pc;
  }
  // A screen no longer in the offer has stopped: its tile goes (the camera's stays).
  for (const [key, entry] of [...state.tiles]) {
    if (entry.figure.dataset.source === "screen" && !state.trackOwners.has(entry.mid)) removeTile(key);
  }
  const pc = state.subscriber;
  await pc.setRemoteDescription({ type: "offer", sdp: message.sdp });
  await pc.setLocalDescription(await pc.createAnswer());
  state.signal.send({ type: "answer", sdp: pc.localDescription.sdp });
}

async function onMessage(message) {
  switch (message.type) {
    case "joined":
      state.joined = true;
      state.retries = 0;
      state.iceServers = message.ice_servers;
      status(message.participants.length ? t.connected : t.alone);
      message.participants.forEach(addParticipant);
      await publish();
      break;
    case "answer":
      await state.publisher?.setRemoteDescription({ type: "answer", sdp: message.sdp });
      state.answered?.();
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
      if ((message.code === "invalid_sdp" || message.code === "invalid_track_source")
          && state.publisher?.signalingState === "have-local-offer") {
        // Our offer was refused: take it back, so the next one can be made.
        await state.publisher.setLocalDescription({ type: "rollback" });
        state.answered?.();
      }
      break;
  }
}

function teardown() {
  state.joined = false;
  clearInterval(state.pinger);
  state.publisher?.close(); state.subscriber?.close();
  state.publisher = null; state.subscriber = null;
  state.answered?.();
  state.trackOwners.clear();
  for (const key of [...state.tiles.keys()]) removeTile(key);
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
if (canPublish && navigator.mediaDevices?.getDisplayMedia) {
  $("share-screen").hidden = false;
  $("share-screen").addEventListener("click", () => (state.screen ? stopScreen() : shareScreen()));
}
$("leave").addEventListener("click", () => {
  state.leaving = true;
  state.signal?.send({ type: "leave" });
  state.signal?.close();
  teardown();
  state.stream?.getTracks().forEach((track) => track.stop());
  state.screen?.getTracks().forEach((track) => track.stop());
  status(t.left);
  location.assign("/rooms");
});

state.stream = await openCamera();
if (state.stream) $("local-video").srcObject = state.stream;
else { $("toggle-mic").disabled = true; $("toggle-cam").disabled = true; }
await connect();
