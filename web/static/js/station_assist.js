// Assisted mode: the patient's side of one visit, run by the nurse on the station's shared device —
// pre-call check, waiting room, then the call (room.js, loaded only once the doctor has admitted the
// patient). "End and next patient" closes everything this page opened, empties the document and the
// browser storage, then posts the form whose answer (Clear-Site-Data) returns to the station page.
import { preCallCheck } from "./precall.js";
import { visitChat } from "./visit_chat.js";

const $ = (id) => document.getElementById(id);
const t = JSON.parse($("i18n").textContent);
const page = $("assisted");
const encounter = page.dataset.encounter;
const csrf = document.querySelector('meta[name="csrf-token"]').content;
const timers = new Set();
let inCall = false;
let leaving = false;
const chat = visitChat(csrf);
const check = preCallCheck();

function later(fn, ms) {
  const id = setTimeout(() => { timers.delete(id); fn(); }, ms);
  timers.add(id);
}


async function joinCall(room) {
  // room.js reads the room from #call and starts at once; it publishes its own camera, so the
  // preview is released first (one capture at a time on a cheap tablet).
  inCall = true;
  check.stop();
  $("check").hidden = true;
  $("waiting").hidden = true;
  $("call").dataset.room = room;
  $("call").hidden = false;
  await import(page.dataset.roomModule);
}

async function poll() {
  if (leaving) return;
  const response = await fetch(`/api/clinics/encounters/${encounter}/waiting`, { cache: "no-store" });
  if (!response.ok) return later(poll, 5000);
  const state = await response.json();
  if (state.status === "in_progress" && state.room) {
    if (!inCall) await joinCall(state.room);
  } else if (state.status === "finished" || state.status === "cancelled") {
    $("position").textContent = t.closed;
    return;
  } else {
    $("doctor-state").textContent = {
      available: t.doctor_available, in_another_visit: t.doctor_busy }[state.practitioner_status] || t.doctor_unknown;
    $("position").textContent = `${t.position} ${state.position}`;
  }
  later(poll, 3000);
}

function enterWaitingRoom() {
  $("continue").hidden = true;
  $("check").hidden = true;
  check.stop();
  $("waiting").hidden = false;
  $("chat").hidden = false;
  poll();
  chat.open(encounter);
}

async function forgetEverything() {
  // What the page itself can drop, whatever the browser makes of Clear-Site-Data (it ignores it
  // outside a secure context): the call, the camera, the timers, the document, every storage API.
  leaving = true;
  chat.stop();
  timers.forEach(clearTimeout);
  timers.clear();
  const call = window.caunoi;
  if (call) {
    call.leaving = true;
    clearInterval(call.pinger);
    call.signal?.send({ type: "leave" });
    call.signal?.close();
    call.publisher?.close();
    call.subscriber?.close();
    call.stream?.getTracks().forEach((track) => track.stop());
    call.screen?.getTracks().forEach((track) => track.stop());
    call.tiles?.forEach((entry) => entry.stream.getTracks().forEach((track) => track.stop()));
    delete window.caunoi;
  }
  check.stop();
  document.querySelectorAll("video, audio").forEach((media) => {
    media.pause();
    media.srcObject = null;
    media.remove();
  });
  try { localStorage.clear(); sessionStorage.clear(); } catch { /* storage disabled: nothing kept */ }
  try {
    for (const db of await indexedDB.databases()) if (db.name) indexedDB.deleteDatabase(db.name);
  } catch { /* no IndexedDB */ }
  try {
    if (self.caches) for (const key of await caches.keys()) await caches.delete(key);
  } catch { /* no Cache API outside a secure context */ }
}

$("next-patient").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.currentTarget;
  form.querySelector("button").disabled = true;
  await forgetEverything();
  page.replaceChildren(form); // the name, the chat, the tiles: gone before the request leaves
  document.title = "";
  form.submit();
});
$("continue").addEventListener("click", enterWaitingRoom);
