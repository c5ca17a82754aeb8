// A facility's consultations: those asked of it, its own requests, and the form to ask another facility.
const $ = (id) => document.getElementById(id);
const t = JSON.parse($("i18n").textContent);
const tenant = $("consultations").dataset.tenant;
const csrf = document.querySelector('meta[name="csrf-token"]').content;

async function getJson(url) {
  const response = await fetch(url, { cache: "no-store" });
  if (!response.ok) throw new Error((await response.json()).error?.message || response.statusText);
  return response.json();
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString("vi-VN", { dateStyle: "short", timeStyle: "short" }) : "";
}

function item(c, incoming) {
  const li = document.createElement("li");
  li.dataset.consultation = c.id;
  const link = document.createElement("a");
  link.href = `/consultation/${c.id}`;
  link.className = "room-link";
  const title = document.createElement("span");
  title.className = "room-title";
  const other = incoming ? `${t.from} ${c.requesting_facility.name}` : `${t.to} ${c.consulted_facility.name}`;
  title.textContent = `${c.department} · ${other}`;
  const details = document.createElement("span");
  details.className = "room-kind";
  const who = c.patient_name || t.patient_hidden;
  details.textContent = [t.status[c.status], t.urgency[c.urgency], who, when(c.scheduled_start)]
    .filter(Boolean).join(" · ");
  link.append(title, details);
  li.append(link);
  return li;
}

async function refresh() {
  const data = await getJson(`/api/clinics/${tenant}/consultation-requests`);
  $("incoming").replaceChildren(...data.incoming.map((c) => item(c, true)));
  $("outgoing").replaceChildren(...data.outgoing.map((c) => item(c, false)));
  $("incoming-empty").hidden = data.incoming.length > 0;
  $("outgoing-empty").hidden = data.outgoing.length > 0;
}

function option(value, text) {
  const o = document.createElement("option");
  o.value = value;
  o.textContent = text;
  return o;
}

function addQuestion(text = "") {
  const li = document.createElement("li");
  const input = document.createElement("input");
  input.className = "question";
  input.maxLength = 1000;
  input.value = text;
  input.setAttribute("aria-label", t.question);
  const remove = document.createElement("button");
  remove.type = "button";
  remove.textContent = t.remove;
  remove.addEventListener("click", () => { if ($("questions").children.length > 1) li.remove(); });
  li.append(input, remove);
  $("questions").append(li);
  return input;
}

async function loadChoices() {
  const [patients, targets] = await Promise.all([
    getJson(`/api/clinics/${tenant}/patients`), getJson(`/api/clinics/${tenant}/consultation-targets`)]);
  $("patient").replaceChildren(option("", t.choose),
    ...patients.patients.map((p) => option(p.id, `${p.display_name} (${p.birth_date})`)));
  $("facility").replaceChildren(option("", t.choose), ...targets.facilities.map((f) => option(f.id, f.name)));
}

async function submit(event) {
  event.preventDefault();
  $("form-error").textContent = "";
  const body = {
    patient_id: $("patient").value, consulted_tenant_id: $("facility").value,
    department: chosenDepartment(), urgency: $("urgency").value, reason: $("reason").value.trim(),
    history: $("history").value, findings: $("findings").value,
    questions: [...document.querySelectorAll("#questions .question")].map((i) => i.value.trim()).filter(Boolean),
  };
  const response = await fetch(`/api/clinics/${tenant}/consultation-requests`, {
    method: "POST", headers: { "X-CSRF-Token": csrf, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const result = await response.json();
  if (!response.ok) {
    const code = result.error?.code;
    $("form-error").textContent = code === "consent_required" ? t.consent_required
      : `${t.error} ${result.error?.message}`;
    return;
  }
  for (const file of $("files").files) {
    const form = new FormData();
    form.append("file", file, file.name);
    const upload = await fetch(`/api/clinics/consultation-requests/${result.id}/attachments`, {
      method: "POST", headers: { "X-CSRF-Token": csrf }, body: form,
    });
    if (!upload.ok) {
      $("form-error").textContent = `${t.error} ${file.name}: ${(await upload.json()).error?.message}`;
      return;
    }
  }
  window.location.href = `/consultation/${result.id}`;
}

// The asked facility's departments (its active ones, as staff/departments shows them to other
// facilities), to pick from; the request still carries the department's name. Free text only when
// the facility lists none (or before a facility is chosen).
async function loadDepartments() {
  const facility = $("facility").value;
  let departments = [];
  if (facility) {
    const response = await fetch(`/api/clinics/${facility}/departments`, { cache: "no-store" });
    departments = response.ok ? (await response.json()).departments : [];
  }
  if (facility !== $("facility").value) return; // another facility was chosen meanwhile
  $("department-choice").replaceChildren(option("", t.choose), ...departments.map((d) => {
    const services = d.services?.split("\n")[0];
    return option(d.name, services ? `${d.name} — ${services}` : d.name);
  }));
  const listed = departments.length > 0;
  $("department-pick").hidden = !listed;
  $("department-free").hidden = listed;
  $("department-hint").hidden = listed || !facility;
}

function chosenDepartment() {
  return $("department-pick").hidden ? $("department").value.trim() : $("department-choice").value;
}

$("facility").addEventListener("change", () => loadDepartments().catch(() => {}));
$("add-question").addEventListener("click", () => addQuestion().focus());
$("request-form").addEventListener("submit", submit);
addQuestion();
loadChoices().catch((err) => { $("notice").hidden = false; $("notice").textContent = `${t.error} ${err.message}`; });
refresh().catch((err) => { $("notice").hidden = false; $("notice").textContent = `${t.error} ${err.message}`; });
