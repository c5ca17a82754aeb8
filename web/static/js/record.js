// The visit record (clinics/visit_record.py): the guided steps, SOAP, diagnoses with the Thông tư 30
// answer, prescription, follow-up booking, versions and signature. Used on the record page and beside
// the doctor's call. The form is never rebuilt from the server after a failed save: what the doctor
// typed stays on screen, and each refusal is shown next to the field it concerns.
const $ = (id) => document.getElementById(id);
const t = JSON.parse($("record-i18n").textContent);
const root = $("record");
const form = $("record-form");
const { encounter, tenant, patient, practitioner, view } = root.dataset;
const canWrite = root.dataset.canWrite === "true";
const csrf = document.querySelector('meta[name="csrf-token"]').content;
const lang = document.documentElement.lang || "vi";
const recordUrl = `/api/clinics/encounters/${encounter}/record`;
const listInfo = { verified: root.dataset.listVerified, total: root.dataset.listTotal };
const zone = root.dataset.timezone;

const state = { documentId: null, version: 0, dirty: false, bookingId: null, resources: [], saving: false };

const fmt = (text, values) => text.replace(/\{(\w+)\}/g, (match, key) => (key in values ? values[key] : match));

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body) {
  const options = { method, credentials: "same-origin", cache: "no-store", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  if (method !== "GET") options.headers["X-CSRF-Token"] = csrf;
  let response;
  try {
    response = await fetch(path, options);
  } catch {
    throw new ApiError(0, "network", t.network);
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new ApiError(response.status, data.error?.code || `http_${response.status}`,
      data.error?.message || response.statusText);
  }
  return data;
}

function say(text, kind = "") {
  $("record-status").textContent = text;
  $("record-status").dataset.kind = kind;
}

// ---- rows (diagnoses, medicines) ----

function cloneRow(templateId) {
  return $(templateId).content.firstElementChild.cloneNode(true);
}

function renumber() {
  [...$("diagnoses").children].forEach((row, i) => {
    row.querySelector(".d-code").dataset.path = `diagnoses.${i}.icd10`;
    row.querySelector(".d-text").dataset.path = `diagnoses.${i}.text`;
    row.querySelector(".d-primary").dataset.path = `diagnoses.${i}.primary`;
  });
  [...$("medications").children].forEach((row, i) => {
    for (const [cls, key] of [["m-medication", "medication"], ["m-dose", "dose"], ["m-frequency", "frequency"],
      ["m-days", "duration_days"], ["m-instructions", "instructions"]]) {
      row.querySelector(`.${cls}`).dataset.path = `prescription.items.${i}.${key}`;
    }
  });
}

function addDiagnosis(diagnosis = {}) {
  const row = cloneRow("diagnosis-row");
  row.querySelector(".d-code").value = diagnosis.icd10 || "";
  row.querySelector(".d-text").value = diagnosis.text || "";
  row.querySelector(".d-primary").checked = Boolean(diagnosis.primary) || $("diagnoses").children.length === 0;
  row.querySelector(".remove").addEventListener("click", () => {
    const wasPrimary = row.querySelector(".d-primary").checked;
    row.remove();
    if (wasPrimary) $("diagnoses").querySelector(".d-primary")?.click();
    renumber();
    changed();
  });
  $("diagnoses").append(row);
  renumber();
  return row;
}

function addMedication(item = {}) {
  const row = cloneRow("medication-row");
  row.querySelector(".m-medication").value = item.medication || "";
  row.querySelector(".m-dose").value = item.dose || "";
  row.querySelector(".m-frequency").value = item.frequency || "";
  row.querySelector(".m-days").value = item.duration_days ?? "";
  row.querySelector(".m-instructions").value = item.instructions || "";
  row.querySelector(".remove").addEventListener("click", () => { row.remove(); renumber(); changed(); });
  $("medications").append(row);
  renumber();
  return row;
}

// ---- errors next to their fields ----

function clearErrors() {
  for (const p of form.querySelectorAll(".field-error")) { p.hidden = true; p.textContent = ""; }
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
}

function setError(el, message, detail = "") {
  const field = el.closest(".field") || el.parentElement;
  const p = field.querySelector(".field-error");
  if (p) {
    p.textContent = message;
    p.title = detail; // the API's own words, for whoever supports the clinic
    p.hidden = false;
  }
  el.setAttribute("aria-invalid", "true");
}

// The API names the first bad field: "diagnoses.0.icd10: Value error, …". A model-level refusal names
// the part ("triage"); the alias says which input stands for it.
const ALIASES = {
  triage: "triage.escalation", identification: "identification.checked", soap: "soap.subjective",
  prescription: "prescription.e_prescription_code", follow_up: "follow_up.note", diagnoses: "diagnoses.0.icd10",
};

function inputFor(path) {
  let p = path;
  while (p) {
    const el = form.querySelector(`[data-path="${p}"]`) || (ALIASES[p] && form.querySelector(`[data-path="${ALIASES[p]}"]`));
    if (el) return el;
    p = p.includes(".") ? p.slice(0, p.lastIndexOf(".")) : "";
  }
  return null;
}

function messageFor(path, raw) {
  if (/narcotic|psychotropic/i.test(raw)) return t.err_controlled;
  const leaf = path.split(".").filter((part) => !/^\d+$/.test(part)).pop();
  const byField = {
    icd10: t.err_icd10, e_prescription_code: t.err_e_prescription, triage: t.err_escalation,
    escalation: t.err_escalation, checked: t.err_identity, identification: t.err_identity,
    consent_confirmed: t.err_consent, duration_days: t.err_days,
  };
  if (byField[leaf]) return byField[leaf];
  if (/at most|too long/i.test(raw)) return t.err_too_long;
  if (/at least 1 character|field required|missing/i.test(raw)) return t.err_required;
  return t.err_invalid;
}

// ---- collecting the form ----

const value = (id) => $(id).value.trim();

function collect() {
  const problems = [];
  const urgency = form.querySelector("input[name=urgency]:checked")?.value || "routine";
  if (!$("identity-checked").checked) problems.push([$("identity-checked"), t.err_identity]);
  if (!$("consent-confirmed").checked) problems.push([$("consent-confirmed"), t.err_consent]);
  if (urgency !== "routine" && !value("escalation")) problems.push([$("escalation"), t.err_escalation]);

  const diagnoses = [];
  for (const row of $("diagnoses").children) {
    const code = row.querySelector(".d-code").value.trim();
    const text = row.querySelector(".d-text").value.trim();
    if (!code && !text) continue;
    if (!code) problems.push([row.querySelector(".d-code"), t.err_code_needed]);
    diagnoses.push({ icd10: code, text, primary: row.querySelector(".d-primary").checked });
  }
  if (diagnoses.length && !diagnoses.some((d) => d.primary)) diagnoses[0].primary = true;

  const items = [];
  for (const row of $("medications").children) {
    const get = (cls) => row.querySelector(`.${cls}`).value.trim();
    const item = { medication: get("m-medication"), dose: get("m-dose"), frequency: get("m-frequency"),
      duration_days: get("m-days") === "" ? null : Number(get("m-days")), instructions: get("m-instructions") };
    if (!item.medication && !item.dose && !item.frequency && item.duration_days === null && !item.instructions) continue;
    for (const [cls, key] of [["m-medication", "medication"], ["m-dose", "dose"], ["m-frequency", "frequency"]]) {
      if (!item[key]) problems.push([row.querySelector(`.${cls}`), t.err_required]);
    }
    if (!Number.isInteger(item.duration_days) || item.duration_days < 1 || item.duration_days > 365) {
      problems.push([row.querySelector(".m-days"), t.err_days]);
    }
    items.push(item);
  }
  const code = value("e-prescription");
  const note = value("follow-up-note");
  const body = {
    identification: { checked: $("identity-checked").checked, method: $("identity-method").value },
    consent_confirmed: $("consent-confirmed").checked,
    triage: { urgency, escalation: urgency === "routine" ? null : value("escalation") || null },
    soap: { subjective: value("soap-subjective"), objective: value("soap-objective"),
      assessment: value("soap-assessment"), plan: value("soap-plan") },
    diagnoses,
    prescription: code || items.length ? { e_prescription_code: code || null, items } : null,
    follow_up: state.bookingId || note ? { booking_id: state.bookingId, note } : null,
  };
  return { body, problems };
}

function fill(record) {
  $("identity-method").value = record.identification?.method || "cccd";
  $("identity-checked").checked = Boolean(record.identification?.checked);
  $("consent-confirmed").checked = Boolean(record.consent_confirmed);
  const urgency = record.triage?.urgency || "routine";
  form.querySelector(`input[name=urgency][value=${urgency}]`).checked = true;
  $("escalation").value = record.triage?.escalation || "";
  for (const key of ["subjective", "objective", "assessment", "plan"]) $(`soap-${key}`).value = record.soap?.[key] || "";
  $("diagnoses").replaceChildren();
  (record.diagnoses || []).forEach((d) => addDiagnosis(d));
  if (!$("diagnoses").children.length) addDiagnosis();
  $("e-prescription").value = record.prescription?.e_prescription_code || "";
  $("medications").replaceChildren();
  (record.prescription?.items || []).forEach((item) => addMedication(item));
  if (!$("medications").children.length) addMedication();
  $("follow-up-note").value = record.follow_up?.note || "";
  state.bookingId = record.follow_up?.booking_id || null;
  showUrgency();
  const primary = (record.diagnoses || []).find((d) => d.primary) || record.diagnoses?.[0];
  if (record.eligibility && primary) showEligibility(record.eligibility.verdict, primary.icd10);
}

// ---- triage ----

function showUrgency() {
  const urgency = form.querySelector("input[name=urgency]:checked")?.value;
  $("escalation-field").hidden = urgency === "routine";
  $("emergency-notice").hidden = urgency !== "emergency";
}

// ---- Thông tư 30 ----

function showEligibility(verdict, code) {
  const box = $("eligibility");
  box.hidden = false;
  box.dataset.verdict = verdict;
  const values = { code: code.toUpperCase(), ...listInfo };
  $("eligibility-text").textContent = fmt({ eligible: t.eligible, not_on_verified_list: t.not_verified,
    not_eligible: t.not_eligible }[verdict] || verdict, values);
  $("eligibility-offers").hidden = verdict === "eligible";
}

// ---- saving, versions, signing ----

function changed() {
  state.dirty = true;
  if (canWrite) $("sign").disabled = true;
  say(t.unsaved);
}

async function save() {
  if (state.saving || !canWrite) return false;
  clearErrors();
  const { body, problems } = collect();
  if (problems.length) {
    for (const [el, message] of problems) setError(el, message);
    say(t.fix_fields, "error");
    problems[0][0].focus();
    return false;
  }
  state.saving = true;
  $("save").disabled = true;
  say(t.saving);
  try {
    const saved = await api("PUT", recordUrl, body);
    state.documentId = saved.document_id;
    state.version = saved.version;
    state.dirty = false;
    const primary = body.diagnoses.find((d) => d.primary);
    if (saved.eligibility && primary) showEligibility(saved.eligibility.verdict, primary.icd10);
    else $("eligibility").hidden = true;
    say(fmt(t.saved, { n: saved.version }), "success");
    await loadHistory();
    return true;
  } catch (err) {
    const match = err.status === 400 ? /^([\w.]+):\s*(.*)$/s.exec(err.message) : null;
    const el = match ? inputFor(match[1]) : null;
    if (el) {
      setError(el, messageFor(match[1], match[2]), err.message);
      say(t.fix_fields, "error");
      el.focus();
    } else if (err.code === "consent_required") {
      say(t.consent_required, "error");
    } else {
      say(err.status === 0 ? t.network : `${t.error} ${err.message}`, "error");
    }
    return false;
  } finally {
    state.saving = false;
    $("save").disabled = false;
  }
}

function when(iso, timeZone = zone) {
  return new Intl.DateTimeFormat(lang, { timeZone, weekday: "long", day: "2-digit", month: "2-digit",
    year: "numeric", hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(new Date(iso));
}

async function loadHistory() {
  if (!state.documentId) return;
  const doc = await api("GET", `/api/records/documents/${state.documentId}`);
  state.version = doc.current_version;
  const roles = { doctor: t.role_doctor, nurse: t.role_nurse };
  const signedBy = (v) => v.signatures.map((s) => (s.signer_id === root.dataset.user ? t.you : roles[s.signer_role] || s.signer_role));
  $("versions").replaceChildren(...doc.versions.slice().reverse().map((v) => {
    const li = document.createElement("li");
    li.dataset.version = v.version;
    const who = signedBy(v);
    li.textContent = `${fmt(t.version, { n: v.version })} · ${when(v.created_at)} · ${
      who.length ? fmt(t.signed_by, { who: who.join(", ") }) : t.not_signed}`;
    return li;
  }));
  const current = doc.versions.find((v) => v.version === doc.current_version);
  const who = current ? signedBy(current) : [];
  $("version-line").textContent = `${fmt(t.version, { n: doc.current_version })} — ${
    who.length ? fmt(t.signed_by, { who: who.join(", ") }) : t.not_signed}`;
  $("version-line").dataset.version = doc.current_version;
  $("version-line").dataset.signed = String(who.length > 0);
  $("print").hidden = doc.current_version < 1;
  if (canWrite) {
    const mine = current?.signatures.some((s) => s.signer_id === root.dataset.user);
    $("sign").disabled = state.dirty || !current || mine;
    $("sign").textContent = fmt(t.sign_version, { n: doc.current_version });
  }
}

async function sign() {
  if (state.dirty) { say(t.sign_dirty, "error"); return; }
  try {
    await api("POST", `/api/records/documents/${state.documentId}/versions/${state.version}/sign`);
    say(fmt(t.signed, { n: state.version }), "success");
  } catch (err) {
    say(err.code === "already_signed" ? t.already_signed : `${t.error} ${err.message}`, "error");
  }
  await loadHistory();
}

// ---- follow-up booking (the scheduling API) ----

const resource = () => state.resources.find((r) => r.id === $("follow-up-resource").value);

async function loadCalendars() {
  const { resources } = await api("GET", "/api/scheduling/resources");
  state.resources = resources.filter((r) => r.tenant_id === tenant && r.kind !== "class");
  if (!state.resources.length) {
    $("follow-up-slot").replaceChildren(new Option(t.no_calendar, ""));
    return;
  }
  const preferred = state.resources.find((r) => r.user_id === practitioner) || state.resources[0];
  $("follow-up-resource").replaceChildren(...state.resources.map((r) => new Option(r.name, r.id, false, r === preferred)));
  $("follow-up-resource-field").hidden = state.resources.length < 2;
  await loadSlots();
}

async function loadSlots() {
  const chosen = resource();
  if (!chosen) return;
  const from = new Date();
  const to = new Date(from.getTime() + 14 * 86400000);
  const query = `from=${encodeURIComponent(from.toISOString())}&to=${encodeURIComponent(to.toISOString())}`;
  const { slots, timezone } = await api("GET", `/api/scheduling/resources/${chosen.id}/slots?${query}`);
  const day = new Intl.DateTimeFormat(lang, { timeZone: timezone, weekday: "long", day: "2-digit", month: "2-digit" });
  const time = new Intl.DateTimeFormat(lang, { timeZone: timezone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
  const groups = new Map();
  for (const slot of slots.filter((s) => s.free > 0)) {
    const label = day.format(new Date(slot.start));
    if (!groups.has(label)) groups.set(label, []);
    groups.get(label).push(new Option(time.format(new Date(slot.start)), slot.start));
  }
  const select = $("follow-up-slot");
  if (!groups.size) {
    select.replaceChildren(new Option(t.no_slots, ""));
  } else {
    select.replaceChildren(new Option(t.choose_slot, ""), ...[...groups].map(([label, options]) => {
      const group = document.createElement("optgroup");
      group.label = label;
      group.append(...options);
      return group;
    }));
  }
  $("follow-up-book").disabled = true;
}

async function showBooking() {
  const booked = Boolean(state.bookingId);
  $("follow-up-booked").hidden = !booked;
  $("follow-up-picker").hidden = booked;
  if (!booked) return;
  try {
    const booking = await api("GET", `/api/scheduling/bookings/${state.bookingId}`);
    const calendar = state.resources.find((r) => r.id === booking.resource_id);
    $("follow-up-when").textContent = when(booking.start, calendar?.timezone);
    $("follow-up-booked").dataset.status = booking.status;
  } catch (err) {
    $("follow-up-when").textContent = `${t.error} ${err.message}`;
  }
}

async function book() {
  const chosen = resource();
  const start = $("follow-up-slot").value;
  if (!chosen || !start) return;
  clearErrors();
  $("follow-up-book").disabled = true;
  try {
    const booking = await api("POST", `/api/scheduling/resources/${chosen.id}/bookings`,
      { start, subject_user_id: patient, note: "" });
    state.bookingId = booking.id;
    changed();
    await showBooking();
    say(fmt(t.booked, { when: when(booking.start, chosen.timezone) }), "success");
    await save(); // the booking belongs in the record: a forgotten save would lose the link
  } catch (err) {
    if (err.code === "slot_taken" || err.code === "slot_unavailable") {
      setError($("follow-up-slot"), t.slot_taken, err.message);
      await loadSlots();
    } else {
      say(`${t.booking_failed} ${err.message}`, "error");
    }
  }
}

async function cancelBooking() {
  try {
    await api("POST", `/api/scheduling/bookings/${state.bookingId}/cancel`, { reason: "" });
  } catch (err) {
    if (err.status !== 409) { say(`${t.error} ${err.message}`, "error"); return; }
  }
  state.bookingId = null;
  changed();
  await showBooking();
  await loadSlots();
  say(t.follow_up_cancelled);
  await save();
}

// ---- the end of the visit ----

function askEnd(asking) {
  $("end-visit").hidden = asking;
  $("end-confirm").hidden = !asking;
  $("end-cancel").hidden = !asking;
}

async function endVisit() {
  askEnd(false);
  if (state.dirty && !(await save())) { say(`${t.not_ended} ${$("record-status").textContent}`, "error"); return; }
  try {
    await api("POST", `/api/clinics/encounters/${encounter}/end`);
  } catch (err) {
    say(`${t.not_ended} ${err.message}`, "error");
    return;
  }
  $("visit-state").textContent = t.visit_ended;
  $("visit-state").dataset.status = "finished";
  $("end-row").hidden = true;
  say(t.ended, "success");
  if (view === "call") {
    // Leave the call cleanly, then keep the record (to sign or print) without the call.
    const call = window.caunoi;
    if (call) {
      call.leaving = true;
      call.signal?.send({ type: "leave" });
      call.signal?.close();
      call.stream?.getTracks().forEach((track) => track.stop());
    }
    location.assign(`/clinic/encounters/${encounter}/record`);
  }
}

// ---- the call view on a phone: two tabs ----

function showTab(name) {
  const consult = $("consult");
  if (!consult) return;
  consult.dataset.tab = name;
  $("tab-call").setAttribute("aria-selected", String(name === "call"));
  $("tab-record").setAttribute("aria-selected", String(name === "record"));
}

// ---- wiring ----

function wire() {
  // Choosing a follow-up time is not an edit of the record (booking it is).
  const edited = (event) => { if (!event.target.closest("#follow-up-picker")) changed(); };
  form.addEventListener("input", edited);
  form.addEventListener("change", (event) => {
    if (event.target.name === "urgency") showUrgency();
    edited(event);
  });
  form.addEventListener("submit", (event) => { event.preventDefault(); save(); });
  $("add-diagnosis").addEventListener("click", () => addDiagnosis().querySelector(".d-code").focus());
  $("add-medication").addEventListener("click", () => addMedication().querySelector(".m-medication").focus());
  $("offer-referral").addEventListener("click", () => {
    const plan = $("soap-plan");
    plan.value = `${plan.value.trim()}${plan.value.trim() ? "\n" : ""}${t.referral} `;
    changed();
    plan.focus();
    plan.setSelectionRange(plan.value.length, plan.value.length);
  });
  $("offer-in-person").addEventListener("click", () => {
    $("step-follow-up").scrollIntoView({ block: "start" });
    (state.bookingId ? $("follow-up-note") : $("follow-up-slot")).focus();
  });
  $("follow-up-resource").addEventListener("change", loadSlots);
  $("follow-up-slot").addEventListener("change", () => { $("follow-up-book").disabled = !$("follow-up-slot").value; });
  $("follow-up-book").addEventListener("click", book);
  $("follow-up-cancel").addEventListener("click", cancelBooking);
  if (canWrite) $("sign").addEventListener("click", sign);
  if ($("end-visit")) {
    $("end-visit").addEventListener("click", () => askEnd(true));
    $("end-cancel").addEventListener("click", () => askEnd(false));
    $("end-confirm").addEventListener("click", endVisit);
  }
  $("tab-call")?.addEventListener("click", () => showTab("call"));
  $("tab-record")?.addEventListener("click", () => showTab("record"));
  // Leaving with unsaved notes loses them otherwise: the browser asks first.
  window.addEventListener("beforeunload", (event) => { if (state.dirty) event.preventDefault(); });
  if (!canWrite) for (const el of form.elements) el.disabled = true;
}

async function start() {
  wire();
  try {
    const current = await api("GET", recordUrl);
    state.documentId = current.document_id;
    state.version = current.version;
    fill(current.record);
  } catch (err) {
    fill({});
    if (err.status !== 404) say(`${t.error} ${err.message}`, "error");
  }
  state.dirty = false;
  say("");
  try {
    await loadCalendars();
    await showBooking();
    await loadHistory();
  } catch (err) {
    say(`${t.error} ${err.message}`, "error");
  }
  root.dataset.ready = "true";
}

start();
