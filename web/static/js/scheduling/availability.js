// The availability editor: weekly hours per weekday and exceptions (closed/open periods), saved
// all at once with PUT (the API replaces everything). The DOM is the editor's state: what is on
// screen is what gets saved. Mistakes are shown next to the field they concern, before and after
// the server has had its say.
import { $, addDays, api, el, formatDay, fromZoned, isoInZone, readJson, say, t, todayIn, zoned } from "./common.js";

const config = readJson("config");
const resource = config.resource;
const zone = resource.timezone;
let fieldCounter = 0;

function field(labelText, input, extra = null) {
  const id = `f${++fieldCounter}`;
  input.id = id;
  const error = el("p", { class: "field-error", id: `${id}-error`, hidden: true });
  input.setAttribute("aria-describedby", error.id);
  return el("div", { class: "field" }, el("label", { for: id, text: labelText }), input, extra, error);
}

// Times are typed, not picked: <input type="time"> follows the phone's language and may show
// "04:30 PM". People here write "7h30", "7:30", "07.30" or "730"; all mean 07:30 (24-hour clock).
function parseTime(text) {
  const match = /^\s*(\d{1,2})(?:\s*[:hHgG.]\s*(\d{2})?|(\d{2}))?\s*$/.exec(text);
  if (!match) return null;
  const hour = Number(match[1]);
  const minute = Number(match[2] ?? match[3] ?? 0);
  if (hour > 23 || minute > 59) return null;
  return `${String(hour).padStart(2, "0")}:${String(minute).padStart(2, "0")}`;
}

function timeInput(cls, value) {
  const input = el("input", { type: "text", class: `time ${cls}`, value: value || "", inputmode: "numeric",
    autocomplete: "off", maxlength: "5", placeholder: "07:30", size: "5" });
  input.addEventListener("blur", () => { const parsed = parseTime(input.value); if (parsed) input.value = parsed; });
  return input;
}

function dateInput(cls, value) {
  // The picker shows dates in the phone's format; the line below says the day the Vietnamese way.
  const input = el("input", { type: "date", class: cls, value, required: true });
  const hint = el("span", { class: "date-hint" });
  const update = () => { hint.textContent = /^\d{4}-\d{2}-\d{2}$/.test(input.value) ? formatDay(input.value) : ""; };
  input.addEventListener("input", update);
  input.addEventListener("change", update);
  update();
  return { input, hint };
}

function setError(input, message) {
  const error = document.getElementById(`${input.id}-error`);
  error.textContent = message || "";
  error.hidden = !message;
  if (message) input.setAttribute("aria-invalid", "true");
  else input.removeAttribute("aria-invalid");
}

function clearErrors() {
  for (const input of document.querySelectorAll("#availability-form [aria-invalid]")) setError(input, "");
}

// --- weekly hours ---------------------------------------------------------------------------

function rangeRow(weekday, rule) {
  const start = timeInput("range-start", rule.start);
  const end = timeInput("range-end", rule.end);
  const row = el("div", { class: "range", role: "group", dataset: {
    validFrom: rule.valid_from || "", validUntil: rule.valid_until || "" } });
  const remove = el("button", { type: "button", class: "remove", text: t.remove });
  const label = () => t.remove_range.replace("{start}", start.value || "…").replace("{end}", end.value || "…")
    .replace("{day}", t.weekdays[weekday]);
  remove.setAttribute("aria-label", label());
  for (const input of [start, end]) input.addEventListener("change", () => remove.setAttribute("aria-label", label()));
  remove.addEventListener("click", () => {
    const list = row.parentElement;
    row.remove();
    updateClosed(list);
    list.closest(".weekday").querySelector(".add-range").focus();
  });
  row.append(field(t.from, start), field(t.until, end), remove);
  if (rule.valid_from || rule.valid_until) {
    // Rules limited to a period (set through the API) keep their period when saved from here.
    row.append(el("p", { class: "hint limited", text: t.limited.replace("{from}", rule.valid_from || "…")
      .replace("{until}", rule.valid_until || "…") }));
  }
  return row;
}

function updateClosed(list) {
  list.closest(".weekday").querySelector(".closed").hidden = list.children.length > 0;
}

