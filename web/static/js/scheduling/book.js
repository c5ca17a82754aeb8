// Self-booking: pick a service, a day, a time; book (or move an appointment); see "my appointments".
// A slot can be taken by someone else between showing and booking: the server answers 409 and we
// say so plainly and show the fresh list, rather than a bare error.
import { $, ApiError, addDays, api, el, formatDay, formatWhen, readJson, say, t, todayIn, zoned, fromZoned,
  isoInZone } from "./common.js";
import { cancelControl } from "./cancel.js";

const config = readJson("config");
const DAYS_PER_LOAD = 14;
const MAX_RANGE_DAYS = 62; // the API's limit for one slots request

const state = {
  resource: null, loadedUntil: null, slotsByDay: new Map(), day: null, slot: null, moving: null, busy: false,
};
window.caunoiBooking = state; // for diagnostics and the browser tests

const statusBox = () => $("booking-status");

function resourceById(id) {
  return config.resources.find((r) => r.id === id);
}

function clearChoice() {
  state.slot = null;
  $("step-confirm").hidden = true;
}

async function selectResource(id) {
  state.resource = resourceById(id);
  state.slotsByDay = new Map();
  state.day = null;
  state.loadedUntil = todayIn(state.resource.timezone);
  clearChoice();
  renderStaffLinks();
  renderSubjects();
  $("days").replaceChildren();
  $("slots").replaceChildren();
  await loadMoreDays();
}

function renderStaffLinks() {
  const r = state.resource;
  const links = [];
  if (r.staff) links.push(el("a", { href: `/schedule/calendar/${r.id}`, text: t.calendar }));
  if (r.admin) links.push(el("a", { href: `/schedule/admin/${r.id}/availability`, text: t.availability }));
  $("staff-links").replaceChildren(...links.flatMap((a, i) => (i ? [" · ", a] : [a])));
}

function renderSubjects() {
  // Staff may book on someone's behalf (a nurse booking for an older patient who called the station).
  const clients = config.clients.filter((c) => c.tenant_id === state.resource.tenant_id);
  const show = state.resource.staff && clients.length > 0 && !state.moving;
  $("subject-field").hidden = !show;
  $("subject").replaceChildren(el("option", { value: "", text: t.myself }),
    ...clients.map((c) => el("option", { value: c.id, text: c.name })));
}

// Slots are fetched for a run of days (local midnight to local midnight in the resource's zone).
async function loadMoreDays() {
  const r = state.resource;
  const lastDay = addDays(todayIn(r.timezone), r.horizon_days + 1);
  const from = state.loadedUntil;
  if (from > lastDay) return;
  let until = addDays(from, Math.min(DAYS_PER_LOAD, MAX_RANGE_DAYS));
  if (until > lastDay) until = lastDay;
  say(statusBox(), t.loading);
  const query = new URLSearchParams({
    from: isoInZone(fromZoned(from, "00:00", r.timezone), r.timezone),
    to: isoInZone(fromZoned(until, "00:00", r.timezone), r.timezone),
  });
  try {
    const data = await api("GET", `/api/scheduling/resources/${encodeURIComponent(r.id)}/slots?${query}`);
    if (state.resource !== r) return; // the person picked another service meanwhile
    for (let day = from; day < until; day = addDays(day, 1)) state.slotsByDay.set(day, []);
    for (const slot of data.slots) {
      if (slot.free <= 0) continue;
      const key = zoned(new Date(slot.start), r.timezone).dateKey;
      if (state.slotsByDay.has(key)) state.slotsByDay.get(key).push(slot);
    }
    state.loadedUntil = until;
    say(statusBox(), "");
  } catch (err) {
    say(statusBox(), `${t.error} ${err.message}`, "error");
    return;
  }
  $("more-days").hidden = state.loadedUntil >= lastDay;
  renderDays();
}

async function reloadSlots() {
  // After a conflict: refetch what was shown, keeping the chosen day.
  const keepDay = state.day;
  const until = state.loadedUntil;
  state.slotsByDay = new Map();
  state.loadedUntil = todayIn(state.resource.timezone);
  while (state.loadedUntil < until) {
    const before = state.loadedUntil;
    await loadMoreDays();
    if (state.loadedUntil === before) break; // failed: the error is shown
  }
  if (keepDay && state.slotsByDay.get(keepDay)?.length) selectDay(keepDay, false);
}

