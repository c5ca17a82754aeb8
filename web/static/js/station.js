// The station's shared device: find or register a walk-in, open the visit, take consent as witness,
// the queue in arrival order, and "run the call" (the assisted page). Nothing is kept in the browser:
// no storage API is used, forms do not autocomplete, and every answer is fetched with no-store.
const $ = (id) => document.getElementById(id);
const t = JSON.parse($("i18n").textContent);
const tenant = $("station").dataset.tenant;
const csrf = document.querySelector('meta[name="csrf-token"]').content;
let consentVisit = null; // { id, status } while the consent panel is open

function notice(text) {
  $("notice").hidden = !text;
  $("notice").textContent = text || "";
}

async function api(url, options = {}) {
  const headers = { "X-CSRF-Token": csrf, ...(options.json ? { "Content-Type": "application/json" } : {}) };
  const response = await fetch(url, {
    method: options.method || "GET", cache: "no-store", headers,
    body: options.json ? JSON.stringify(options.json) : options.body,
  });
  const data = response.status === 204 ? null : await response.json().catch(() => null);
  if (!response.ok) throw new Error(data?.error?.message || String(response.status));
  return data;
}

function button(text, className, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = className;
  b.textContent = text;
  b.addEventListener("click", onClick);
  return b;
}

function statusText(visit) {
  if (visit.status === "waiting") return `${t.waiting} ${visit.position}`;
  if (visit.status === "in_progress") return t.in_progress;
  return visit.consent_given ? t.planned : t.needs_consent;
}

function row(visit) {
  const tr = document.createElement("tr");
  tr.dataset.encounter = visit.id;
  const time = new Date(visit.scheduled_start).toLocaleTimeString("vi-VN", { hour: "2-digit", minute: "2-digit" });
  const cells = [visit.walk_in ? `${time} · ${t.walk_in}` : time, visit.patient_name, statusText(visit)];
  for (const text of cells) {
    const td = document.createElement("td");
    td.textContent = text;
    tr.append(td);
  }
  const action = document.createElement("td");
  if (visit.status === "planned") action.append(button(t.take_consent, "take-consent", () => openConsent(visit)));
  if (visit.status === "waiting" || visit.status === "in_progress") {
    action.append(button(t.run_call, "primary run-call", () => runCall(visit)));
  }
  tr.append(action);
  return tr;
}

async function refresh() {
  let state;
  try { state = await api(`/api/clinics/${tenant}/station`); } catch { return; }
  $("queue").replaceChildren(...state.visits.map(row));
  $("empty").hidden = state.visits.length > 0;
  const select = $("doctor");
  if (!select.options.length) {
    for (const doctor of state.doctors) select.append(new Option(doctor.name, doctor.id));
  }
}

function foundItem(patient) {
  const li = document.createElement("li");
  const ids = [patient.birth_date, patient.cccd, patient.bhyt].filter(Boolean).join(" · ");
  li.textContent = `${patient.display_name} (${ids}) `;
  li.append(button(t.walk_in, "primary walk-in", () => walkIn(patient)));
  return li;
}

async function find(event) {
  event.preventDefault();
  const q = $("find-q").value.trim();
  if (!q) return;
  try {
    const { patients } = await api(`/api/clinics/${tenant}/patients?q=${encodeURIComponent(q)}`);
    $("found").replaceChildren(...patients.map(foundItem));
    if (!patients.length) { notice(t.no_match); $("register-box").open = true; }
  } catch (err) { notice(`${t.error} ${err.message}`); }
}

async function register(event) {
  event.preventDefault();
  const form = new FormData($("register"));
  const value = (name) => (form.get(name) || "").toString().trim() || null;
  const body = {
    display_name: value("display_name"), birth_date: value("birth_date"), sex: value("sex"),
    phone: value("phone"), cccd: value("cccd"), bhyt: value("bhyt"), address: value("address") || "",
  };
  if (value("guardian_name")) {
    body.guardian = { name: value("guardian_name"), phone: value("guardian_phone"),
                      relationship: value("guardian_relationship") };
  }
  try {
    const patient = await api(`/api/clinics/${tenant}/patients`, { method: "POST", json: body });
    $("register").reset();
    $("register-error").textContent = "";
    $("register-box").open = false;
    notice(`${t.registered} ${patient.display_name}`);
    $("found").replaceChildren(foundItem(patient));
  } catch (err) { $("register-error").textContent = `${t.error} ${err.message}`; }
}

