"""A three-party hội chẩn in Chromium, to signed minutes: the station's doctor asks the city hospital
(with an attachment), the hospital's doctor accepts and schedules it with a secretary, the three meet in
the call and each decodes the other two, the chair writes the conclusions, the chair and the secretary
sign, and the PDF of the minutes carries the conclusions."""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable, Iterable

import pytest
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import FilePayload, Page, expect
from pypdf import PdfReader
from sqlalchemy import select

from clinics.demo import HOSPITAL_PEOPLE, HOSPITAL_SLUG
from server.auth.models import Tenant, User
from server.demo import Demo
from server.keys import SESSIONS
from tests.conftest import login
from tests.e2e.helpers import wait_for, wait_media_rising

pytestmark = pytest.mark.e2e
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
HOSPITAL = "Bệnh viện Đa khoa TP Cần Thơ"
CONCLUSIONS = ["Chưa cần chuyển tuyến, theo dõi tại trạm", "Thêm spironolacton 25 mg buổi sáng"]
INBOUND_BY_TRACK_JS = """
async () => {
  const pc = window.caunoi && window.caunoi.subscriber;
  if (!pc) return null;
  const out = {video: {}, audio: {}};
  (await pc.getStats()).forEach((s) => {
    if (s.type !== 'inbound-rtp') return;
    if (s.kind === 'video') out.video[s.id] = s.framesDecoded || 0;
    if (s.kind === 'audio') out.audio[s.id] = s.totalSamplesReceived || 0;
  });
  return out;
}
"""


async def wait_media_from_others(page: Page, who: str, videos: int = 2, timeout: float = 30.0) -> None:
    """Audio from both others and ``videos`` remote video streams decoding, all rising."""
    first: dict[str, dict[str, int]] = {}

    async def check() -> str | None:
        stats: dict[str, dict[str, int]] | None = await page.evaluate(INBOUND_BY_TRACK_JS)
        if not stats or len(stats["video"]) < videos or len(stats["audio"]) < 2:
            return f"{who} receives fewer than {videos} video and 2 audio streams ({stats})"
        if not first:
            first.update(video=dict(stats["video"]), audio=dict(stats["audio"]))
        video = [n for key, n in stats["video"].items() if n >= 10 and n > first["video"].get(key, 0)]
        audio = [n for key, n in stats["audio"].items() if n > first["audio"].get(key, 0)]
        if len(video) < videos or len(audio) < 2:
            return f"{who}: video frames {stats['video']} audio samples {stats['audio']} (from {first})"
        return None

    await wait_for(check, timeout)


async def join_call(pages: Iterable[Page]) -> None:
    """Each goes from the consultation page into the call, one after the other."""
    for page in pages:
        await page.wait_for_selector("#call-section:not([hidden]) #join[href^='/rooms/']")
        await page.click("#join")
        await page.wait_for_url("**/rooms/*")


