"""The visit record: guided steps enforced, SOAP, ICD-10 with the Thông tư 30 check, prescription,
versions and signature, and the patient's summary after the visit."""

from __future__ import annotations

import copy
import io
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import TestClient
from pypdf import PdfReader

from server.demo import Demo
from tests.conftest import login
from tests.integration.test_consent import visit_for
from tests.integration.test_visits import give_consent

RECORD: dict[str, Any] = {
    "identification": {"checked": True, "method": "cccd"},
    "consent_confirmed": True,
    "triage": {"urgency": "routine"},
    "soap": {"subjective": "Đau đầu, chóng mặt 3 ngày", "objective": "HA 160/95 (tự đo tại nhà)",
             "assessment": "Tăng huyết áp", "plan": "Dùng thuốc, đo HA mỗi sáng, tái khám sau 2 tuần"},
    "diagnoses": [{"icd10": "i10", "text": "Tăng huyết áp vô căn", "primary": True}],
    "prescription": {"e_prescription_code": "79001A1B2C3D-c", "items": [
        {"medication": "Amlodipin 5 mg", "dose": "1 viên", "frequency": "sáng", "duration_days": 14}]},
    "follow_up": {"note": "Tái khám từ xa sau 2 tuần"},
}


async def test_record_versions_signature_and_patient_summary(
    client: TestClient, demo: Demo, aiohttp_client: Callable[..., Awaitable[TestClient]]
) -> None:
    phone, patient_csrf, encounter = await visit_for(client, demo, "patient1", aiohttp_client)
    doctor = await aiohttp_client(client.server)
    csrf = await login(doctor, demo.users["doctor"].email)
    url = f"/api/clinics/encounters/{encounter}/record"
    no_consent = await doctor.put(url, headers={"X-CSRF-Token": csrf}, json=RECORD)
    assert no_consent.status == 409  # no consent on record yet
    await give_consent(phone, patient_csrf, encounter)

    saved = await doctor.put(url, headers={"X-CSRF-Token": csrf}, json=RECORD)
    assert saved.status == 200, await saved.text()
    first = await saved.json()
    assert first["version"] == 1 and first["eligibility"] == {"verdict": "eligible", "warning": None}
    asthma = copy.deepcopy(RECORD)
    asthma["diagnoses"] = [{"icd10": "J45.0", "primary": True}]
    second = await (await doctor.put(url, headers={"X-CSRF-Token": csrf}, json=asthma)).json()
    assert second["version"] == 2 and second["eligibility"]["verdict"] == "not_on_verified_list"
    assert second["eligibility"]["warning"]
    signed = await doctor.post(f"/api/records/documents/{second['document_id']}/versions/2/sign",
                               headers={"X-CSRF-Token": csrf})
    assert signed.status == 201

    read = await (await doctor.get(url)).json()
    assert read["version"] == 2 and read["record"]["diagnoses"][0]["icd10"] == "J45.0"
    assert read["record"]["soap"]["assessment"] == "Tăng huyết áp"  # Vietnamese kept as written
    # The patient sees the summary only after the visit.
    assert (await phone.get(url)).status == 409
    await doctor.post(f"/api/clinics/encounters/{encounter}/end", headers={"X-CSRF-Token": csrf})
    summary = await (await phone.get(url)).json()
    assert summary["record"]["prescription"]["items"][0]["medication"] == "Amlodipin 5 mg"
    assert (await phone.put(url, headers={"X-CSRF-Token": patient_csrf}, json=RECORD)).status == 403


async def test_guided_steps_are_enforced(
    client: TestClient, demo: Demo, aiohttp_client: Callable[..., Awaitable[TestClient]]
) -> None:
    phone, patient_csrf, encounter = await visit_for(client, demo, "patient1", aiohttp_client)
    await give_consent(phone, patient_csrf, encounter)
    doctor = await aiohttp_client(client.server)
    csrf = await login(doctor, demo.users["doctor"].email)
    url = f"/api/clinics/encounters/{encounter}/record"

    def changed(path: tuple[str, ...], value: Any) -> dict[str, Any]:
        body = copy.deepcopy(RECORD)
        target = body
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return body

    cases = [
        (changed(("identification", "checked"), False), "identification"),
        (changed(("consent_confirmed",), False), "consent_confirmed"),
        (changed(("triage", "urgency"), "emergency"), "escalation"),
        (changed(("diagnoses",), [{"icd10": "huyết áp"}]), "ICD-10"),
        (changed(("prescription", "e_prescription_code"), "79001A1B2C3D-n"), "narcotic"),
        (changed(("prescription", "e_prescription_code"), "12345"), "e_prescription_code"),
    ]
    for body, expected in cases:
        response = await doctor.put(url, headers={"X-CSRF-Token": csrf}, json=body)
        assert response.status == 400, expected
        assert expected in (await response.json())["error"]["message"], expected
    escalated = changed(("triage",), {"urgency": "emergency", "escalation": "Gọi 115, chuyển BVĐK TP. Cần Thơ"})
    assert (await doctor.put(url, headers={"X-CSRF-Token": csrf}, json=escalated)).status == 200


async def test_the_record_prints_with_vietnamese_diacritics(
    client: TestClient, demo: Demo, aiohttp_client: Callable[..., Awaitable[TestClient]]
) -> None:
    phone, patient_csrf, encounter = await visit_for(client, demo, "patient1", aiohttp_client)
    await give_consent(phone, patient_csrf, encounter)
    doctor = await aiohttp_client(client.server)
    csrf = await login(doctor, demo.users["doctor"].email)
    url = f"/api/clinics/encounters/{encounter}/record"
    saved = await (await doctor.put(url, headers={"X-CSRF-Token": csrf}, json=RECORD)).json()
    await doctor.post(f"/api/records/documents/{saved['document_id']}/versions/1/sign", headers={"X-CSRF-Token": csrf})
    response = await doctor.get(url + ".pdf")
    assert response.status == 200 and response.content_type == "application/pdf"
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(await response.read())).pages)
    for expected in ("PHIẾU KHÁM BỆNH TỪ XA", "Tăng huyết áp vô căn", "Amlodipin 5 mg", "79001A1B2C3D-c",
                     demo.users["patient1"].display_name, demo.users["doctor"].display_name, "(doctor)"):
        assert expected in text, expected
    assert (await phone.get(url + ".pdf")).status == 409  # the patient: after the visit
