// The doctor's dashboard: the queue, polled every 3 s; a sound and a notice when someone arrives.
import { visitChat } from "./visit_chat.js";

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
  // A lost SMS, a link opened on the wrong phone: only before the call (not once it has started), and
  // not for a walk-in, who is at the station and joins on its device.
  if ((visit.status === "planned" || visit.status === "waiting") && !visit.walk_in) {
    const resend = document.createElement("button");
    resend.type = "button";
    resend.className = "resend-link";
    resend.textContent = t.resend;
    resend.addEventListener("click", () => askResend(visit));
    action.append(resend);
  }
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

// Resending the join link: the rows are rebuilt every 3 s, so the question and the answer live in a
// panel outside the table. The link is shown once, to read out when no message arrives.
let resendVisit = null;

function askResend(visit) {
  resendVisit = visit.id;
  $("link-question").textContent = t.resend_question.replace("{name}", visit.patient_name);
  $("link-ask").hidden = false;
  $("link-result").hidden = true;
  $("link-value").textContent = "";
  $("link-panel").hidden = false;
}

function closeLinkPanel() {
  resendVisit = null;
  $("link-value").textContent = ""; // shown once: not left on the screen
  $("link-panel").hidden = true;
}

async function resend() {
  const id = resendVisit;
  if (!id) return;
  $("link-confirm").disabled = true;
  try {
    const response = await fetch(`/api/clinics/encounters/${id}/link`, {
      method: "POST", headers: { "X-CSRF-Token": csrf },
    });
    const body = await response.json();
    if (!response.ok) {
      closeLinkPanel();
      $("notice").hidden = false;
      $("notice").textContent = `${t.error} ${body.error?.message || response.status}`;
      return;
    }
    const channels = body.sent_via.map((channel) => t[`channel_${channel}`] || channel);
    $("link-sent").textContent = channels.length
      ? t.resend_sent.replace("{channels}", channels.join(", ")) : t.resend_not_sent;
    $("link-value").textContent = body.join_link;
    $("link-ask").hidden = true;
    $("link-result").hidden = false;
  } finally {
    $("link-confirm").disabled = false;
  }
}

$("link-confirm").addEventListener("click", resend);
$("link-cancel").addEventListener("click", closeLinkPanel);
$("link-close").addEventListener("click", closeLinkPanel);

const chat = visitChat(csrf);

function openChat(visit) {
  $("chat-title").textContent = `${t.chat_with} ${visit.patient_name}`;
  $("chat").hidden = false;
  chat.open(visit.id);
}

$("admit-all").addEventListener("click", () => post(`/api/clinics/${tenant}/admit-all`));
refresh();
setInterval(refresh, 3000);
