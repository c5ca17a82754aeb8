// Shared by the scheduling pages: the JSON API with CSRF, time zones, and Vietnamese date formats.
// Times on the wire are UTC; people read them in the resource's zone (not the phone's, which may be wrong).

export const $ = (id) => document.getElementById(id);
export const readJson = (id) => JSON.parse($(id).textContent);
export const t = readJson("i18n");
const csrf = document.querySelector('meta[name="csrf-token"]').content;

export class ApiError extends Error {
  // details: the API's list of every bad field ({field, section, index, name, type, message}), if any.
  constructor(status, code, message, details = []) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export async function api(method, path, body) {
  const options = { method, credentials: "same-origin", headers: { Accept: "application/json" } };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  if (method !== "GET") options.headers["X-CSRF-Token"] = csrf;
  let response;
  try {
    response = await fetch(path, options);
  } catch (err) {
    throw new ApiError(0, "network", t.network_error);
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new ApiError(response.status, data.error?.code || "http_" + response.status,
      data.error?.message || response.statusText, data.error?.errors || []);
  }
  return data;
}

// Local wall-clock parts of an instant in a zone. hourCycle h23: never "24:00" at midnight.
const partFormats = new Map();
export function zoned(date, zone) {
  let format = partFormats.get(zone);
  if (!format) {
    format = new Intl.DateTimeFormat("en-GB", {
      timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit",
    });
    partFormats.set(zone, format);
  }
  const p = {};
  for (const { type, value } of format.formatToParts(date)) p[type] = value;
  const y = +p.year, m = +p.month, d = +p.day;
  return {
    year: y, month: m, day: d, hour: +p.hour, minute: +p.minute, second: +p.second,
    weekday: (new Date(Date.UTC(y, m - 1, d)).getUTCDay() + 6) % 7, // Monday 0, as the API
    dateKey: `${p.year}-${p.month}-${p.day}`, time: `${p.hour}:${p.minute}`,
  };
}

// The instant at which a zone's clocks show the given local date and time. Two passes settle
// the offset even on a DST change day (a skipped local time lands just after the gap).
export function fromZoned(dateKey, time, zone) {
  const [y, m, d] = dateKey.split("-").map(Number);
  const [hh, mm] = time.split(":").map(Number);
  const wall = Date.UTC(y, m - 1, d, hh, mm);
  let instant = wall;
  for (let i = 0; i < 2; i++) {
    const p = zoned(new Date(instant), zone);
    const shown = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
    instant += wall - shown;
  }
  return new Date(instant);
}

// ISO 8601 with the zone's own offset (what the API echoes back to people and calendars).
export function isoInZone(date, zone) {
  const p = zoned(date, zone);
  const offset = Math.round((Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - date.getTime()) / 60000);
  const sign = offset < 0 ? "-" : "+";
  const abs = Math.abs(offset);
  const pad = (n) => String(n).padStart(2, "0");
  return `${p.dateKey}T${p.time}:${pad(p.second)}${sign}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
}

export function addDays(dateKey, days) {
  const [y, m, d] = dateKey.split("-").map(Number);
  const next = new Date(Date.UTC(y, m - 1, d + days));
  return next.toISOString().slice(0, 10);
}

export function weekdayOf(dateKey) {
  const [y, m, d] = dateKey.split("-").map(Number);
  return (new Date(Date.UTC(y, m - 1, d)).getUTCDay() + 6) % 7;
}

// "Thứ Hai, 07/12/2026": weekday names come translated from the page; day/month order is Vietnamese.
export function formatDay(dateKey) {
  const [y, m, d] = dateKey.split("-");
  return `${t.weekdays[weekdayOf(dateKey)]}, ${d}/${m}/${y}`;
}

export function formatWhen(iso, zone) {
  const p = zoned(new Date(iso), zone);
  return t.day_at_time.replace("{day}", formatDay(p.dateKey)).replace("{time}", p.time);
}

export function todayIn(zone) {
  return zoned(new Date(), zone).dateKey;
}

// Replace a node's children; strings become text (never HTML: names and notes come from users).
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "dataset") Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) node.append(child);
  }
  return node;
}

export function say(node, text, kind = "info") {
  node.textContent = text;
  node.dataset.kind = kind;
  node.hidden = !text;
}

export function statusName(status) {
  return status === "booked" ? t.status_booked : t.status_cancelled;
}
