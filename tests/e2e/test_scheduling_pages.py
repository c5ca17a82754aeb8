"""The scheduling pages in real Chromium on a phone-sized screen: the administrator sets weekday
hours and a holiday, two patients race for one slot (one books, the other is told kindly and sees
the fresh list), and the doctor's calendar shows the booking and can cancel it; the administrator
edits a calendar's settings; a patient's "my appointments" spans every service."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import ConsoleMessage, Page, Route
from sqlalchemy import select

from server.demo import Demo
from server.keys import SESSIONS
from server.scheduling.models import (
    AvailabilityException,
    AvailabilityRule,
    Booking,
    BookingStatus,
    OccurrenceChange,
    Resource,
    ResourceKind,
)
from tests.e2e.helpers import wait_for

pytestmark = pytest.mark.e2e

VN = ZoneInfo("Asia/Ho_Chi_Minh")
WEEKDAYS_VI = ["Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ Nhật"]


def next_weekday(after: date) -> date:
    day = after + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return day


def vietnamese(day: date) -> str:
    return f"{WEEKDAYS_VI[day.weekday()]}, {day:%d/%m/%Y}"


def watch_errors(page: Page, errors: list[str], who: str, expected: tuple[int, ...] = (409,)) -> None:
    """Uncaught errors in our modules fail the test (they would otherwise only leave a stuck page)."""
    page.on("pageerror", lambda exc: errors.append(f"{who}: {exc}"))

    def console(msg: ConsoleMessage) -> None:
        # Chromium logs every failed request; the 409 of a lost race is expected and handled (and a
        # test that provokes a refusal on purpose names its status).
        if msg.type == "error" and not any(f"status of {status}" in msg.text for status in expected):
            errors.append(f"{who}: console {msg.text}")

    page.on("console", console)


async def text_of(page: Page, selector: str) -> str:
    return (await page.text_content(selector)) or ""


async def resource_of(server: TestServer, tenant_id: str, user_id: str) -> Resource:
    """The demo's resource of one person (the doctor's consultations, the teacher's class)."""
    async with server.app[SESSIONS]() as db:
        return (await db.execute(select(Resource).where(Resource.tenant_id == tenant_id,
                                                        Resource.user_id == user_id))).scalars().one()


async def open_booking(page: Page, base: str, resource_id: str, day: date) -> None:
    """Open /schedule, choose the service and the 07:30 slot of ``day``."""
    await page.goto(f"{base}/schedule")
    await page.check(f'input[name="resource"][value="{resource_id}"]')
    day_button = page.locator(f'button.day[data-day="{day.isoformat()}"]')
    await day_button.wait_for(timeout=10_000)
    assert vietnamese(day) in await day_button.inner_text()
    await day_button.click()
    slot = page.locator("button.slot", has_text="07:30")
    await slot.wait_for()
    await slot.click()
    await page.locator("#step-confirm").wait_for(state="visible")
    assert f"{vietnamese(day)} lúc 07:30" in await text_of(page, "#chosen")


async def outcome(page: Page) -> str | None:
    if await page.locator("#confirmation").is_visible():
        return "booked"
    if await page.get_attribute("#booking-status", "data-kind") == "warning":
        return "taken"
    return None


