// Administrators add a bookable calendar (a doctor, a room, a service, a class) and go straight on
// to its working hours. Checked here first so mistakes show by their field; the API checks again.
import { $, api, say, t } from "./common.js";

const form = $("resource-form");
const NUMBERS = ["slot_minutes", "buffer_minutes", "min_notice_minutes", "horizon_days", "capacity"];

function showError(name, message) {
  const input = form.elements[name];
  const error = $(`new-${name}-error`);
  error.textContent = message || "";
  error.hidden = !message;
  if (message) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
}

function ownersOfTenant() {
  // Only the staff of the chosen facility or school may own its calendar.
  const tenant = $("new-tenant").value;
  for (const option of $("new-owner").options) {
    if (option.value) option.hidden = option.dataset.tenant !== tenant;
  }
  if ($("new-owner").selectedOptions[0]?.hidden) $("new-owner").value = "";
}

async function create(event) {
  event.preventDefault();
  const status = $("resource-status");
  const body = { name: form.elements.name.value.trim(), kind: form.elements.kind.value };
  if (form.elements.user_id.value) body.user_id = form.elements.user_id.value;
  const bad = [];
  showError("name", body.name ? "" : t.required);
  if (!body.name) bad.push("name");
  for (const name of NUMBERS) {
    const input = form.elements[name];
    const value = Number(input.value);
    const ok = input.value.trim() !== "" && Number.isInteger(value) && value >= Number(input.min) && value <= Number(input.max);
    showError(name, ok ? "" : t.number_range.replace("{min}", input.min).replace("{max}", input.max));
    if (ok) body[name] = value;
    else bad.push(name);
  }
  if (bad.length) {
    say(status, t.fix_fields, "error");
    form.elements[bad[0]].focus();
    return;
  }
  say(status, t.creating);
  try {
    const resource = await api("POST", `/api/scheduling/tenants/${encodeURIComponent($("new-tenant").value)}/resources`, body);
    window.location.assign(`/schedule/admin/${encodeURIComponent(resource.id)}/availability`);
  } catch (err) {
    const field = /^(\w+):/.exec(err.message)?.[1];
    if (err.status === 400 && field && form.elements[field]) {
      showError(field, err.message.replace(/^[^:]*:\s*/, ""));
      say(status, t.fix_fields, "error");
      form.elements[field].focus();
    } else {
      say(status, `${t.error} ${err.message}`, "error");
    }
  }
}

form.addEventListener("submit", create);
$("new-tenant").addEventListener("change", ownersOfTenant);
ownersOfTenant();