function dayBox(weekday, rules) {
  const list = el("div", { class: "ranges" }, rules.map((rule) => rangeRow(weekday, rule)));
  const add = el("button", { type: "button", class: "add-range", text: t.add_range });
  add.addEventListener("click", () => {
    const previous = list.lastElementChild;
    // A second range usually follows the first (morning, then afternoon).
    const guess = previous ? { start: previous.querySelector(".range-end").value, end: "" } : { start: "07:30", end: "11:30" };
    const row = rangeRow(weekday, guess);
    list.append(row);
    updateClosed(list);
    row.querySelector("input").focus();
  });
  const box = el("fieldset", { class: "weekday", dataset: { weekday: String(weekday) } },
    el("legend", { text: t.weekdays[weekday] }),
    el("p", { class: "closed hint", text: t.closed_day, hidden: rules.length > 0 }),
    list, el("div", { class: "row" }, add));
  if (weekday === 0) {
    const copy = el("button", { type: "button", class: "copy-monday", text: t.copy_monday });
    copy.addEventListener("click", () => copyMonday());
    box.querySelector(".row").append(copy);
  }
  return box;
}

function readRanges(box) {
  return [...box.querySelectorAll(".range")].map((row) => ({
    row, start: row.querySelector(".range-start"), end: row.querySelector(".range-end"),
    valid_from: row.dataset.validFrom || null, valid_until: row.dataset.validUntil || null,
  }));
}

function copyMonday() {
  const monday = readRanges(document.querySelector('.weekday[data-weekday="0"]'))
    .map((r) => ({ start: parseTime(r.start.value) || r.start.value, end: parseTime(r.end.value) || r.end.value }));
  for (let weekday = 1; weekday <= 4; weekday++) {
    const list = document.querySelector(`.weekday[data-weekday="${weekday}"] .ranges`);
    list.replaceChildren(...monday.map((rule) => rangeRow(weekday, rule)));
    updateClosed(list);
  }
}

// --- exceptions -----------------------------------------------------------------------------

function exceptionRow(exception) {
  const kind = el("select", { class: "ex-kind" },
    el("option", { value: "closed", text: t.kind_closed, selected: exception.kind === "closed" }),
    el("option", { value: "open", text: t.kind_open, selected: exception.kind === "open" }));
  const from = dateInput("ex-from-date", exception.fromDate);
  const until = dateInput("ex-until-date", exception.untilDate);
  const fromDate = from.input;
  const untilDate = until.input;
  const allDay = el("input", { type: "checkbox", class: "ex-all-day", checked: exception.allDay });
  const fromTime = timeInput("ex-from-time", exception.fromTime);
  const untilTime = timeInput("ex-until-time", exception.untilTime);
  const reason = el("input", { type: "text", class: "ex-reason", maxlength: "200", value: exception.reason });
  const times = el("div", { class: "row times", hidden: exception.allDay }, field(t.from_time, fromTime),
    field(t.until_time, untilTime));
  allDay.addEventListener("change", () => { times.hidden = allDay.checked; });
  fromDate.addEventListener("change", () => {
    if (!untilDate.value || untilDate.value < fromDate.value) {
      untilDate.value = fromDate.value;
      untilDate.dispatchEvent(new Event("change"));
    }
  });
  const allDayId = `f${++fieldCounter}`;
  allDay.id = allDayId;
  const remove = el("button", { type: "button", class: "remove", text: t.remove, "aria-label": t.remove_exception });
  const row = el("fieldset", { class: "exception" },
    el("div", { class: "row" }, field(t.kind, kind), field(t.reason, reason)),
    el("div", { class: "row" }, field(t.from_date, fromDate, from.hint), field(t.until_date, untilDate, until.hint)),
    el("div", { class: "check" }, allDay, el("label", { for: allDayId, text: t.all_day })),
    times, el("div", { class: "row" }, remove));
  remove.addEventListener("click", () => { row.remove(); updateNoExceptions(); $("add-exception").focus(); });
  return row;
}

function updateNoExceptions() {
  const list = $("exceptions");
  let empty = list.querySelector(".no-exceptions");
  if (!list.querySelector(".exception")) {
    if (!empty) list.append(el("p", { class: "no-exceptions hint", text: t.no_exceptions }));
  } else if (empty) {
    empty.remove();
  }
}