async def test_admin_hours_patient_booking_race_and_staff_calendar(
    live: tuple[TestServer, Demo], new_user_page: Callable[[str], Awaitable[Page]],
) -> None:
    server, demo = live
    base = str(server.make_url("")).rstrip("/")
    resource = await resource_of(server, demo.facility.id, demo.users["doctor"].id)
    today = datetime.now(VN).date()
    holiday = next_weekday(today + timedelta(days=1))
    booking_day = next_weekday(holiday)
    errors: list[str] = []

    # --- the administrator: Monday–Friday 07:30–11:30 and a holiday --------------------------------
    admin = await new_user_page(demo.users["facility_admin"].email)
    watch_errors(admin, errors, "admin")
    await admin.goto(f"{base}/schedule/admin/{resource.id}/availability")
    await admin.wait_for_selector("body[data-ready=true]")
    assert await admin.locator(".weekday legend").all_inner_texts() == WEEKDAYS_VI
    while await admin.locator(".range .remove").count():  # the demo's hours: start from nothing
        await admin.locator(".range .remove").first.click()
    monday = admin.locator('.weekday[data-weekday="0"]')
    await monday.locator(".add-range").click()
    await monday.locator(".range-start").fill("07:30")
    await monday.locator(".range-end").fill("07:00")
    await admin.click("#save")
    error = monday.locator(".field-error:visible")
    await error.wait_for()
    assert "Giờ kết thúc phải sau giờ bắt đầu" in await error.inner_text()
    assert await monday.locator(".range-end").get_attribute("aria-invalid") == "true"
    await monday.locator(".range-end").fill("11h30")  # as people write it here; saved as 11:30
    await admin.click(".copy-monday")
    await admin.click("#add-exception")
    holiday_row = admin.locator(".exception").last
    await holiday_row.locator(".ex-kind").select_option("closed")
    await holiday_row.locator(".ex-from-date").fill(holiday.isoformat())
    await holiday_row.locator(".ex-until-date").fill(holiday.isoformat())
    await holiday_row.locator(".ex-reason").fill("Nghỉ lễ")
    assert await holiday_row.locator(".times").is_hidden()  # "all day" is ticked: no times to fill in
    assert vietnamese(holiday) in await holiday_row.locator(".date-hint").first.inner_text()
    await admin.click("#save")

    async def saved() -> str | None:
        status = await text_of(admin, "#editor-status")
        return None if "Đã lưu" in status else f"the editor says {status!r}"

    await wait_for(saved, 10)
    async with server.app[SESSIONS]() as db:
        rules = (await db.execute(select(AvailabilityRule)
                                  .where(AvailabilityRule.resource_id == resource.id))).scalars()
        exceptions = (await db.execute(select(AvailabilityException)
                                       .where(AvailabilityException.resource_id == resource.id))).scalars().all()
        assert sorted((r.weekday, r.start_time.isoformat("minutes"), r.end_time.isoformat("minutes")) for r in rules) \
            == [(d, "07:30", "11:30") for d in range(5)]
    assert [(e.kind.value, e.reason) for e in exceptions] == [("closed", "Nghỉ lễ")]
    start_vn = exceptions[0].starts_at.astimezone(VN)
    assert (start_vn.date(), start_vn.hour, exceptions[0].ends_at - exceptions[0].starts_at) == \
        (holiday, 0, timedelta(days=1))
    # Reloaded, the editor shows what was saved.
    await admin.reload()
    await admin.wait_for_selector("body[data-ready=true]")
    assert await admin.locator(".range").count() == 5
    assert await admin.locator(".exception .ex-from-date").input_value() == holiday.isoformat()

    # --- two patients choose the same slot and press "book" at the same time -----------------------
    first = await new_user_page(demo.users["patient1"].email)
    second = await new_user_page(demo.users["patient2"].email)
    watch_errors(first, errors, "patient1")
    watch_errors(second, errors, "patient2")
    for page in (first, second):
        await open_booking(page, base, resource.id, booking_day)
        assert await page.locator("#subject-field").is_hidden()  # patients book for themselves only
        assert await page.locator(f'button.day[data-day="{holiday.isoformat()}"]').count() == 0  # the holiday
        saturday = next(today + timedelta(days=i) for i in range(1, 8) if (today + timedelta(days=i)).weekday() == 5)
        assert await page.locator(f'button.day[data-day="{saturday.isoformat()}"]').count() == 0  # no weekend hours
    await first.fill("#note", "Đau đầu ba ngày nay")
    await asyncio.gather(first.click("#book-button"), second.click("#book-button"))

    results: dict[str, str | None] = {}

    async def both_answered() -> str | None:
        for name, page in (("patient1", first), ("patient2", second)):
            results[name] = await outcome(page)
        return None if all(results.values()) else f"outcomes so far: {results}"

    await wait_for(both_answered, 10)
    assert sorted(results.values()) == ["booked", "taken"], results
    winner, loser = (first, second) if results["patient1"] == "booked" else (second, first)
    winner_handle = "patient1" if winner is first else "patient2"

    confirmation = await text_of(winner, "#confirmation-text")
    assert f"{vietnamese(booking_day)} lúc 07:30" in confirmation and resource.name in confirmation
    assert "vừa có người đặt giờ này" in await text_of(loser, "#booking-status")
    slot_start = datetime(booking_day.year, booking_day.month, booking_day.day, 7, 30, tzinfo=VN)

    async def loser_list_refreshed() -> str | None:
        times = await loser.locator("button.slot .slot-time").all_inner_texts()
        return None if times and "07:30" not in times else f"the loser still sees {times[:4]}"

    await wait_for(loser_list_refreshed, 10)

    # The winner's page: "my appointments", and a calendar subscription.
    mine = winner.locator("#mine li.booking")
    await mine.first.wait_for()
    assert f"{vietnamese(booking_day)} lúc 07:30" in await mine.first.inner_text()
    await winner.click("#add-calendar")
    await winner.locator("#feed").wait_for(state="visible")
    feed_url = await winner.locator("#feed-url").input_value()
    assert feed_url.startswith(base + "/ical/") and feed_url.endswith(".ics")
    assert (await winner.get_attribute("#feed-webcal", "href") or "").startswith("webcal://")

    async with server.app[SESSIONS]() as db:
        booked = (await db.execute(select(Booking).where(Booking.resource_id == resource.id,
                                                         Booking.status == BookingStatus.BOOKED))).scalars().all()
    assert [(b.starts_at, b.subject_user_id) for b in booked] == [(slot_start, demo.users[winner_handle].id)]

    # --- the doctor's calendar (day view on a phone) ------------------------------------------------
    doctor = await new_user_page(demo.users["doctor"].email)
    watch_errors(doctor, errors, "doctor")
    await doctor.goto(f"{base}/schedule/calendar/{resource.id}")
    await doctor.wait_for_selector(".cal-day")
    assert await doctor.get_attribute("#view-day", "aria-pressed") == "true"
    for _ in range(10):
        if await doctor.locator(f'.cal-day[data-day="{booking_day.isoformat()}"]').count():
            break
        await doctor.click("#next")
    day = doctor.locator(f'.cal-day[data-day="{booking_day.isoformat()}"]')
    item = day.locator("li.booking")
    await item.wait_for()
    text = await item.inner_text()
    assert "07:30–07:45" in text and demo.users[winner_handle].display_name in text and "Đã đặt lịch" in text
    await item.locator(".cancel-open").click()
    await item.locator(".cancel-reason").fill("Bác sĩ đi công tác")
    await item.locator(".cancel-yes").click()

    async def shown_cancelled() -> str | None:
        items = await doctor.locator(f'.cal-day[data-day="{booking_day.isoformat()}"] li.booking').all_inner_texts()
        return None if items and "Đã hủy" in items[0] else f"the calendar shows {items}"

    await wait_for(shown_cancelled, 10)
    await doctor.click("#view-week")
    assert await doctor.locator(".cal-day").count() == 7

    assert not errors, errors