async def test_three_party_hoi_chan_to_signed_minutes(
    live: tuple[TestServer, Demo], new_user_page: Callable[[str], Awaitable[Page]],
) -> None:
    server, demo = live
    emails = {handle: email for handle, email, *_rest in HOSPITAL_PEOPLE}

    # The station's doctor fills in the request on a phone, with a question per issue and an ECG image.
    station = await new_user_page(demo.users["doctor"].email)
    await station.click(f"a[href='/clinic/{demo.facility.id}/consultations']")
    await station.wait_for_url("**/consultations")
    await station.click("#new-request summary")
    assert await station.evaluate("document.documentElement.scrollWidth") <= 390  # nothing scrolls sideways
    await station.wait_for_selector(f"#patient option[value='{demo.users['patient1'].id}']", state="attached")
    await station.wait_for_selector("#facility option:not([value=''])", state="attached")
    await station.select_option("#patient", demo.users["patient1"].id)
    await station.select_option("#facility", label=HOSPITAL)
    # The department is picked from the hospital's own list (no free text while it has one).
    await station.wait_for_selector("#department-choice option[value='Khoa Nội tim mạch']", state="attached")
    await expect(station.locator("#department")).to_be_hidden()
    await station.select_option("#department-choice", "Khoa Nội tim mạch")
    await station.select_option("#urgency", "urgent")
    await station.fill("#reason", "Tăng huyết áp kháng trị")
    await station.fill("#history", "THA 10 năm, đang dùng 3 thuốc")
    await station.fill("#findings", "HA 180/100 mmHg, điện tim kèm theo")
    await station.fill("#questions li:nth-child(1) .question", "Có cần chuyển tuyến không?")
    await station.click("#add-question")
    await station.fill("#questions li:nth-child(2) .question", "Điều chỉnh thuốc hạ áp thế nào?")
    await station.set_input_files("#files", files=[FilePayload(name="dien-tim.png", mimeType="image/png",
                                                               buffer=PNG)])
    await station.click("#request-form button[type=submit]")
    await station.wait_for_url("**/consultation/*")
    consultation_url = station.url
    await station.wait_for_selector("#status[data-status='requested']")
    assert await station.text_content("#attachments") == "dien-tim.png"

    # The hospital's doctor sees the request (without the patient), accepts it and schedules it.
    chair = await new_user_page(emails["hospital_doctor"])
    hospital_link = chair.locator("a[href$='/consultations']")
    await hospital_link.click()
    await chair.wait_for_selector("#incoming li a")
    assert "chỉ thành phần hội chẩn" in (await chair.text_content("#incoming li") or "")
    await chair.click("#incoming li a")
    await chair.wait_for_selector("#triage:not([hidden])")
    assert await chair.is_hidden("#patient-section")
    await chair.click("#accept")
    await chair.wait_for_selector("#schedule-form:not([hidden])")
    await chair.wait_for_selector("#secretary option:has-text('Lý Thu Hà')", state="attached")
    await chair.fill("#schedule-time", "2026-12-01T09:00")
    await chair.select_option("#chair", label=f"BS.CKII Trần Minh Khoa · {HOSPITAL}")
    await chair.select_option("#secretary", label=f"BS. Lý Thu Hà · {HOSPITAL}")
    await chair.click("#schedule")
    await chair.wait_for_selector("#status[data-status='scheduled']")
    await chair.wait_for_selector("#patient-section:not([hidden])")  # a participant now: the patient's data
    assert await chair.text_content("#patient-name") == demo.users["patient1"].display_name
    assert await chair.evaluate("document.documentElement.scrollWidth") <= 390
    await chair.click("#start")
    await chair.wait_for_selector("#status[data-status='in_session']")

    # The call: the three join from the consultation page; each hears and sees the other two.
    secretary = await new_user_page(emails["hospital_secretary"])
    await secretary.goto(consultation_url)
    pages = {"the station doctor": station, "the chair": chair, "the secretary": secretary}
    await join_call(pages.values())
    for who, page in pages.items():
        await wait_media_rising(page, who)
        await wait_media_from_others(page, who, videos=2)

    # The chair records a conclusion per question and the overall conclusion, then signs.
    await chair.goto(consultation_url)
    await chair.wait_for_selector("#conclusions-section:not([hidden]) .answer-text")
    for number, text in enumerate(CONCLUSIONS, start=1):
        await chair.fill(f"#answers .answer:nth-child({number}) .answer-text", text)
    await chair.fill("#conclusion", "Tăng huyết áp kháng trị, chưa tổn thương cơ quan đích")
    await chair.fill("#icd10", "I10")
    await chair.fill("#diagnosis-text", "Tăng huyết áp vô căn")
    await chair.fill("#management", "Đo huyết áp tại trạm mỗi tuần, hội chẩn lại sau 1 tháng")
    await chair.click("#save-conclusions")
    await chair.wait_for_selector("#status[data-status='concluded']")
    await chair.wait_for_selector("#sign:not([hidden])")
    await chair.click("#sign")
    await chair.wait_for_selector("#signatures li[data-role='chair']")
    await chair.wait_for_selector("#sign", state="hidden")

    # The secretary reads the conclusions (read-only) and signs: the minutes are closed.
    await secretary.goto(consultation_url)
    await secretary.wait_for_selector("#sign:not([hidden])")
    assert await secretary.input_value("#answers .answer:nth-child(2) .answer-text") == CONCLUSIONS[1]
    assert await secretary.is_hidden("#save-conclusions")
    await secretary.click("#sign")
    await secretary.wait_for_selector("#status[data-status='signed']")
    await secretary.wait_for_selector("#sign", state="hidden")  # signed once: no second button

    async def station_sees_signed() -> str | None:
        await station.goto(consultation_url)
        await station.wait_for_selector("#status[data-status]")
        status = await station.get_attribute("#status", "data-status")
        return None if status == "signed" else f"the station sees {status!r}"

    await wait_for(station_sees_signed, 10)

    # The PDF of the minutes, as the station's doctor downloads it.
    await station.wait_for_selector("#minutes-section:not([hidden]) #pdf[href$='/minutes.pdf']")
    href = await station.get_attribute("#pdf", "href")
    assert href
    response = await station.context.request.get(str(server.make_url(href)))
    assert response.ok and response.headers["content-type"] == "application/pdf"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(await response.body())).pages)
    for expected in ("BIÊN BẢN HỘI CHẨN", *CONCLUSIONS, "Trần Minh Khoa", "Lý Thu Hà", "Chủ trì", "Thư ký"):
        assert expected in text, expected


