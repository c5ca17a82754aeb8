// One hội chẩn: the request, triage (accept, decline, schedule), the patient's data for the
// participants, the call (the room page), the chair's conclusions, the signatures and the PDF.
// Polled every 4 s so that the secretary sees the minutes the chair has just saved.
const $ = (id) => document.getElementById(id);
const t = JSON.parse($("i18n").textContent);
const id = $("consultation").dataset.consultation;
const base = `/api/clinics/consultation-requests/${id}`;
const csrf = document.querySelector('meta[name="csrf-token"]').content;
let current = null;
let answersBuilt = false;
let peopleLoaded = false;

function notice(text) {
  $("notice").hidden = !text;
  $("notice").textContent = text || "";
}

async function call(method, url, body) {
  const options = { method, headers: { "X-CSRF-Token": csrf } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(url, options);
  const result = await response.json();
  if (!response.ok) throw new Error(result.error?.message || response.statusText);
  return result;
}

function when(iso) {
  return iso ? new Date(iso).toLocaleString("vi-VN", { dateStyle: "short", timeStyle: "short" }) : "—";
}

function text(el, value) { $(el).textContent = value || "—"; }

function option(value, label) {
  const o = document.createElement("option");
  o.value = value;
  o.textContent = label;
  return o;
}

async function loadPeople() {
  if (peopleLoaded) return;
  peopleLoaded = true;
  const { people } = await (await fetch(`${base}/people`, { cache: "no-store" })).json();
  const label = (p) => `${p.name} · ${p.facility}`;
  $("chair").replaceChildren(option("", t.choose),
    ...people.filter((p) => p.consulted && p.role === "doctor").map((p) => option(p.id, label(p))));
  const unique = [...new Map(people.map((p) => [p.id, p])).values()];
  $("secretary").replaceChildren(option("", t.choose), ...unique.map((p) => option(p.id, label(p))));
  $("members").replaceChildren(...unique.map((p) => {
    const row = document.createElement("label");
    row.className = "check";
    const box = document.createElement("input");
    box.type = "checkbox";
    box.value = p.id;
    box.className = "member";
    row.append(box, document.createTextNode(label(p)));
    return row;
  }));
  // Rescheduling starts from the current choice.
  const holder = (role) => current?.participants?.filter((p) => p.role === role).map((p) => p.user_id) || [];
  $("chair").value = holder("chair")[0] || "";
  $("secretary").value = holder("secretary")[0] || "";
  for (const box of document.querySelectorAll("#members .member")) box.checked = holder("member").includes(box.value);
}

function buildAnswers(c) {
  const chair = c.my_role === "chair";
  $("answers").replaceChildren(...c.questions.map((q) => {
    const box = document.createElement("label");
    box.className = "answer";
    box.textContent = `${q.position}. ${q.text}`;
    const area = document.createElement("textarea");
    area.className = "answer-text";
    area.dataset.question = q.id;
    area.maxLength = 5000;
    area.rows = 2;
    area.value = q.conclusion || "";
    area.readOnly = !chair;
    box.append(area);
    return box;
  }));
  $("conclusion").value = c.conclusion || "";
  $("icd10").value = c.diagnosis?.icd10 || "";
  $("diagnosis-text").value = c.diagnosis?.text || "";
  $("management").value = c.management || "";
  for (const field of ["conclusion", "icd10", "diagnosis-text", "management"]) $(field).readOnly = !chair;
  answersBuilt = true;
}

function renderRecord(record) {
  $("record-label").hidden = $("record").hidden = !record;
  if (!record) return;
  const diagnoses = (record.diagnoses || []).map((d) => `${d.icd10} ${d.text || ""}`).join("; ");
  $("record").textContent = `${t.assessment}: ${record.soap?.assessment || "—"}\n${t.diagnoses}: ${diagnoses || "—"}`;
}

async function renderMinutes(c) {
  const show = Boolean(c.minutes_document_id);
  $("minutes-section").hidden = !show;
  if (!show) return;
  const response = await fetch(`${base}/minutes`, { cache: "no-store" });
  if (!response.ok) return;
  const minutes = await response.json();
  $("minutes-version").textContent = `${t.version} ${minutes.version}. ` +
    (minutes.status === "signed" ? t.closed : t.needs_signing);
  $("minutes-version").dataset.version = minutes.version;
  $("signatures").replaceChildren(...(minutes.signatures.length ? minutes.signatures.map((s) => {
    const li = document.createElement("li");
    li.dataset.role = s.role || "";
    li.textContent = `${s.name} (${t.roles[s.role] || ""}) — ${t.signed_at} ${when(s.signed_at)}`;
    return li;
  }) : [Object.assign(document.createElement("li"), { textContent: t.unsigned })]));
  $("sign").hidden = !c.my_role || minutes.signed_by_me;
  $("pdf").href = `${base}/minutes.pdf`;
}

async function refresh() {
  const response = await fetch(base, { cache: "no-store" });
  if (!response.ok) { notice(`${t.error} ${response.status}`); return; }
  const c = await response.json();
  const changed = !current || current.status !== c.status;
  current = c;
  $("title").textContent = `${c.department} · ${c.consulted_facility.name}`;
  $("status").textContent = t.status[c.status];
  $("status").dataset.status = c.status;
  text("requesting", c.requesting_facility.name);
  text("consulted", `${c.consulted_facility.name} — ${c.department}`);
  text("urgency", t.urgency[c.urgency]);
  text("reason", c.reason);
  text("when", when(c.scheduled_start));
  $("decline-label").hidden = $("decline-text").hidden = !c.decline_reason;
  text("decline-text", c.decline_reason);

  $("triage").hidden = !c.may_triage;
  $("answer-request").hidden = c.status !== "requested";
  $("schedule-form").hidden = !["accepted", "scheduled"].includes(c.status);
  if (c.may_triage && !$("schedule-form").hidden) await loadPeople();

  $("patient-section").hidden = !c.full;
  if (!c.full) return;
  text("patient-name", c.patient?.name);
  text("patient-birth", c.patient?.birth_date?.split("-").reverse().join("/"));
  text("patient-sex", t.sex[c.patient?.sex]);
  text("patient-address", c.patient?.address);
  text("patient-bhyt", c.patient?.bhyt);
  text("history", c.history);
  text("findings", c.findings);
  renderRecord(c.visit_record);
  $("attachments").replaceChildren(...c.attachments.map((a) => {
    const li = document.createElement("li");
    const link = document.createElement("a");
    link.href = `${base}/attachments/${a.id}`;
    link.textContent = a.title;
    li.append(link);
    return li;
  }));
  $("participants").replaceChildren(...c.participants.map((p) => {
    const li = document.createElement("li");
    li.textContent = `${p.name} — ${t.roles[p.role]} (${p.facility})`;
    return li;
  }));
  $("call-section").hidden = !c.room || !c.my_role;
  if (c.room) $("join").href = `/rooms/${c.room}`;
  $("start").hidden = !(c.status === "scheduled" && ["chair", "secretary"].includes(c.my_role));
  const inSession = ["scheduled", "in_session", "concluded", "signed"].includes(c.status);
  $("conclusions-section").hidden = !inSession || (c.my_role !== "chair" && !c.minutes_document_id);
  $("save-conclusions").hidden = c.my_role !== "chair" || c.status === "signed";
  if (!answersBuilt || (changed && c.my_role !== "chair")) buildAnswers(c);
  await renderMinutes(c);
}

$("accept").addEventListener("click", async () => {
  try { await call("POST", `${base}/accept`); await refresh(); } catch (err) { notice(`${t.error} ${err.message}`); }
});
$("decline").addEventListener("click", async () => {
  const reason = $("decline-reason").value.trim();
  if (!reason) { notice(t.decline_reason_needed); return; }
  try { await call("POST", `${base}/decline`, { reason }); await refresh(); } catch (err) { notice(`${t.error} ${err.message}`); }
});
$("schedule-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const time = $("schedule-time").value;
  try {
    await call("POST", `${base}/schedule`, {
      scheduled_start: time ? new Date(time).toISOString() : "", chair_id: $("chair").value,
      secretary_id: $("secretary").value,
      member_ids: [...document.querySelectorAll("#members .member:checked")].map((b) => b.value),
    });
    notice("");
    await refresh();
  } catch (err) { notice(`${t.error} ${err.message}`); }
});
$("start").addEventListener("click", async () => {
  try { await call("POST", `${base}/start`); await refresh(); } catch (err) { notice(`${t.error} ${err.message}`); }
});
$("conclusions").addEventListener("submit", async (event) => {
  event.preventDefault();
  $("conclusion-error").textContent = "";
  try {
    const saved = await call("PUT", `${base}/conclusion`, {
      answers: [...document.querySelectorAll("#answers .answer-text")].map((a) => (
        { question_id: a.dataset.question, conclusion: a.value.trim() })).filter((a) => a.conclusion),
      conclusion: $("conclusion").value.trim(), diagnosis_icd10: $("icd10").value.trim() || null,
      diagnosis_text: $("diagnosis-text").value.trim(), management: $("management").value.trim(),
    });
    notice(`${t.saved} ${saved.version}`);
    await refresh();
  } catch (err) { $("conclusion-error").textContent = `${t.error} ${err.message}`; }
});
$("sign").addEventListener("click", async () => {
  $("sign-error").textContent = "";
  try {
    await call("POST", `${base}/minutes/sign`, { version: Number($("minutes-version").dataset.version) });
    $("sign").hidden = true;
    await refresh();
  } catch (err) { $("sign-error").textContent = `${t.error} ${err.message}`; }
});
refresh().catch((err) => notice(`${t.error} ${err.message}`));
setInterval(() => refresh().catch(() => {}), 4000);