async def test_teacher_calendar_shows_the_class_timetable(
    live: tuple[TestServer, Demo], new_user_page: Callable[[str], Awaitable[Page]],
) -> None:
    """Recurring sessions (the demo's maths lessons, Monday and Wednesday 07:30) appear beside bookings."""
    server, demo = live
    base = str(server.make_url("")).rstrip("/")
    resource = await resource_of(server, demo.school.id, demo.users["teacher"].id)
    errors: list[str] = []
    teacher = await new_user_page(demo.users["teacher"].email)
    watch_errors(teacher, errors, "teacher")
    await teacher.goto(f"{base}/schedule/calendar/{resource.id}")
    await teacher.wait_for_selector(".cal-day")
    await teacher.click("#view-week")
    today = datetime.now(VN).date()
    first_lesson = today + timedelta(days=(7 - today.weekday()) % 7)  # as the demo seeds it
    if first_lesson != today:  # next Monday: the following week
        await teacher.click("#next")
    lesson = teacher.locator(f'.cal-day[data-day="{first_lesson.isoformat()}"] li.occurrence')
    await lesson.wait_for(timeout=10_000)
    text = await lesson.inner_text()
    assert "07:30–08:10" in text and "Toán 5A" in text and "Buổi định kỳ" in text

    # The teacher is ill that day: only that lesson is called off.
    await lesson.locator(".cancel-open").click()
    await lesson.locator(".cancel-reason").fill("Cô giáo ốm")
    await lesson.locator(".cancel-yes").click()

    async def lesson_cancelled() -> str | None:
        shown = await teacher.locator("li.occurrence").all_inner_texts()
        return None if shown and "Buổi này đã hủy" in shown[0] and "Buổi định kỳ" in shown[-1] else f"shown: {shown}"

    await wait_for(lesson_cancelled, 10)
    async with server.app[SESSIONS]() as db:
        changes = (await db.execute(select(OccurrenceChange))).scalars().all()
    assert [(c.cancelled, c.note, c.original_start.astimezone(VN).date()) for c in changes] == \
        [(True, "Cô giáo ốm", first_lesson)]
    assert not errors, errors