async def test_the_last_to_join_sees_both_others(
    live: tuple[TestServer, Demo], new_user_page: Callable[[str], Awaitable[Page]],
    aiohttp_client: Callable[..., Awaitable[TestClient]],
) -> None:
    server, demo = live
    emails = {handle: email for handle, email, *_rest in HOSPITAL_PEOPLE}
    consultation = await scheduled_consultation(server, demo, aiohttp_client)
    pages = {}
    for who, email in (("the station doctor", demo.users["doctor"].email),
                       ("the chair", emails["hospital_doctor"]), ("the secretary", emails["hospital_secretary"])):
        page = await new_user_page(email)
        await page.goto(str(server.make_url(f"/consultation/{consultation}")))
        pages[who] = page
    await join_call(pages.values())
    for who, page in pages.items():
        await wait_media_from_others(page, who, videos=2, timeout=20)


async def scheduled_consultation(server: TestServer, demo: Demo,
                                 aiohttp_client: Callable[..., Awaitable[TestClient]]) -> str:
    """Through the API: requested by the station's doctor, accepted and scheduled by the hospital."""
    emails = {handle: email for handle, email, *_rest in HOSPITAL_PEOPLE}
    station = await aiohttp_client(server)
    csrf = await login(station, demo.users["doctor"].email)
    async with server.app[SESSIONS]() as db:
        hospital = await db.scalar(select(Tenant.id).where(Tenant.slug == HOSPITAL_SLUG))
        people = dict((await db.execute(select(User.email, User.id).where(User.email.in_(emails.values())))).all())
    created = await station.post(f"/api/clinics/{demo.facility.id}/consultation-requests",
                                 headers={"X-CSRF-Token": csrf}, json={
                                     "consulted_tenant_id": hospital, "department": "Khoa Nội tim mạch",
                                     "patient_id": demo.users["patient1"].id, "reason": "Tăng huyết áp kháng trị",
                                     "questions": ["Có cần chuyển tuyến không?"]})
    assert created.status == 201, await created.text()
    consultation = (await created.json())["id"]
    chair = await aiohttp_client(server)
    chair_csrf = await login(chair, emails["hospital_doctor"])
    base = f"/api/clinics/consultation-requests/{consultation}"
    assert (await chair.post(f"{base}/accept", headers={"X-CSRF-Token": chair_csrf})).status == 200
    scheduled = await chair.post(f"{base}/schedule", headers={"X-CSRF-Token": chair_csrf}, json={
        "scheduled_start": "2026-12-01T09:00:00+07:00", "chair_id": people[emails["hospital_doctor"]],
        "secretary_id": people[emails["hospital_secretary"]]})
    assert scheduled.status == 200, await scheduled.text()
    return str(consultation)


async def test_the_department_is_picked_from_the_asked_facilitys_list(
    live: tuple[TestServer, Demo], new_user_page: Callable[[str], Awaitable[Page]],
) -> None:
    """The request form offers the asked facility's active departments (GET /api/clinics/{facility}/
    departments), not the station's own, and the request carries the chosen name."""
    server, demo = live
    station = await new_user_page(demo.users["doctor"].email)
    await station.goto(str(server.make_url(f"/clinic/{demo.facility.id}/consultations")))
    await station.click("#new-request summary")
    await expect(station.locator("#department")).to_be_visible()  # no facility yet: nothing to pick from
    await station.wait_for_selector("#facility option:not([value=''])", state="attached")
    await station.select_option("#patient", demo.users["patient1"].id)
    await station.select_option("#facility", label=HOSPITAL)
    await station.wait_for_selector("#department-choice option[value='Khoa Nội tim mạch']", state="attached")
    offered = await station.eval_on_selector_all("#department-choice option", "os => os.map(o => o.value)")
    assert sorted(offered) == ["", "Khoa Chẩn đoán hình ảnh", "Khoa Nội tim mạch", "Khoa Nội tổng hợp"], offered
    await expect(station.locator("#department")).to_be_hidden()
    await expect(station.locator("#department-hint")).to_be_hidden()
    await station.select_option("#department-choice", "Khoa Chẩn đoán hình ảnh")
    await station.fill("#reason", "Phim X-quang phổi cần đọc")
    await station.fill("#questions li:nth-child(1) .question", "Có tổn thương lao không?")
    await station.click("#request-form button[type=submit]")
    await station.wait_for_url("**/consultation/*")
    consultation_id = station.url.rsplit("/", 1)[1]
    request = await station.request.get(str(server.make_url(f"/api/clinics/consultation-requests/{consultation_id}")))
    assert (await request.json())["department"] == "Khoa Chẩn đoán hình ảnh"