async function walkIn(patient) {
  const practitioner = $("doctor").value;
  if (!practitioner) { notice(t.choose_doctor); return; }
  try {
    const visit = await api(`/api/clinics/${tenant}/station/walk-ins`, {
      method: "POST", json: { patient_id: patient.id, practitioner_id: practitioner } });
    $("found").replaceChildren();
    $("find-q").value = "";
    await refresh();
    await openConsent(visit);
  } catch (err) { notice(`${t.error} ${err.message}`); }
}

function closeConsent() {
  consentVisit = null;
  $("consent").reset();
  $("consent").hidden = true;
  for (const id of ["consent-for", "consent-text-title", "consent-body", "consent-error"]) $(id).textContent = "";
}

async function openConsent(visit) {
  let state;
  try { state = await api(`/api/clinics/encounters/${visit.id}/consent/witness`); } catch (err) {
    notice(`${t.error} ${err.message}`);
    return;
  }
  closeConsent();
  consentVisit = { id: visit.id, state };
  $("consent-for").textContent = `${t.consent_for} ${state.patient_name}`;
  $("consent-text-title").textContent = state.text.title;
  $("consent-body").textContent = state.text.body;
  $("child-field").hidden = !state.needs_child_assent;
  const decider = state.needs_guardian ? "guardian" : "patient";
  document.querySelector(`input[name=decided_by][value=${decider}]`).checked = true;
  $("decider-name").value = state.needs_guardian ? (state.guardian_name || "") : state.patient_name;
  $("consent").hidden = false;
  $("consent").scrollIntoView();
}

function checked(name) { return document.querySelector(`input[name=${name}]:checked`)?.value || null; }

async function recordConsent(event) {
  event.preventDefault();
  if (!consentVisit) return;
  const { id, state } = consentVisit;
  const decidedBy = checked("decided_by");
  const method = checked("method");
  const decision = checked("decision"); // never pre-selected: silence is not consent
  const name = $("decider-name").value.trim();
  const fail = (text) => { $("consent-error").textContent = text; };
  if (!decidedBy) return fail(t.choose_decider);
  if (!name) return fail(t.decider_missing);
  if (!method) return fail(t.choose_method);
  if (!decision) return fail(t.choose_decision);
  if (decision === "accept" && state.needs_child_assent && !$("child-assent").checked) return fail(t.child_missing);
  let record;
  try {
    record = await api(`/api/clinics/encounters/${id}/consent/witness`, { method: "POST", json: {
      purpose: state.text.purpose, text_version: state.text.version, language: state.text.language,
      accepted: decision === "accept", decided_by: decidedBy, decider_name: name, method,
      child_assent: state.needs_child_assent ? $("child-assent").checked : null,
    } });
  } catch (err) { return fail(`${t.error} ${err.message}`); }
  const scan = $("scan").files[0];
  if (method === "paper" && scan) {
    const form = new FormData();
    form.append("file", scan, scan.name);
    try { await api(`/api/clinics/consents/${record.id}/evidence`, { method: "POST", body: form }); } catch (err) {
      notice(`${t.scan_failed} ${err.message}`);
    }
  }
  if (record.accepted) {
    try {
      await api(`/api/clinics/encounters/${id}/arrive`, { method: "POST" });
      notice(`${t.queued} ${state.patient_name}`);
    } catch (err) { notice(`${t.error} ${err.message}`); }
  } else {
    notice(`${t.refused}: ${state.patient_name}`);
  }
  closeConsent();
  await refresh();
}

async function runCall(visit) {
  try {
    const session = await api(`/api/clinics/encounters/${visit.id}/assist`, { method: "POST" });
    location.assign(session.url);
  } catch (err) { notice(`${t.error} ${err.message}`); }
}

$("find").addEventListener("submit", find);
$("register").addEventListener("submit", register);
$("consent").addEventListener("submit", recordConsent);
$("consent-cancel").addEventListener("click", closeConsent);
document.querySelectorAll("input[name=method]").forEach((input) => input.addEventListener("change", () => {
  $("scan-field").hidden = checked("method") !== "paper";
}));
refresh();
setInterval(refresh, 4000);
