// Schedule a remote visit from the dashboard: a free time of the doctor's calendar is booked for the
// patient (the scheduling API decides, so two staff members cannot give away one time twice), then the
// visit is made with that booking and its join link is sent (clinics/invitations.py).
const $ = (id) => document.getElementById(id);
const box = $("new-visit");
const tenant = box.dataset.tenant;
const t = JSON.parse($("new-visit-i18n").textContent);
const csrf = document.querySelector('meta[name="csrf-token"]').content;
const form = $("new-visit-form");
const error = form.querySelector("[data-error]");
let calendars = {}; // doctor's user id → their scheduling resource

async function call(method, url, body) {
  const response = await fetch(url, {
    method, cache: "no-store",
    headers: { "X-CSRF-Token": csrf, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json();
  if (!response.ok) throw new Error(data.error?.message || response.statusText);
  return data;
}

const when = (iso) => new Date(iso).toLocaleString("vi-VN", {
  weekday: "short", day: "2-digit", month: "2-digit", hour: "2-digit", minute: "2-digit",
});

async function findPatients() {
  const q = $("patient-query").value.trim();
  const { patients } = await call("GET", `/api/clinics/${tenant}/patients?q=${encodeURIComponent(q)}`);
  const select = $("patient-choice");
  select.replaceChildren(...patients.map((p) => new Option(`${p.display_name} · ${p.birth_date}`, p.id)));
  error.textContent = patients.length ? "" : t.no_patient;
}

async function loadDoctors() {
  const [{ practitioners }, { resources }] = await Promise.all([
    call("GET", `/api/clinics/${tenant}/practitioners`), call("GET", "/api/scheduling/resources")]);
  calendars = Object.fromEntries(resources.filter((r) => r.tenant_id === tenant && r.user_id)
    .map((r) => [r.user_id, r]));
  const doctors = practitioners.filter((p) => p.active && p.role === "doctor");
  $("doctor-choice").replaceChildren(...doctors.map((p) => new Option(p.name, p.user_id)));
  await loadSlots();
}

async function loadSlots() {
  const select = $("slot-choice");
  const options = [new Option(t.now, "")];
  const calendar = calendars[$("doctor-choice").value];
  if (calendar) {
    const { slots } = await call("GET", `/api/scheduling/resources/${calendar.id}/slots`);
    const free = slots.filter((s) => s.free > 0).slice(0, 60);
    options.push(...free.map((s) => new Option(when(s.start), s.start)));
    if (!free.length) error.textContent = t.no_slots;
  }
  select.replaceChildren(...options);
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  error.textContent = "";
  const patient = $("patient-choice").value;
  const doctor = $("doctor-choice").value;
  const start = $("slot-choice").value;
  try {
    const visit = { patient_id: patient, practitioner_id: doctor };
    if (start) {
      const booking = await call("POST", `/api/scheduling/resources/${calendars[doctor].id}/bookings`,
        { start, subject_user_id: patient });
      Object.assign(visit, { booking_id: booking.id, scheduled_start: start });
    }
    const made = await call("POST", `/api/clinics/${tenant}/encounters`, visit);
    const shown = $("new-visit-result");
    shown.hidden = false;
    shown.querySelector("[data-text]").textContent = made.sent_via.length
      ? t.sent.replace("{channels}", made.sent_via.join(", ")) : t.not_sent;
    shown.querySelector("[data-link]").textContent = made.join_link;
    await loadSlots(); // the booked time is no longer free
  } catch (exc) {
    error.textContent = `${t.error} ${exc.message}`; // the choices stay as they were
  }
});

let typing = null;
$("patient-query").addEventListener("input", () => { clearTimeout(typing); typing = setTimeout(findPatients, 300); });
$("doctor-choice").addEventListener("change", loadSlots);
box.addEventListener("toggle", () => { if (box.open && !$("doctor-choice").options.length) { findPatients(); loadDoctors(); } });
