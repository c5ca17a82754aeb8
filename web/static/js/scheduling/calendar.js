// The staff calendar: a week of bookings (desktop) or one day (phone), with status, who, and cancel.
// The API names the people (subject_name); the page's list of members is the fallback.
import { $, addDays, api, el, formatDay, fromZoned, isoInZone, readJson, say, statusName, t, todayIn, weekdayOf,
  zoned } from "./common.js";
import { cancelControl, confirmControl } from "./cancel.js";

const config = readJson("config");
const resource = config.resource;
const zone = resource.timezone;
const people = new Map(config.people.map((p) => [p.id, p.name]));
const REFRESH_MS = 60000; // a booking made by a patient shows up without reloading the page

const state = {
  day: todayIn(zone),
  view: window.matchMedia("(min-width: 48rem)").matches ? "week" : "day",
  bookings: [],
  occurrences: [],
  loading: null,
};
window.caunoiCalendar = state; // for diagnostics and the browser tests

const mondayOf = (day) => addDays(day, -weekdayOf(day));

function shownDays() {
  if (state.view === "day") return [state.day];
  const monday = mondayOf(state.day);
  return Array.from({ length: 7 }, (_, i) => addDays(monday, i));
}

async function load() {
  const monday = mondayOf(state.day);
  const query = new URLSearchParams({
    from: isoInZone(fromZoned(monday, "00:00", zone), zone),
    to: isoInZone(fromZoned(addDays(monday, 7), "00:00", zone), zone),
  });
  const path = `/api/scheduling/resources/${encodeURIComponent(resource.id)}`;
  // Recurring sessions (a class's timetable) are not bookings but take the same time: show both.
  const request = Promise.all([api("GET", `${path}/bookings?${query}`), api("GET", `${path}/occurrences?${query}`)]);
  state.loading = request;
  try {
    const [data, sessions] = await request;
    if (state.loading !== request) return; // a newer request (the person moved on) wins
    state.bookings = data.bookings;
    state.occurrences = sessions.occurrences;
    say($("calendar-status"), "");
    render();
  } catch (err) {
    say($("calendar-status"), `${t.error} ${err.message}`, "error");
  }
}

function bookingItem(booking) {
  const start = zoned(new Date(booking.start), zone).time;
  const end = zoned(new Date(booking.end), zone).time;
  const who = booking.subject_name || people.get(booking.subject_user_id) || t.unknown_person;
  const item = el("li", { class: `booking status-${booking.status}`, dataset: { bookingId: booking.id } },
    el("span", { class: "when", text: `${start}–${end}` }),
    el("strong", { class: "who", text: who }),
    el("span", { class: "badge", text: statusName(booking.status) }),
    booking.note ? el("span", { class: "note", text: `${t.note} ${booking.note}` }) : null);
  if (booking.status === "booked") {
    item.append(cancelControl(booking, {
      onCancelled: () => { say($("calendar-status"), t.cancelled, "success"); load(); },
      onError: (err) => say($("calendar-status"), `${t.error} ${err.message}`, "error"),
    }));
  }
  return item;
}

function occurrenceItem(occurrence) {
  const start = zoned(new Date(occurrence.start), zone).time;
  const end = zoned(new Date(occurrence.end), zone).time;
  const status = occurrence.cancelled ? t.session_cancelled : occurrence.moved ? t.session_moved : t.session;
  const item = el("li", { class: `occurrence${occurrence.cancelled ? " status-cancelled" : ""}` },
    el("span", { class: "when", text: `${start}–${end}` }),
    el("strong", { class: "who", text: occurrence.title }),
    el("span", { class: "badge", text: status }));
  if (!occurrence.cancelled) {
    // One session off (a teacher's sick day); the rest of the series stays.
    item.append(confirmControl({
      label: t.cancel_session, question: t.cancel_session_confirm,
      perform: (note) => api("POST", `/api/scheduling/series/${encodeURIComponent(occurrence.series_id)}/cancel-occurrence`,
        { original_start: occurrence.original_start, note }),
      onDone: () => { say($("calendar-status"), t.session_was_cancelled, "success"); load(); },
      onError: (err) => say($("calendar-status"), `${t.error} ${err.message}`, "error"),
    }));
  }
  return item;
}

function render() {
  const days = shownDays();
  const today = todayIn(zone);
  $("range").textContent = days.length === 1 ? formatDay(days[0])
    : t.week_range.replace("{from}", formatDay(days[0])).replace("{until}", formatDay(days[6]));
  $("view-day").setAttribute("aria-pressed", String(state.view === "day"));
  $("view-week").setAttribute("aria-pressed", String(state.view === "week"));
  $("calendar").dataset.view = state.view;
  const byDay = new Map(days.map((d) => [d, []]));
  for (const booking of state.bookings) {
    byDay.get(zoned(new Date(booking.start), zone).dateKey)?.push({ start: booking.start, node: () => bookingItem(booking) });
  }
  for (const occurrence of state.occurrences) {
    byDay.get(zoned(new Date(occurrence.start), zone).dateKey)?.push({ start: occurrence.start,
      node: () => occurrenceItem(occurrence) });
  }
  $("calendar").replaceChildren(...days.map((day) => {
    const items = byDay.get(day).sort((a, b) => a.start.localeCompare(b.start));
    const active = state.bookings.filter((b) => b.status === "booked" && zoned(new Date(b.start), zone).dateKey === day);
    return el("section", { class: "cal-day", dataset: { day }, "aria-current": day === today ? "date" : null },
      el("h3", {}, formatDay(day), " ", el("span", { class: "count", text: t.count.replace("{n}", active.length) })),
      items.length ? el("ol", { class: "booking-list" }, items.map((item) => item.node()))
        : el("p", { class: "hint", text: t.no_bookings }));
  }));
}

function move(direction) {
  const week = state.view === "week";
  const previousMonday = mondayOf(state.day);
  state.day = addDays(state.day, direction * (week ? 7 : 1));
  if (mondayOf(state.day) === previousMonday) render();
  else load();
}

function setView(view) {
  state.view = view;
  render();
}

$("previous").addEventListener("click", () => move(-1));
$("next").addEventListener("click", () => move(1));
$("today").addEventListener("click", () => { state.day = todayIn(zone); load(); });
$("view-day").addEventListener("click", () => setView("day"));
$("view-week").addEventListener("click", () => setView("week"));
say($("calendar-status"), t.loading);
load();
setInterval(() => {
  // Not while someone is confirming a cancellation: re-rendering would throw their form away.
  if (document.visibilityState === "visible" && !document.querySelector(".cancel-confirm")) load();
}, REFRESH_MS);