// An API exception (two instants) as a person thinks of it: whole days, or a period with times.
function exceptionForm(exception) {
  const start = zoned(new Date(exception.starts_at), zone);
  const end = zoned(new Date(exception.ends_at), zone);
  const allDay = start.time === "00:00" && end.time === "00:00";
  return {
    kind: exception.kind, reason: exception.reason, allDay, fromDate: start.dateKey,
    untilDate: allDay ? addDays(end.dateKey, -1) : end.dateKey,
    fromTime: allDay ? "08:00" : start.time, untilTime: allDay ? "17:00" : end.time,
  };
}

function readException(row) {
  const q = (cls) => row.querySelector(cls);
  return {
    row, kind: q(".ex-kind"), fromDate: q(".ex-from-date"), untilDate: q(".ex-until-date"), allDay: q(".ex-all-day"),
    fromTime: q(".ex-from-time"), untilTime: q(".ex-until-time"), reason: q(".ex-reason"),
  };
}

// --- validation and saving ------------------------------------------------------------------

const minutes = (hhmm) => { const [h, m] = hhmm.split(":").map(Number); return h * 60 + m; };
// "00:00" as an end means midnight, the end of the day (the API accepts it so).
const endMinutes = (hhmm) => (hhmm === "00:00" ? 24 * 60 : minutes(hhmm));

function checkTime(input, invalid) {
  if (!input.value.trim()) { invalid.push([input, t.required]); return null; }
  const parsed = parseTime(input.value);
  if (!parsed) { invalid.push([input, t.time_format]); return null; }
  input.value = parsed;
  return parsed;
}

function collect() {
  const rules = [];
  const ruleInputs = [];
  const exceptions = [];
  const exceptionInputs = [];
  let invalid = [];
  for (const box of document.querySelectorAll(".weekday")) {
    const weekday = Number(box.dataset.weekday);
    const seen = [];
    for (const range of readRanges(box)) {
      const startTime = checkTime(range.start, invalid);
      const endTime = checkTime(range.end, invalid);
      if (!startTime || !endTime) continue;
      const s = minutes(startTime);
      const e = endMinutes(endTime);
      if (e <= s) { invalid.push([range.end, t.end_after_start]); continue; }
      if (seen.some(([a, b, from, until]) => s < b && a < e && from === range.valid_from && until === range.valid_until)) {
        invalid.push([range.start, t.overlap]);
        continue;
      }
      seen.push([s, e, range.valid_from, range.valid_until]);
      rules.push({ weekday, start: startTime, end: endTime, valid_from: range.valid_from,
        valid_until: range.valid_until });
      ruleInputs.push(range);
    }
  }
  for (const row of document.querySelectorAll(".exception")) {
    const x = readException(row);
    const before = invalid.length;
    if (!x.fromDate.value) invalid.push([x.fromDate, t.required]);
    if (!x.untilDate.value) invalid.push([x.untilDate, t.required]);
    const fromTime = x.allDay.checked ? "00:00" : checkTime(x.fromTime, invalid);
    const untilTime = x.allDay.checked ? "00:00" : checkTime(x.untilTime, invalid);
    if (invalid.length > before) continue;
    if (x.untilDate.value < x.fromDate.value) { invalid.push([x.untilDate, t.last_before_first]); continue; }
    const startsAt = fromZoned(x.fromDate.value, fromTime, zone);
    const endsAt = fromZoned(x.allDay.checked ? addDays(x.untilDate.value, 1) : x.untilDate.value, untilTime, zone);
    if (endsAt <= startsAt) { invalid.push([x.untilTime, t.end_after_start]); continue; }
    exceptions.push({ kind: x.kind.value, starts_at: isoInZone(startsAt, zone), ends_at: isoInZone(endsAt, zone),
      reason: x.reason.value.trim() });
    exceptionInputs.push(x);
  }
  return { body: { rules, exceptions }, ruleInputs, exceptionInputs, invalid };
}

