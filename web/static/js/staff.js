// The facility administrator's staff page: departments and practitioners, over the clinics API.
const $ = (id) => document.getElementById(id);
const t = JSON.parse($("i18n").textContent);
const tenant = $("staff").dataset.tenant;
const csrf = document.querySelector('meta[name="csrf-token"]').content;
let departments = [];

async function call(method, url, body) {
  const response = await fetch(url, {
    method, headers: { "X-CSRF-Token": csrf, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json();
  if (!response.ok) throw new Error(data.error?.message || response.statusText);
  return data;
}

function notice(text) {
  $("notice").textContent = text;
  $("notice").hidden = false;
}

function cell(tr, text) {
  const td = document.createElement("td");
  td.textContent = text ?? "";
  tr.append(td);
  return td;
}

// Each cell carries its column's name, shown beside it when a phone stacks the table (app.css).
function label(tr) {
  const names = [...tr.closest("table").querySelectorAll("thead th")].map((th) => th.textContent);
  [...tr.children].forEach((td, i) => { td.dataset.label = names[i] || ""; });
}

function button(text, className, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = className;
  b.textContent = text;
  b.addEventListener("click", onClick);
  return b;
}

function showLink(result) {
  const box = $("link-box");
  if (!result.password_link) {
    box.hidden = false;
    box.querySelector("[data-text]").textContent = t.linked;
    box.querySelector("[data-link]").textContent = "";
    return;
  }
  box.hidden = false;
  box.querySelector("[data-text]").textContent = result.sent_via.length
    ? t.link_sent.replace("{channels}", result.sent_via.join(", ")) : t.link_not_sent;
  box.querySelector("[data-link]").textContent = result.password_link;
}

async function loadDepartments() {
  departments = (await call("GET", `/api/clinics/${tenant}/departments`)).departments;
  const body = $("departments");
  body.replaceChildren();
  for (const d of departments) {
    const tr = document.createElement("tr");
    tr.dataset.department = d.id;
    cell(tr, d.name);
    cell(tr, d.code);
    cell(tr, d.services);
    cell(tr, d.active ? t.active : t.inactive);
    cell(tr, "").append(button(d.active ? t.deactivate : t.reactivate, "toggle", async () => {
      await guarded(() => call("PATCH", `/api/clinics/departments/${d.id}`, { active: !d.active }));
      await refresh();
    }));
    body.append(tr);
    label(tr);
  }
  const select = document.querySelector("[data-departments]");
  select.replaceChildren(new Option(t.none, ""));
  for (const d of departments.filter((d) => d.active)) select.append(new Option(d.name, d.id));
}

async function loadPractitioners() {
  const { practitioners } = await call("GET", `/api/clinics/${tenant}/practitioners`);
  const body = $("practitioners");
  body.replaceChildren();
  for (const p of practitioners) {
    const tr = document.createElement("tr");
    tr.dataset.user = p.user_id;
    cell(tr, p.password_set ? p.name : `${p.name} (${t.no_password})`);
    cell(tr, p.role ? t[p.role] : "");
    cell(tr, p.licence_number);
    cell(tr, p.department || "");
    cell(tr, p.active ? t.active : t.left);
    const actions = cell(tr, "");
    actions.append(button(p.active ? t.deactivate : t.reactivate, "toggle", async () => {
      const change = p.active ? { active: false } : { active: true, role: "doctor" };
      await guarded(() => call("PATCH", `/api/clinics/${tenant}/practitioners/${p.user_id}`, change));
      await refresh();
    }));
    actions.append(button(t.new_link, "password-link", async () => {
      const result = await guarded(() => call("POST", `/api/clinics/${tenant}/practitioners/${p.user_id}/password-link`));
      if (result) showLink(result);
    }));
    body.append(tr);
    label(tr);
  }
}

async function guarded(action, form) {
  const error = form?.querySelector("[data-error]");
  if (error) error.textContent = "";
  try {
    return await action();
  } catch (exc) {
    if (error) error.textContent = `${t.error} ${exc.message}`;
    else notice(`${t.error} ${exc.message}`);
    return null;
  }
}

function values(form) {
  const data = Object.fromEntries(new FormData(form));
  for (const [key, value] of Object.entries(data)) if (value === "") delete data[key];
  return data;
}

$("department-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  if (await guarded(() => call("POST", `/api/clinics/${tenant}/departments`, values(form)), form)) {
    form.reset();  // only once saved: nothing typed is lost on an error
    notice(t.saved);
    await refresh();
  }
});

$("practitioner-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const form = event.target;
  const result = await guarded(() => call("POST", `/api/clinics/${tenant}/practitioners`, values(form)), form);
  if (result) {
    form.reset();
    showLink(result);
    await refresh();
  }
});

async function refresh() {
  await loadDepartments();
  await loadPractitioners();
}

refresh();
