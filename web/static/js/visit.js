// The patient's visit: a pre-call check, then the waiting room, polled every few seconds (weak 3G
// drops long-lived connections; a poll just tries again), then the consultation room.
import { preCallCheck } from "./precall.js";
import { visitChat } from "./visit_chat.js";

const $ = (id) => document.getElementById(id);
const t = JSON.parse($("i18n").textContent);
const encounter = $("visit").dataset.encounter;
const csrf = document.querySelector('meta[name="csrf-token"]').content;
let check = null; // the pre-call check, until the call takes the camera
const chat = visitChat(csrf);

async function poll() {
  const response = await fetch(`/api/clinics/encounters/${encounter}/waiting`, { cache: "no-store" });
  if (!response.ok) return setTimeout(poll, 5000);
  const state = await response.json();
  if (state.status === "in_progress" && state.room) {
    $("position").textContent = t.admitted;
    check?.stop();
    location.assign(`/visit/${encounter}/call`); // the call, which moves on to the summary at the end
    return;
  }
  if (state.status === "finished") {
    location.assign(`/visit/${encounter}/summary`);
    return;
  }
  if (state.status === "cancelled") {
    $("position").textContent = t.closed;
    return;
  }
  $("doctor-state").textContent = {
    available: t.doctor_available, in_another_visit: t.doctor_busy }[state.practitioner_status] || t.doctor_unknown;
  $("position").textContent = `${t.position} ${state.position}`;
  setTimeout(poll, 3000);
}

let consent = null;

async function loadConsent() {
  const response = await fetch(`/api/clinics/encounters/${encounter}/consent`, { cache: "no-store" });
  if (!response.ok) return;
  consent = await response.json();
  if (consent.given) return;
  $("consent").hidden = false;
  $("consent-title").textContent = consent.text.title;
  $("consent-body").textContent = consent.text.body;
  $("guardian-field").hidden = !consent.needs_guardian;
  $("guardian-name").value = consent.guardian_name || "";
  $("child-field").hidden = !consent.needs_child_assent;
}

async function giveConsent() {
  // Explicit only: the button press is the acceptance of exactly the text shown (its version).
  if (!consent || consent.given) return true;
  const guardian = $("guardian-name").value.trim();
  if (consent.needs_guardian && !guardian) { $("consent-error").textContent = t.guardian_missing; return false; }
  if (consent.needs_child_assent && !$("child-assent").checked) {
    $("consent-error").textContent = t.child_missing;
    return false;
  }
  const response = await fetch(`/api/clinics/encounters/${encounter}/consent`, {
    method: "POST", headers: { "X-CSRF-Token": csrf, "Content-Type": "application/json" },
    body: JSON.stringify({
      purpose: consent.text.purpose, text_version: consent.text.version, language: consent.text.language,
      accepted: true, guardian_name: consent.needs_guardian ? guardian : null,
      child_assent: consent.needs_child_assent ? true : null,
    }),
  });
  if (!response.ok) {
    $("consent-error").textContent = (await response.json()).error?.message || String(response.status);
    return false;
  }
  return true;
}

async function enter() {
  if (!(await giveConsent())) return;
  const response = await fetch(`/api/clinics/encounters/${encounter}/arrive`, {
    method: "POST", headers: { "X-CSRF-Token": csrf },
  });
  if (!response.ok) {
    $("camera-state").textContent = `${t.error} ${(await response.json()).error?.message || response.status}`;
    return;
  }
  $("check").hidden = true;
  $("consent").hidden = true;
  $("enter").hidden = true;
  $("waiting").hidden = false;
  poll();
  chat.open(encounter);
}

$("enter").addEventListener("click", enter);
// A visit that has ended has nothing left to check: its summary is what the patient came back for.
if ($("visit").dataset.status === "finished") {
  location.replace(`/visit/${encounter}/summary`);
} else {
  check = preCallCheck();
  loadConsent();
}
