"""The whole remote visit in real browsers (issue 5): the patient's one-time link → pre-call check →
consent → waiting room; the doctor sees the arrival and admits; both decode each other's video and
audio; the doctor writes the record beside the call (a diagnosis outside the verified Thông tư 30 list
shows the warning), prescribes, books the follow-up, signs and ends the visit; the patient's phone
then shows the summary with the diagnosis and the prescription."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Browser, FilePayload, Page, expect

from server.demo import DEMO_PASSWORD, Demo
from tests.conftest import login
from tests.e2e.helpers import inbound, wait_for, wait_media_rising

pytestmark = pytest.mark.e2e


NO_SIDEWAYS_SCROLL = "document.documentElement.scrollWidth <= window.innerWidth"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64  # the type is read from these first bytes


async def wait_audio_rising(page: Page, who: str) -> None:
    """Audio keeps arriving. (Not video: on a loaded machine the relay may rightly hold a lossy
    subscriber's video for a few seconds; audio is never dropped before video.)"""
    first = (await inbound(page) or {}).get("audio") or {"totalSamplesReceived": 0}

    async def check() -> str | None:
        audio = (await inbound(page) or {}).get("audio")
        if audio and audio["totalSamplesReceived"] > first["totalSamplesReceived"]:
            return None
        return f"{who} receives no new audio ({audio})"

    await wait_for(check, 20)


async def laptop_page(browser: Browser, server: TestServer, email: str) -> Page:
    """A doctor at a consultation desk: a laptop-sized window of its own, logged in."""
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    await context.grant_permissions(["camera", "microphone"])
    page = await context.new_page()
    await page.goto(str(server.make_url("/login")))
    await page.fill("input[name=email]", email)
    await page.fill("input[name=password]", DEMO_PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/rooms")
    return page


async def field_error(page: Page, selector: str) -> str:
    """The error shown in the field that holds ``selector``."""
    text = await page.locator(selector).locator("xpath=ancestor::div[contains(@class,'field')][1]") \
        .locator(".field-error").text_content()
    return text or ""


async def test_the_whole_visit_from_the_link_to_the_summary(
    live: tuple[TestServer, Demo], browser: Browser, aiohttp_client: Callable[..., Awaitable[TestClient]],
) -> None:
    server, demo = live
    staff = await aiohttp_client(server)
    csrf = await login(staff, demo.users["nurse"].email)
    visit = await (await staff.post(f"/api/clinics/{demo.facility.id}/encounters",
                                    headers={"X-CSRF-Token": csrf},
                                    json={"patient_id": demo.users["patient2"].id,
                                          "practitioner_id": demo.users["doctor"].id})).json()

    # The patient: no password, a cheap phone, the link from the SMS.
    context = await browser.new_context(viewport={"width": 360, "height": 740})
    await context.grant_permissions(["camera", "microphone"])
    phone = await context.new_page()
    await phone.goto(str(server.make_url(urlsplit(visit["join_link"]).path)))
    await phone.wait_for_url(f"**/visit/{visit['id']}")
    assert await phone.locator("h1").text_content() == "Buổi khám từ xa của bạn"  # Vietnamese first

    async def check_passed() -> str | None:
        camera = await phone.text_content("#camera-state")
        verdict = await phone.get_attribute("#network-state", "data-verdict")
        if camera != "Camera và micrô hoạt động tốt.":
            return f"camera check says {camera!r}"
        return None if verdict == "good" else f"network verdict {verdict!r}"

    await wait_for(check_passed, 10)
    # The doctor's dashboard is open before she arrives: it has the visit, not yet arrived.
    doctor = await laptop_page(browser, server, demo.users["doctor"].email)
    await doctor.goto(str(server.make_url(f"/clinic/{demo.facility.id}/dashboard")))
    row = doctor.locator(f"tr[data-encounter='{visit['id']}']")
    await expect(row).to_contain_text("Chưa đến")
    # The patient is 10: her father consents, and she agrees too (Luật 91: from age 7).
    await phone.wait_for_selector("#consent:not([hidden])")
    assert await phone.input_value("#guardian-name") == "Võ Văn Em"
    await phone.click("#enter")
    assert "cũng đồng ý" in (await phone.text_content("#consent-error") or "")  # not ticked: refused
    await phone.check("#child-assent")
    await phone.click("#enter")
    await phone.wait_for_selector("#waiting:not([hidden])")

    async def queued() -> str | None:
        text = await phone.text_content("#position")
        return None if text and text.endswith(" 1") else f"position shows {text!r}"

    await wait_for(queued, 10)

    # The dashboard announces the arrival; they exchange a message, then the doctor admits her.
    await expect(doctor.locator("#notice")).to_contain_text("Võ Thị Dung")
    await phone.fill("#chat-text", "Cháu bị sốt từ tối qua ạ")
    await phone.click("#chat-form button")
    await row.locator("button.chat-open").click()
    await doctor.wait_for_selector("#chat-log li:has-text('Cháu bị sốt từ tối qua ạ')")
    await doctor.fill("#chat-text", "Bác sĩ sẽ gọi ngay")
    await doctor.click("#chat-form button")
    await phone.wait_for_selector("#chat-log li.from-clinic:has-text('Bác sĩ sẽ gọi ngay')")
    await row.locator("button.admit").click()
    await phone.wait_for_url(f"**/visit/{visit['id']}/call", timeout=15000)
    # The doctor joins the call from the row: the call, with the visit record beside it.
    await row.locator("a.join-call").click()
    await doctor.wait_for_url(f"**/clinic/encounters/{visit['id']}/call")
    await wait_media_rising(doctor, "the doctor")
    await wait_media_rising(phone, "the patient")

    # The chat goes on during the call: a panel under the video on the phone, which keeps what was said
    # in the waiting room. The patient writes and sends a photo; the doctor's panel (under the call,
    # beside the record) counts them while closed, shows them and the answer reaches the phone.
    await phone.click("#call-chat summary")
    await expect(phone.locator("#chat-log li.from-clinic")).to_contain_text("Bác sĩ sẽ gọi ngay")
    await phone.fill("#chat-text", "Cháu vừa đo nhiệt độ: 38,5 độ")
    await phone.click("#chat-form button[type=submit]")
    await phone.set_input_files("#chat-file", files=[FilePayload(name="ban-tay.png", mimeType="image/png",
                                                                 buffer=PNG)])
    await expect(doctor.locator("#chat-unread")).to_have_text("2", timeout=10000)
    await doctor.click("#call-chat summary")
    await expect(doctor.locator("#chat-unread")).to_be_hidden()
    await expect(doctor.locator("#chat-log li.from-me a.chat-attachment img")).to_have_attribute(
        "alt", "ban-tay.png")
    assert "Cháu vừa đo nhiệt độ: 38,5 độ" in (await doctor.locator("#chat-log").text_content() or "")
    await doctor.fill("#chat-text", "Cho cháu uống hạ sốt, bác sĩ xem họng nhé")
    await doctor.click("#chat-form button[type=submit]")
    await expect(phone.locator("#chat-log li.from-clinic").last).to_contain_text("Cho cháu uống hạ sốt")
    assert await phone.evaluate(NO_SIDEWAYS_SCROLL), "the call with its chat is wider than the phone"
    video_width = await phone.evaluate("document.querySelector('#tiles').getBoundingClientRect().width")
    assert video_width >= 300, f"the video is {video_width}px wide beside the chat: it should fill the phone"
    await phone.click("#call-chat summary")  # folded again: the video is the main thing

    # The record, written while the call runs. Step 1 shows what to check against the card.
    await doctor.wait_for_selector("#record[data-ready=true]")
    assert await doctor.is_visible("#record-form") and await doctor.is_visible("#call")  # side by side
    assert "TE1920930567890" in (await doctor.text_content("#identity-bhyt") or "")
    assert "02/09/2016" in (await doctor.text_content("#identity-birth") or "")
    await doctor.fill("#soap-subjective", "Ho, khò khè về đêm 2 ngày")
    await doctor.click("#save")  # the guided steps come first: refused here, beside the fields
    assert await field_error(doctor, "#identity-checked") == "Hãy xác nhận đã kiểm tra danh tính người bệnh."
    await doctor.select_option("#identity-method", "guardian")
    await doctor.check("#identity-checked")
    await doctor.check("#consent-confirmed")
    await doctor.fill("#soap-objective", "Thở rít nhẹ, nói được câu dài")
    await doctor.fill("#soap-assessment", "Cơn hen nhẹ")
    await doctor.fill("#soap-plan", "Xịt thuốc khi khó thở, tránh khói bếp; khám lại nếu không đỡ")
    diagnosis = doctor.locator("#diagnoses .diagnosis").first
    await diagnosis.locator(".d-code").fill("J4")  # a typo: the API refuses it
    await diagnosis.locator(".d-text").fill("Hen phế quản")
    await doctor.click("#save")
    await expect(diagnosis.locator(".field-error").first).to_have_text(
        "Không phải mã ICD-10: một chữ cái và hai chữ số, có thể thêm phần chi tiết, ví dụ J00, E11.9.")
    assert await doctor.input_value("#soap-subjective") == "Ho, khò khè về đêm 2 ngày"  # nothing lost
    assert await diagnosis.locator(".d-text").input_value() == "Hen phế quản"
    await diagnosis.locator(".d-code").fill("J45.0")  # asthma: not on the 21 verified rows of Thông tư 30
    await doctor.click("#save")
    await expect(doctor.locator("#record-status")).to_have_text("Đã lưu thành phiên bản 1.")
    warning = doctor.locator("#eligibility[data-verdict=not_on_verified_list]")
    await expect(warning).to_contain_text("J45.0 không có trong danh mục Thông tư 30 đã kiểm chứng")
    await expect(warning).to_contain_text("chưa đầy đủ (mới kiểm chứng được 21/50 dòng)")
    assert await doctor.is_visible("#offer-referral") and await doctor.is_visible("#offer-in-person")

    # The prescription, then the follow-up booked in the doctor's calendar (which saves again).
    await doctor.fill("#e-prescription", "79001A1B2C3D-c")
    medicine = doctor.locator("#medications .medication").first
    await medicine.locator(".m-medication").fill("Salbutamol 100 mcg (bình xịt)")
    await medicine.locator(".m-dose").fill("2 nhát")
    await medicine.locator(".m-frequency").fill("khi khó thở, tối đa 4 lần/ngày")
    await medicine.locator(".m-days").fill("7")
    await medicine.locator(".m-instructions").fill("Người lớn giúp cháu xịt")
    await doctor.click("#save")
    await expect(doctor.locator("#version-line")).to_have_text("Phiên bản 2 — chưa ký")
    await doctor.click("#offer-in-person")
    await doctor.wait_for_selector("#follow-up-slot optgroup option", state="attached")
    await doctor.select_option("#follow-up-slot", index=1)
    await doctor.click("#follow-up-book")
    await expect(doctor.locator("#follow-up-booked")).to_be_visible()
    await expect(doctor.locator("#version-line")).to_have_text("Phiên bản 3 — chưa ký")
    await doctor.click("#sign")
    await expect(doctor.locator("#version-line")).to_have_text("Phiên bản 3 — đã ký: bạn")
    assert await doctor.get_attribute("#print", "href") == f"/api/clinics/encounters/{visit['id']}/record.pdf"
    await wait_audio_rising(phone, "the patient, while the doctor writes")  # the call went on meanwhile
    # On a phone the call and the record are two tabs, and nothing is wider than the screen.
    await doctor.set_viewport_size({"width": 390, "height": 844})
    await doctor.click("#tab-record")
    await expect(doctor.locator("#record-form")).to_be_visible()
    await expect(doctor.locator("#call")).to_be_hidden()
    assert await doctor.evaluate(NO_SIDEWAYS_SCROLL), "the record is wider than a phone"
    await doctor.click("#tab-call")
    await expect(doctor.locator("#call")).to_be_visible()
    await doctor.set_viewport_size({"width": 1280, "height": 800})

    # The doctor ends the visit: the doctor keeps the record, the patient's phone shows the summary.
    await doctor.click("#end-visit")
    await doctor.click("#end-confirm")
    await doctor.wait_for_url(f"**/clinic/encounters/{visit['id']}/record")
    await phone.wait_for_url(f"**/visit/{visit['id']}/summary", timeout=15000)
    assert await phone.text_content("h1") == "Tóm tắt buổi khám của bạn"
    await expect(phone.locator(".diagnosis[data-code='J45.0']")).to_contain_text("Hen phế quản")
    await expect(phone.locator("#medicines")).to_contain_text("Salbutamol 100 mcg (bình xịt)")
    await expect(phone.locator("#medicines")).to_contain_text("2 nhát, khi khó thở, tối đa 4 lần/ngày, trong 7 ngày")
    await expect(phone.locator("#e-prescription-code")).to_have_text("79001A1B2C3D-c")
    await expect(phone.locator("#follow-up-date")).to_be_visible()
    assert await phone.get_attribute("#summary-pdf", "href") == f"/api/clinics/encounters/{visit['id']}/record.pdf"
    assert await phone.evaluate(NO_SIDEWAYS_SCROLL), "the summary is wider than the phone"
    size = await phone.evaluate("parseFloat(getComputedStyle(document.querySelector('#summary')).fontSize)")
    assert size >= 20, f"summary text is {size}px: too small for older eyes"
    await context.close()


async def test_resending_the_join_link_from_the_dashboard(
    live: tuple[TestServer, Demo], browser: Browser, aiohttp_client: Callable[..., Awaitable[TestClient]],
) -> None:
    """The patient's SMS was lost: the doctor resends the link from the dashboard row, after a question
    (the old link stops working); the page says which channels took it and shows the new link once."""
    server, demo = live
    staff = await aiohttp_client(server)
    csrf = await login(staff, demo.users["nurse"].email)
    visit = await (await staff.post(f"/api/clinics/{demo.facility.id}/encounters",
                                    headers={"X-CSRF-Token": csrf},
                                    json={"patient_id": demo.users["patient2"].id,
                                          "practitioner_id": demo.users["doctor"].id})).json()
    doctor = await laptop_page(browser, server, demo.users["doctor"].email)
    await doctor.goto(str(server.make_url(f"/clinic/{demo.facility.id}/dashboard")))
    row = doctor.locator(f"tr[data-encounter='{visit['id']}']")
    await row.locator("button.resend-link").click()
    await expect(doctor.locator("#link-question")).to_contain_text("Võ Thị Dung")
    await expect(doctor.locator("#link-question")).to_contain_text("không dùng được nữa")
    await doctor.click("#link-cancel")  # asked, not done: the old link still works afterwards
    await expect(doctor.locator("#link-panel")).to_be_hidden()
    await row.locator("button.resend-link").click()
    await doctor.click("#link-confirm")
    await expect(doctor.locator("#link-sent")).to_have_text(
        "Đã gửi liên kết mới qua: log. Liên kết chỉ dùng được một lần; bạn cũng có thể đọc cho người bệnh:")
    new_link = await doctor.text_content("#link-value") or ""
    assert "/join/" in new_link and new_link != visit["join_link"]
    await doctor.click("#link-close")
    await expect(doctor.locator("#link-panel")).to_be_hidden()
    assert await doctor.text_content("#link-value") == ""  # shown once, not left on the screen

    # The old link stops working; the new one opens the visit on the patient's phone.
    patient = await aiohttp_client(server)
    old = await patient.get(urlsplit(visit["join_link"]).path, allow_redirects=False)
    assert old.status == 410
    context = await browser.new_context(viewport={"width": 360, "height": 740})
    phone = await context.new_page()
    await phone.goto(str(server.make_url(urlsplit(new_link).path)))
    await phone.wait_for_url(f"**/visit/{visit['id']}")
    await context.close()