async def test_nurse_books_for_a_patient_who_moves_then_cancels_it(
    live: tuple[TestServer, Demo], new_user_page: Callable[[str], Awaitable[Page]],
) -> None:
    """Booking on someone's behalf, then "my appointments" of that person: change the time, cancel."""
    server, demo = live
    base = str(server.make_url("")).rstrip("/")
    patient = demo.users["patient2"]
    errors: list[str] = []

    nurse = await new_user_page(demo.users["nurse"].email)
    watch_errors(nurse, errors, "nurse")
    await nurse.click("a.nav-schedule")  # the header link
    await nurse.wait_for_url("**/schedule")
    resource = await resource_of(server, demo.facility.id, demo.users["doctor"].id)
    await nurse.check(f'input[name="resource"][value="{resource.id}"]')
    await nurse.locator("#subject-field").wait_for(state="visible")
    await nurse.select_option("#subject", label=patient.display_name)
    await nurse.locator("button.day").first.click()
    first_slot = nurse.locator("button.slot").first
    first_time = await first_slot.locator(".slot-time").inner_text()
    await first_slot.click()
    await nurse.click("#book-button")
    await nurse.locator("#confirmation").wait_for(state="visible")
    made = nurse.locator("#mine li.booking")
    await made.first.wait_for()
    assert f"Cho: {patient.display_name}" in await made.first.inner_text()

    page = await new_user_page(patient.email)
    watch_errors(page, errors, "patient2")
    await page.goto(f"{base}/schedule")
    mine = page.locator("#mine li.booking")
    await mine.first.wait_for()
    assert await mine.count() == 1 and f"lúc {first_time}" in await mine.first.inner_text()
    await mine.first.locator("button.move").click()
    await page.locator("#move-banner").wait_for(state="visible")
    assert f"lúc {first_time}" in await page.locator("#move-text").inner_text()
    assert await page.locator('input[name="resource"]').first.is_disabled()  # moves stay within the service
    await page.locator("button.day").first.click()
    other = page.locator("button.slot").nth(1)
    new_time = await other.locator(".slot-time").inner_text()
    assert new_time != first_time
    await other.click()
    assert await page.locator("#book-button").inner_text() == "Đổi sang giờ này"
    assert await page.locator("#note-field").is_hidden()
    await page.click("#book-button")
    await page.locator("#confirmation").wait_for(state="visible")
    assert f"lúc {new_time}" in await page.locator("#confirmation-title").inner_text()
    assert await page.locator("#move-banner").is_hidden()

    async def moved_in_list() -> str | None:
        items = await page.locator("#mine li.booking").all_inner_texts()
        return None if len(items) == 1 and f"lúc {new_time}" in items[0] else f"my appointments show {items}"

    await wait_for(moved_in_list, 10)
    await mine.first.locator(".cancel-open").click()
    await mine.first.locator(".cancel-yes").click()
    await page.locator("#mine-empty").wait_for(state="visible")
    assert "Đã hủy lịch hẹn" in await page.locator("#mine-status").inner_text()

    async with server.app[SESSIONS]() as db:
        bookings = (await db.execute(select(Booking).where(Booking.subject_user_id == patient.id)
                                     .order_by(Booking.created_at))).scalars().all()
    assert [(b.status, b.created_by, b.cancel_reason) for b in bookings] == [
        (BookingStatus.CANCELLED, demo.users["nurse"].id, "rescheduled"),
        (BookingStatus.CANCELLED, patient.id, ""),
    ]
    assert not errors, errors