// The API names every bad field, e.g. {section: "rules", index: 3, name: "end"} or
// {section: "exceptions", index: 0, name: "ends_at"}; the index is the row's place in what was sent.
function inputFor(section, index, name, ruleInputs, exceptionInputs) {
  if (section === "rules" && ruleInputs[index]) {
    return name === "start" ? ruleInputs[index].start : ruleInputs[index].end;
  }
  if (section === "exceptions" && exceptionInputs[index]) {
    const x = exceptionInputs[index];
    if (name === "reason") return x.reason;
    if (name === "kind") return x.kind;
    if (name === "starts_at") return x.allDay.checked ? x.fromDate : x.fromTime;
    return x.allDay.checked ? x.untilDate : x.untilTime;
  }
  return null;
}

// Older answers carried one error in the message only: "rules.3.end: …".
function detailsOf(err) {
  if (err.details?.length) return err.details;
  const match = /^(rules|exceptions)\.(\d+)\.?(\w*):\s*(.*)$/.exec(err.message);
  return match ? [{ section: match[1], index: Number(match[2]), name: match[3], message: match[4] }] : [];
}

const SERVER_MESSAGES = { overlap: "overlap", end_before_start: "end_after_start", time_parsing: "time_format",
  time_type: "time_format" };

// Marks every field the server refused; returns the inputs marked (none: the error fits no field).
function markServerErrors(err, ruleInputs, exceptionInputs) {
  const marked = [];
  for (const detail of detailsOf(err)) {
    const input = inputFor(detail.section, detail.index, detail.name, ruleInputs, exceptionInputs);
    if (!input || marked.includes(input)) continue;
    setError(input, t[SERVER_MESSAGES[detail.type]] || detail.message);
    marked.push(input);
  }
  return marked;
}

// Leaving with unsaved hours loses them silently otherwise (the browser asks before leaving).
let dirty = false;
window.addEventListener("beforeunload", (event) => { if (dirty) event.preventDefault(); });

async function save(event) {
  event.preventDefault();
  clearErrors();
  const status = $("editor-status");
  const { body, ruleInputs, exceptionInputs, invalid } = collect();
  if (invalid.length) {
    for (const [input, message] of invalid) setError(input, message);
    say(status, t.fix_fields, "error");
    invalid[0][0].focus();
    return;
  }
  $("save").disabled = true;
  say(status, t.saving);
  try {
    await api("PUT", `/api/scheduling/resources/${encodeURIComponent(resource.id)}/availability`, body);
    dirty = false;
    await load();
    say(status, t.saved, "success");
  } catch (err) {
    const marked = err.status === 400 ? markServerErrors(err, ruleInputs, exceptionInputs) : [];
    if (marked.length) {
      say(status, t.fix_fields, "error");
      marked[0].focus();
    } else {
      say(status, `${t.error} ${err.message}`, "error");
    }
  } finally {
    $("save").disabled = false;
  }
}

async function load() {
  const data = await api("GET", `/api/scheduling/resources/${encodeURIComponent(resource.id)}/availability`);
  const byDay = Array.from({ length: 7 }, () => []);
  for (const rule of data.rules) byDay[rule.weekday].push(rule);
  $("weekdays").replaceChildren(...byDay.map((rules, weekday) => dayBox(weekday, rules)));
  $("exceptions").replaceChildren(...data.exceptions.map((x) => exceptionRow(exceptionForm(x))));
  updateNoExceptions();
}

async function start() {
  $("availability-form").addEventListener("submit", save);
  for (const type of ["input", "change", "click"]) {
    // Clicks count only on the editing buttons (add, remove, copy), not on "save" itself.
    $("availability-form").addEventListener(type, (event) => {
      if (type !== "click" || (event.target.closest("button") && event.target.id !== "save")) dirty = true;
    });
  }
  $("add-exception").addEventListener("click", () => {
    const today = todayIn(zone);
    const row = exceptionRow({ kind: "closed", reason: "", allDay: true, fromDate: today, untilDate: today,
      fromTime: "08:00", untilTime: "17:00" });
    $("exceptions").append(row);
    updateNoExceptions();
    row.querySelector("select").focus();
  });
  say($("editor-status"), t.loading);
  try {
    await load();
    say($("editor-status"), "");
    document.body.dataset.ready = "true";
  } catch (err) {
    say($("editor-status"), `${t.error} ${err.message}`, "error");
  }
}

start();
