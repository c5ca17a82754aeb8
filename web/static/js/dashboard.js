// The doctor's dashboard: the queue, polled every 3 s; a sound and a notice when someone arrives.
import { attachFilePicker, renderAttachment } from "./chat_files.js";

const $ = (id) => document.getElementById(id);
const t = JSON.parse($("i18n").textContent);
const tenant = $("dashboard").dataset.tenant;
const csrf = document.querySelector('meta[name="csrf-token"]').content;
let known = null; // ids of visits already seen waiting

function chime() {
  try {
    const context = new AudioContext();
    const oscillator = context.createOscillator();
    oscillator.frequency.value = 880;
    oscillator.connect(context.destination);
    oscillator.start();
    oscillator.stop(context.currentTime + 0.3);
  } catch { /* no audio: the notice is enough */ }
}

async function post(url) {
  const response = await fetch(url, { method: "POST", headers: { "X-CSRF-Token": csrf } });
  if (!response.ok) $("notice").textContent = `${t.error} ${(await response.json()).error?.message}`;
  await refresh();
}

function link(className, text, href) {
  const a = document.createElement("a");
  a.className = `button ${className}`;
  a.href = href;
  a.textContent = text;
  return a;
}

function row(visit) {
  const tr = document.createElement("tr");
  tr.dataset.encounter = visit.id;
  const time = new Date(visit.scheduled_start).toLocaleTimeString("vi-VN", { hour: "2-digit", minute: "2-digit" });
  const status = { planned: t.planned, waiting: t.waiting_status, in_progress: t.in_progress }[visit.status];
  // A walk-in's time is the moment they walked in at the station: the list is in arrival order.
  const when = visit.walk_in ? `${time} · ${t.walk_in}` : time;
  for (const text of [when, visit.patient_name, status]) {
    const td = document.createElement("td");
    td.textContent = text;
    tr.append(td);
  }
  const action = document.createElement("td");
  if (visit.status === "waiting") {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "primary admit";
    button.textContent = t.admit;
    button.addEventListener("click", () => post(`/api/clinics/encounters/${visit.id}/admit`));
    action.append(button);
  }
  // The call opens with the visit record beside it; the record alone is for before and after the call.
  if (visit.status === "waiting" || visit.status === "in_progress") {
    action.append(link("join-call", t.call, `/clinic/encounters/${visit.id}/call`));
  }
  action.append(link("open-record", t.record, `/clinic/encounters/${visit.id}/record`));
  const talk = document.createElement("button");
  talk.type = "button";
  talk.className = "chat-open";
  talk.textContent = t.chat;
  talk.addEventListener("click", () => openChat(visit));
  action.append(talk);
  tr.append(action);
  return tr;
}

async function refresh() {
  const response = await fetch(`/api/clinics/${tenant}/queue`, { cache: "no-store" });
  if (!response.ok) return;
  const queue = await response.json();
  $("queue").replaceChildren(...queue.encounters.map(row));
  $("empty").hidden = queue.encounters.length > 0;
  $("waiting-count").textContent = `${t.waiting} ${queue.waiting}`;
  $("admit-all").disabled = queue.waiting === 0;
  const waiting = queue.encounters.filter((v) => v.status === "waiting");
  const arrivals = known === null ? [] : waiting.filter((v) => !known.has(v.id));
  if (arrivals.length) {
    chime();
    $("notice").hidden = false;
    $("notice").textContent = `${t.arrived} ${arrivals.map((v) => v.patient_name).join(", ")}`;
  }
  known = new Set(waiting.map((v) => v.id));
}

let chatVisit = null;
let chatAfter = null;
let chatTimer = null;

async function pollChat() {
  if (!chatVisit) return;
  const query = chatAfter ? `?after=${encodeURIComponent(chatAfter)}` : "";
  const response = await fetch(`/api/clinics/encounters/${chatVisit}/messages${query}`, { cache: "no-store" });
  if (response.ok) {
    for (const message of (await response.json()).messages) {
      const item = document.createElement("li");
      item.className = message.from_clinic ? "from-clinic" : "from-me";
      if (message.attachment) renderAttachment(item, message);
      else item.textContent = `${message.sender_name}: ${message.text}`;
      $("chat-log").append(item);
      chatAfter = message.sent_at;
    }
  }
}

function openChat(visit) {
  chatVisit = visit.id;
  chatAfter = null;
  $("chat-log").replaceChildren();
  $("chat-title").textContent = `${t.chat_with} ${visit.patient_name}`;
  $("chat").hidden = false;
  clearInterval(chatTimer);
  pollChat();
  chatTimer = setInterval(pollChat, 3000);
}

$("chat-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = $("chat-text").value.trim();
  if (!text || !chatVisit) return;
  const response = await fetch(`/api/clinics/encounters/${chatVisit}/messages`, {
    method: "POST", headers: { "X-CSRF-Token": csrf, "Content-Type": "application/json" },
    body: JSON.stringify({ text }),
  });
  if (response.ok) { $("chat-text").value = ""; pollChat(); }
});
attachFilePicker(() => chatVisit, csrf, pollChat);

$("admit-all").addEventListener("click", () => post(`/api/clinics/${tenant}/admit-all`));
refresh();
setInterval(refresh, 3000);