async def test_admin_adds_a_calendar_and_goes_on_to_its_hours(
    live: tuple[TestServer, Demo], new_user_page: Callable[[str], Awaitable[Page]],
) -> None:
    server, demo = live
    base = str(server.make_url("")).rstrip("/")
    errors: list[str] = []
    admin = await new_user_page(demo.users["facility_admin"].email)
    watch_errors(admin, errors, "admin")
    await admin.goto(f"{base}/schedule")
    await admin.click("#new-resource summary")
    form = admin.locator("#resource-form")
    await form.locator('input[name="name"]').fill("Phòng tiêm chủng")
    await form.locator('select[name="kind"]').select_option("room")
    await form.locator('select[name="user_id"]').select_option(label=demo.users["nurse"].display_name)
    await form.locator('input[name="slot_minutes"]').fill("10")
    await form.locator('input[name="capacity"]').fill("0")
    await form.locator('button[type="submit"]').click()
    error = admin.locator("#new-capacity-error")
    await error.wait_for(state="visible")
    assert "từ 1 đến 500" in await error.inner_text()
    await form.locator('input[name="capacity"]').fill("3")
    await form.locator('button[type="submit"]').click()
    await admin.wait_for_url("**/schedule/admin/*/availability")
    await admin.wait_for_selector("body[data-ready=true]")
    assert "Phòng tiêm chủng" in await admin.locator("h1").inner_text()
    assert "10 phút" in await admin.locator("#settings").inner_text()

    async with server.app[SESSIONS]() as db:
        created = (await db.execute(select(Resource).where(Resource.name == "Phòng tiêm chủng"))).scalars().one()
    assert (created.tenant_id, created.kind.value, created.user_id, created.slot_minutes, created.capacity) == \
        (demo.facility.id, "room", demo.users["nurse"].id, 10, 3)
    assert admin.url.endswith(f"/schedule/admin/{created.id}/availability")
    assert not errors, errors


async def test_editor_shows_a_server_refusal_next_to_its_field(
    live: tuple[TestServer, Demo], new_user_page: Callable[[str], Awaitable[Page]],
) -> None:
    """What the browser cannot check, the API refuses naming the field ("rules.1.end: …"); the editor
    puts that message beside the field it names. The refusal is played by the test (an intercepted
    PUT), since the page's own checks stop every mistake the API would see today."""
    server, demo = live
    base = str(server.make_url("")).rstrip("/")
    resource = await resource_of(server, demo.facility.id, demo.users["doctor"].id)
    admin = await new_user_page(demo.users["facility_admin"].email)
    refusal = '{"error": {"code": "invalid_body", "message": "rules.1.end: Value error, end must be after start"}}'

    async def refuse_put(route: Route) -> None:
        if route.request.method == "PUT":
            await route.fulfill(status=400, content_type="application/json", body=refusal)
        else:
            await route.continue_()

    await admin.route("**/api/scheduling/resources/*/availability", refuse_put)
    await admin.goto(f"{base}/schedule/admin/{resource.id}/availability")
    await admin.wait_for_selector("body[data-ready=true]")
    await admin.click("#save")
    second_end = admin.locator('.weekday[data-weekday="0"] .range-end').nth(1)  # the demo's Monday afternoon

    async def marked() -> str | None:
        invalid = await second_end.get_attribute("aria-invalid")
        return None if invalid == "true" else f"the second Monday range's end has aria-invalid={invalid!r}"

    await wait_for(marked, 10)
    error_id = await second_end.get_attribute("aria-describedby")
    assert "end must be after start" in await admin.locator(f"#{error_id}").inner_text()
    assert "Vui lòng sửa các ô được đánh dấu" in await admin.locator("#editor-status").inner_text()
    assert await second_end.evaluate("(node) => node === document.activeElement")  # focus goes to the field


