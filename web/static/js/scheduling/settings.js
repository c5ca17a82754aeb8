// A calendar's settings on the availability editor page (name, appointment length, break, notice,
// horizon, places, time zone, open for booking), saved with PATCH: only what changed is sent.
// Checked here first so that mistakes show by their field; the API checks again and names every
// bad field, which lands beside it too. What was typed is never thrown away on a refusal.
import { $, api, readJson, say, t } from "./common.js";

const config = readJson("config");
let resource = config.resource;
const form = $("settings-form");
const NUMBERS = ["slot_minutes", "buffer_minutes", "min_notice_minutes", "horizon_days", "capacity"];
const FIELDS = ["name", "timezone", "active", ...NUMBERS];

function showError(name, message) {
  const input = form.elements[name];
  const error = $(`set-${name}-error`);
  if (!error) return false;
  error.textContent = message || "";
  error.hidden = !message;
  if (message) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
  return true;
}

function read() {
  const values = { name: form.elements.name.value.trim(), timezone: form.elements.timezone.value.trim(),
    active: form.elements.active.checked };
  const bad = [];
  if (!values.name) bad.push(["name", t.required]);
  if (!values.timezone) bad.push(["timezone", t.required]);
  for (const name of NUMBERS) {
    const input = form.elements[name];
    const value = Number(input.value);
    if (input.value.trim() !== "" && Number.isInteger(value) && value >= Number(input.min) && value <= Number(input.max)) {
      values[name] = value;
    } else {
      bad.push([name, t.number_range.replace("{min}", input.min).replace("{max}", input.max)]);
    }
  }
  return { values, bad };
}

function translated(error) {
  if (error.type === "unknown_zone") return t.unknown_zone;
  if (error.type === "missing" || error.type === "required" || error.type === "string_too_short") return t.required;
  return error.message;
}

function showSummary() {
  $("settings").textContent = `${t.minutes.replace("{n}", resource.slot_minutes)} · ${t.places.replace("{n}", resource.capacity)}`;
  const banner = $("inactive-banner");
  if (banner) banner.hidden = resource.active;
}

async function save(event) {
  event.preventDefault();
  const status = $("settings-status");
  for (const name of FIELDS) showError(name, "");
  const { values, bad } = read();
  if (bad.length) {
    for (const [name, message] of bad) showError(name, message);
    say(status, t.fix_fields, "error");
    form.elements[bad[0][0]].focus();
    return;
  }
  const changes = Object.fromEntries(Object.entries(values).filter(([key, value]) => resource[key] !== value));
  if (!Object.keys(changes).length) {
    say(status, t.nothing_changed, "info");
    return;
  }
  $("save-settings").disabled = true;
  say(status, t.saving);
  try {
    const saved = await api("PATCH", `/api/scheduling/resources/${encodeURIComponent(resource.id)}`, changes);
    resource = { ...resource, ...saved };
    showSummary();
    const kept = (changes.slot_minutes !== undefined || changes.buffer_minutes !== undefined
      || changes.timezone !== undefined) && saved.upcoming_bookings > 0;
    say(status, kept ? t.settings_kept.replace("{n}", saved.upcoming_bookings) : t.settings_saved, "success");
    // The hours are read in the calendar's zone: show them again in the new one.
    if (changes.timezone !== undefined) window.location.reload();
    document.body.dataset.settingsSaved = String(Number(document.body.dataset.settingsSaved || 0) + 1);
  } catch (err) {
    const marked = (err.details || []).filter((e) => showError(e.name, translated(e)));
    if (marked.length) {
      say(status, t.fix_fields, "error");
      form.elements[marked[0].name].focus();
    } else {
      say(status, `${t.error} ${err.message}`, "error");
    }
  } finally {
    $("save-settings").disabled = false;
  }
}

form.addEventListener("submit", save);