function renderDays() {
  const days = [...state.slotsByDay.entries()].filter(([, slots]) => slots.length > 0);
  if (!days.length) {
    $("days").replaceChildren(el("p", { class: "hint", text: t.no_slots }));
    $("slots").replaceChildren();
    return;
  }
  $("days").replaceChildren(...days.map(([day, slots]) => el("button", {
    type: "button", class: "day", dataset: { day }, "aria-pressed": String(day === state.day),
    onclick: () => selectDay(day, true),
  }, el("span", { class: "day-name", text: formatDay(day) }), el("span", { class: "day-count", text: t.free_times.replace("{n}", slots.length) }))));
  if (!state.day || !state.slotsByDay.get(state.day)?.length) {
    // The first day with free times is chosen already: one tap fewer for most people.
    selectDay(days[0][0], false);
  } else {
    renderSlots();
  }
}

function selectDay(day, moveFocus) {
  state.day = day;
  clearChoice();
  for (const button of $("days").querySelectorAll("button.day")) {
    button.setAttribute("aria-pressed", String(button.dataset.day === day));
  }
  renderSlots();
  if (moveFocus) $("slots").querySelector("button")?.focus();
}

function renderSlots() {
  const r = state.resource;
  const slots = state.slotsByDay.get(state.day) || [];
  $("slots").replaceChildren(...slots.map((slot) => {
    const time = zoned(new Date(slot.start), r.timezone).time;
    const seats = r.capacity > 1 ? el("span", { class: "seats", text: t.free_seats.replace("{n}", slot.free) }) : null;
    // The button shows the time only; a screen reader hears the day too.
    return el("button", {
      type: "button", class: "slot", dataset: { start: slot.start }, "aria-pressed": String(state.slot === slot),
      "aria-label": formatWhen(slot.start, r.timezone),
      onclick: () => chooseSlot(slot),
    }, el("span", { class: "slot-time", text: time }), seats);
  }));
}

function chooseSlot(slot) {
  state.slot = slot;
  for (const button of $("slots").querySelectorAll("button.slot")) {
    button.setAttribute("aria-pressed", String(button.dataset.start === slot.start));
  }
  $("chosen").textContent = t.you_chose.replace("{service}", state.resource.name)
    .replace("{when}", formatWhen(slot.start, state.resource.timezone));
  $("note-field").hidden = Boolean(state.moving);
  $("book-button").textContent = state.moving ? t.move_button : t.book_button;
  $("step-confirm").hidden = false;
  $("step-confirm").scrollIntoView({ block: "nearest" });
  $("book-button").focus();
}

async function submit(event) {
  event.preventDefault();
  if (!state.slot || state.busy) return;
  state.busy = true;
  $("book-button").disabled = true;
  say(statusBox(), t.booking);
  const r = state.resource;
  try {
    let booking;
    if (state.moving) {
      booking = await api("POST", `/api/scheduling/bookings/${encodeURIComponent(state.moving.id)}/reschedule`,
        { start: state.slot.start });
    } else {
      const body = { start: state.slot.start, note: $("note").value.trim() };
      if (!$("subject-field").hidden && $("subject").value) body.subject_user_id = $("subject").value;
      booking = await api("POST", `/api/scheduling/resources/${encodeURIComponent(r.id)}/bookings`, body);
    }
    say(statusBox(), "");
    showConfirmation(booking, r, Boolean(state.moving));
    endMove();
    $("note").value = "";
    clearChoice();
    await Promise.all([reloadSlots(), loadMine()]);
  } catch (err) {
    await failed(err);
  } finally {
    state.busy = false;
    $("book-button").disabled = false;
  }
}

async function failed(err) {
  if (err instanceof ApiError && (err.code === "slot_taken" || err.code === "slot_unavailable")) {
    clearChoice();
    await reloadSlots();
    say(statusBox(), err.code === "slot_taken" ? t.taken : t.unavailable, "warning");
    statusBox().focus?.();
  } else {
    say(statusBox(), `${t.error} ${err.message}`, "error");
  }
}

function showConfirmation(booking, resource, moved) {
  const when = formatWhen(booking.start, resource.timezone);
  $("confirmation-title").textContent = moved ? t.moved.replace("{when}", when) : t.status_booked;
  $("confirmation-text").textContent = t.booked_text.replace("{service}", resource.name).replace("{when}", when);
  $("feed").hidden = true;
  $("add-calendar").hidden = false;
  const card = $("confirmation");
  card.hidden = false;
  card.dataset.bookingId = booking.id;
  card.focus();
  card.scrollIntoView({ block: "start" });
}