async def test_admin_edits_a_calendars_settings(
    live: tuple[TestServer, Demo], new_user_page: Callable[[str], Awaitable[Page]],
) -> None:
    """Name, length, places, zone, open for booking: a mistake the page catches and one only the
    server can (an unknown zone) both land beside their field, and nothing typed is lost; saved,
    an existing appointment keeps its time; switched off, patients no longer see the service."""
    server, demo = live
    base = str(server.make_url("")).rstrip("/")
    resource = await resource_of(server, demo.facility.id, demo.users["doctor"].id)
    booked_at = datetime.combine(next_weekday(datetime.now(VN).date() + timedelta(days=1)), time(7, 30), VN)
    async with server.app[SESSIONS].begin() as db:  # an appointment made under the old settings (15 min)
        db.add(Booking(resource_id=resource.id, tenant_id=resource.tenant_id, starts_at=booked_at.astimezone(UTC),
                       ends_at=(booked_at + timedelta(minutes=15)).astimezone(UTC),
                       subject_user_id=demo.users["patient1"].id, created_by=demo.users["patient1"].id))
    errors: list[str] = []
    admin = await new_user_page(demo.users["facility_admin"].email)
    watch_errors(admin, errors, "admin", expected=(400,))  # the unknown zone, refused on purpose
    await admin.goto(f"{base}/schedule/admin/{resource.id}/availability")
    await admin.wait_for_selector("body[data-ready=true]")
    await admin.click("#settings-editor summary")
    form = admin.locator("#settings-form")
    await form.locator('input[name="name"]').fill("BS. An · khám từ xa (sáng)")
    await form.locator('input[name="slot_minutes"]').fill("0")
    await form.locator('input[name="capacity"]').fill("2")
    await form.locator('input[name="timezone"]').fill("Mars/Olympus")
    await admin.click("#save-settings")
    slot_error = admin.locator("#set-slot_minutes-error")
    await slot_error.wait_for(state="visible")
    assert "từ 5 đến 480" in await slot_error.inner_text()
    assert await admin.locator("#set-timezone-error").is_hidden()  # the page cannot know every zone

    await form.locator('input[name="slot_minutes"]').fill("20")
    await admin.click("#save-settings")  # now the server refuses the zone
    zone_error = admin.locator("#set-timezone-error")
    await zone_error.wait_for(state="visible")
    assert "Múi giờ không hợp lệ" in await zone_error.inner_text()
    assert await form.locator('input[name="timezone"]').get_attribute("aria-invalid") == "true"
    assert await admin.locator("#set-slot_minutes-error").is_hidden()
    # Nothing typed is lost, and nothing was saved.
    assert await form.locator('input[name="name"]').input_value() == "BS. An · khám từ xa (sáng)"
    assert await form.locator('input[name="slot_minutes"]').input_value() == "20"
    async with server.app[SESSIONS]() as db:
        stored = await db.get(Resource, resource.id)
    assert stored is not None and (stored.slot_minutes, stored.name) == (15, resource.name)

    await form.locator('input[name="timezone"]').fill("Asia/Ho_Chi_Minh")
    await admin.click("#save-settings")

    async def saved() -> str | None:
        status = await text_of(admin, "#settings-status")
        return None if "Đã lưu cài đặt" in status else f"the settings say {status!r}"

    await wait_for(saved, 10)
    assert "1 lịch hẹn sắp tới vẫn giữ nguyên giờ" in await text_of(admin, "#settings-status")
    assert "20 phút" in await text_of(admin, "#settings")
    async with server.app[SESSIONS]() as db:
        stored = await db.get(Resource, resource.id)
        kept = (await db.execute(select(Booking).where(Booking.resource_id == resource.id))).scalars().one()
    assert stored is not None
    assert (stored.name, stored.slot_minutes, stored.capacity, stored.timezone, stored.active) == \
        ("BS. An · khám từ xa (sáng)", 20, 2, "Asia/Ho_Chi_Minh", True)
    assert (kept.starts_at, kept.ends_at - kept.starts_at, kept.status) == \
        (booked_at.astimezone(UTC), timedelta(minutes=15), BookingStatus.BOOKED)

    # Switched off: the banner says so, and patients no longer find the service.
    await form.locator("#set-active").uncheck()
    await admin.click("#save-settings")
    await admin.locator("#inactive-banner").wait_for(state="visible")
    patient = await new_user_page(demo.users["patient2"].email)
    watch_errors(patient, errors, "patient2")
    await patient.goto(f"{base}/schedule")
    assert await patient.locator(f'input[name="resource"][value="{resource.id}"]').count() == 0
    await admin.goto(f"{base}/schedule")
    link = admin.locator(f'#switched-off a[href="/schedule/admin/{resource.id}/availability"]')
    assert await link.inner_text() == "BS. An · khám từ xa (sáng)"
    assert not errors, errors


async def test_editor_marks_every_rule_the_server_refuses(
    live: tuple[TestServer, Demo], new_user_page: Callable[[str], Awaitable[Page]],
) -> None:
    """The real API answers with every bad rule; the editor marks each row, keeps what was typed.
    The page's own checks stop these mistakes, so the test spoils two rules of the request on its
    way out (as an outdated page or a broken proxy might) and hands back the server's real answer."""
    server, demo = live
    base = str(server.make_url("")).rstrip("/")
    resource = await resource_of(server, demo.facility.id, demo.users["doctor"].id)
    admin = await new_user_page(demo.users["facility_admin"].email)

    async def spoil_put(route: Route) -> None:
        if route.request.method != "PUT":
            await route.continue_()
            return
        body = json.loads(route.request.post_data or "{}")
        for index in (0, 2):
            body["rules"][index]["end"] = "05:00"
        response = await route.fetch(post_data=json.dumps(body))
        await route.fulfill(response=response)

    await admin.route("**/api/scheduling/resources/*/availability", spoil_put)
    await admin.goto(f"{base}/schedule/admin/{resource.id}/availability")
    await admin.wait_for_selector("body[data-ready=true]")
    typed = await admin.locator(".range-end").evaluate_all("(nodes) => nodes.map((n) => n.value)")
    await admin.click("#save")
    ends = admin.locator(".range-end")

    async def both_marked() -> str | None:
        marks = [await ends.nth(i).get_attribute("aria-invalid") for i in range(3)]
        return None if marks == ["true", None, "true"] else f"aria-invalid of the first three ends: {marks}"

    await wait_for(both_marked, 10)
    for index in (0, 2):
        error_id = await ends.nth(index).get_attribute("aria-describedby")
        assert "Giờ kết thúc phải sau giờ bắt đầu" in await admin.locator(f"#{error_id}").inner_text()
    assert "Vui lòng sửa các ô được đánh dấu" in await admin.locator("#editor-status").inner_text()
    assert await ends.evaluate_all("(nodes) => nodes.map((n) => n.value)") == typed  # nothing typed is lost
    async with server.app[SESSIONS]() as db:
        rules = (await db.execute(select(AvailabilityRule)
                                  .where(AvailabilityRule.resource_id == resource.id))).scalars().all()
    assert len(rules) == len(typed)  # the refused save changed nothing


async def test_my_appointments_span_every_service(
    live: tuple[TestServer, Demo], new_user_page: Callable[[str], Awaitable[Page]],
) -> None:
    """A patient's bookings of two services in one list with the services' names; another patient's
    are not there; a service switched off keeps its appointment, which can be cancelled, not moved."""
    server, demo = live
    base = str(server.make_url("")).rstrip("/")
    doctor_resource = await resource_of(server, demo.facility.id, demo.users["doctor"].id)
    day = next_weekday(datetime.now(VN).date() + timedelta(days=1))
    at = lambda hour: datetime.combine(day, time(hour), VN).astimezone(UTC)  # noqa: E731
    patient1, patient2 = demo.users["patient1"], demo.users["patient2"]
    async with server.app[SESSIONS].begin() as db:
        vaccines = Resource(tenant_id=demo.facility.id, kind=ResourceKind.ROOM, name="Phòng tiêm chủng",
                            slot_minutes=10, active=False)
        db.add(vaccines)
        await db.flush()
        for resource, hour, who in [(doctor_resource, 9, patient1), (vaccines, 8, patient1),
                                    (doctor_resource, 10, patient2)]:
            db.add(Booking(resource_id=resource.id, tenant_id=demo.facility.id, starts_at=at(hour),
                           ends_at=at(hour) + timedelta(minutes=resource.slot_minutes), subject_user_id=who.id,
                           created_by=who.id))
    errors: list[str] = []
    page = await new_user_page(patient1.email)
    watch_errors(page, errors, "patient1")
    await page.goto(f"{base}/schedule")
    mine = page.locator("#mine li.booking")

    async def two_listed() -> str | None:
        count = await mine.count()
        return None if count == 2 else f"{count} appointments listed"

    await wait_for(two_listed, 10)
    first, second = await mine.all_inner_texts()
    assert f"{vietnamese(day)} lúc 08:00" in first and "Phòng tiêm chủng" in first
    assert f"{vietnamese(day)} lúc 09:00" in second and doctor_resource.name in second
    assert patient2.display_name not in await text_of(page, "#mine")
    assert await mine.first.locator("button.move").count() == 0  # its service is switched off
    assert await mine.nth(1).locator("button.move").count() == 1
    await mine.first.locator(".cancel-open").click()
    await mine.first.locator(".cancel-yes").click()

    async def one_left() -> str | None:
        items = await mine.all_inner_texts()
        return None if len(items) == 1 and doctor_resource.name in items[0] else f"listed: {items}"

    await wait_for(one_left, 10)
    async with server.app[SESSIONS]() as db:
        cancelled = (await db.execute(select(Booking).where(Booking.resource_id == vaccines.id))).scalars().one()
    assert (cancelled.status, cancelled.cancelled_by) == (BookingStatus.CANCELLED, patient1.id)
    assert not errors, errors