async function addToCalendar() {
  const button = $("add-calendar");
  button.disabled = true;
  try {
    const feed = await api("POST", "/api/scheduling/feeds", {});
    $("feed-url").value = feed.url;
    $("feed-webcal").href = feed.url.replace(/^https?:/, "webcal:");
    $("feed").hidden = false;
    button.hidden = true; // one address is enough: each press would make (and keep valid) another
    $("feed-url").select();
  } catch (err) {
    say(statusBox(), `${t.feed_error} ${err.message}`, "error");
  } finally {
    button.disabled = false;
  }
}

// "My appointments": my upcoming bookings across every service, and those I made for someone else
// (staff booking for a patient), in one request; the API gives the names.
async function loadMine(notice = "") {
  const now = new Date();
  const to = new Date(now.getTime() + MAX_RANGE_DAYS * 86400000);
  const query = new URLSearchParams({ from: now.toISOString(), to: to.toISOString(), status: "booked" });
  let mine;
  try {
    mine = (await api("GET", `/api/scheduling/my/bookings?${query}`)).bookings;
    say($("mine-status"), notice, "success"); // a notice (e.g. "cancelled") outlives the reload
  } catch (err) {
    say($("mine-status"), `${t.error} ${err.message}`, "error");
    return;
  }
  $("mine").replaceChildren(...mine.map((booking) => {
    // A service switched off since is not in the list above: its booking can be cancelled, not moved.
    const resource = resourceById(booking.resource_id);
    const zone = booking.resource_timezone;
    const forWhom = booking.subject_user_id !== config.me
      ? el("span", { class: "for-whom", text: t.for_whom.replace("{name}", booking.subject_name || "…") }) : null;
    const byWhom = booking.subject_user_id === config.me && booking.created_by && booking.created_by !== config.me
      && booking.created_by_name ? el("span", { class: "by-whom", text: t.booked_by.replace("{name}", booking.created_by_name) }) : null;
    return el("li", { class: "booking", dataset: { bookingId: booking.id } },
      el("strong", { class: "when", text: formatWhen(booking.start, zone) }),
      el("span", { class: "service", text: booking.resource_name }), forWhom, byWhom,
      booking.note ? el("span", { class: "note", text: booking.note }) : null,
      el("div", { class: "row" },
        resource ? el("button", { type: "button", class: "move", text: t.move, onclick: () => startMove(booking, resource) }) : null,
        cancelControl(booking, {
          onCancelled: () => { loadMine(t.cancelled); if (state.resource) reloadSlots(); },
          onError: (err) => say($("mine-status"), `${t.error} ${err.message}`, "error"),
        })));
  }));
  $("mine-empty").hidden = mine.length > 0;
}

async function startMove(booking, resource) {
  state.moving = booking;
  $("move-text").textContent = t.moving.replace("{when}", formatWhen(booking.start, resource.timezone));
  $("move-banner").hidden = false;
  for (const input of document.querySelectorAll('input[name="resource"]')) {
    input.checked = input.value === resource.id;
    input.disabled = true; // a booking moves within its own service
  }
  $("confirmation").hidden = true;
  await selectResource(resource.id);
  $("booking").scrollIntoView({ block: "start" });
  $("move-cancel").focus();
}

function endMove() {
  state.moving = null;
  $("move-banner").hidden = true;
  for (const input of document.querySelectorAll('input[name="resource"]')) input.disabled = false;
  renderSubjects();
}

function start() {
  loadMine(); // also when nothing is bookable now: earlier appointments can still be cancelled
  if (!config.resources.length) return;
  for (const input of document.querySelectorAll('input[name="resource"]')) {
    input.addEventListener("change", () => { if (input.checked) selectResource(input.value); });
  }
  $("more-days").addEventListener("click", loadMoreDays);
  $("book-form").addEventListener("submit", submit);
  $("add-calendar").addEventListener("click", addToCalendar);
  $("book-another").addEventListener("click", () => {
    $("confirmation").hidden = true;
    $("booking").scrollIntoView({ block: "start" });
  });
  $("move-cancel").addEventListener("click", () => { endMove(); clearChoice(); });
  document.addEventListener("visibilitychange", () => {
    // Back on the page after a while (phones keep tabs for days): the free times may have changed.
    if (document.visibilityState === "visible" && !state.busy && !state.slot) reloadSlots();
  });
  const checked = document.querySelector('input[name="resource"]:checked');
  selectResource(checked.value);
}

start();
