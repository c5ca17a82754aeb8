"""The clinics' Condition, MedicationRequest and Consent, and Organization.partOf, through the FHIR API.

Everything is made through the HTTP API as the clinic would (a visit, consents, the visit record, its
signature, the end of the visit); every answer is validated with fhir.resources (fhir_support.fhir_get).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestClient

from clinics.fhir.medication_request import dose_quantity, timing
from clinics.models import ConsentPurpose, ConsentRecord
from server.auth.models import Tenant, TenantKind
from server.keys import SESSIONS
from server.records.documents.models import Document, DocumentKind, SubjectType
from tests.conftest import login, page_csrf
from tests.integration.fhir_support import (
    World,
    audit_rows,
    bearer,
    fhir_get,
    start_app,
    validate,
)

Client = Callable[..., Awaitable[TestClient]]
ICD10 = "http://hl7.org/fhir/sid/icd-10"
RECORD: dict[str, Any] = {
    "identification": {"checked": True, "method": "cccd"},
    "consent_confirmed": True,
    "triage": {"urgency": "routine"},
    "soap": {"subjective": "Đau đầu, khát nước nhiều", "objective": "HA 160/95", "assessment": "THA, ĐTĐ típ 2",
             "plan": "Dùng thuốc, tái khám sau 2 tuần"},
    "diagnoses": [{"icd10": "E11.9", "text": "Đái tháo đường típ 2 không biến chứng"},
                  {"icd10": "i10", "text": "Tăng huyết áp vô căn", "primary": True}],
    "prescription": {"e_prescription_code": "79001A1B2C3D-c", "items": [
        {"medication": "Amlodipin 5 mg", "dose": "1 viên", "frequency": "sáng", "duration_days": 14},
        {"medication": "Metformin 500 mg", "dose": "1 viên", "frequency": "2 lần/ngày", "duration_days": 30,
         "instructions": "uống sau ăn"}]},
}


def ids(bundle: dict[str, Any]) -> list[str]:
    return [e["resource"]["id"] for e in bundle.get("entry", [])]


def local(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


class Clinic:
    """The doctor's browser (``client``, not the test's client, which stays anonymous) and a patient's,
    who came in through the join link."""

    def __init__(self, client: TestClient, world: World, aiohttp_client: Client) -> None:
        self.client, self.world, self.aiohttp_client = client, world, aiohttp_client
        self.csrf = ""

    async def visit(self, patient: str) -> tuple[TestClient, str, str]:
        """(the patient's browser, its CSRF token, the encounter id)."""
        if not self.csrf:
            self.client = await self.aiohttp_client(self.client.server)
            self.csrf = await login(self.client, self.world.users["doctor"].email)
        created = await self.client.post(f"/api/clinics/{self.world.facility.id}/encounters",
                                         headers={"X-CSRF-Token": self.csrf},
                                         json={"patient_id": self.world.users[patient].id})
        assert created.status == 201, await created.text()
        visit = await created.json()
        phone = await self.aiohttp_client(self.client.server)
        await phone.get(urlsplit(visit["join_link"]).path)
        return phone, await page_csrf(phone, "/rooms"), visit["id"]

    async def post(self, path: str, body: Any = None) -> Any:
        response = await self.client.post(path, headers={"X-CSRF-Token": self.csrf}, json=body)
        assert response.status in (200, 201), await response.text()
        return await response.json()


async def decide(phone: TestClient, csrf: str, encounter: str, purpose: str, accepted: bool,
                 **extra: object) -> dict[str, Any]:
    response = await phone.post(f"/api/clinics/encounters/{encounter}/consent", headers={"X-CSRF-Token": csrf},
                                json={"purpose": purpose, "text_version": 1, "language": "vi",
                                      "accepted": accepted, **extra})
    assert response.status == 201, await response.text()
    result: dict[str, Any] = await response.json()
    return result


@pytest.fixture
async def app_world(aiohttp_client: Client, tmp_path: Path, database_url: str) -> tuple[TestClient, World]:
    return await start_app(aiohttp_client, tmp_path, database_url)


async def test_conditions_medications_and_consents(app_world: tuple[TestClient, World], aiohttp_client: Client
                                                   ) -> None:
    client, world = app_world
    u, keys = world.users, world.keys
    clinic = Clinic(client, world, aiohttp_client)
    _, seeded = await fhir_get(client, "Consent", keys["facility_admin"])
    earlier = set(ids(seeded))  # the demo data may hold consents already
    phone, phone_csrf, encounter = await clinic.visit("patient1")
    exam = await decide(phone, phone_csrf, encounter, "remote_examination", True)
    recording = await decide(phone, phone_csrf, encounter, "recording", True)
    withdrawn = await phone.post(f"/api/clinics/consents/{recording['id']}/withdraw",
                                 headers={"X-CSRF-Token": phone_csrf})
    assert withdrawn.status == 200
    sharing = await decide(phone, phone_csrf, encounter, "data_sharing_consultation", False)
    saved = await clinic.client.put(f"/api/clinics/encounters/{encounter}/record",
                                    headers={"X-CSRF-Token": clinic.csrf}, json=RECORD)
    assert saved.status == 200, await saved.text()
    document = (await saved.json())["document_id"]
    doctor = keys["doctor"]

    # The metadata lists the new types with their search parameters.
    _, statement = await fhir_get(client, "metadata")
    listed = {r["type"]: {p["name"] for p in r["searchParam"]} for r in statement["rest"][0]["resource"]}
    assert listed["Condition"] == {"_id", "patient", "encounter", "code", "_count"}
    assert listed["MedicationRequest"] == {"_id", "patient", "encounter", "_count"}
    assert listed["Consent"] == {"_id", "patient", "status", "_count"}

    # Conditions: one per diagnosis, ICD-10, ids from the document and the position.
    status, bundle = await fhir_get(client, f"Condition?encounter=Encounter/{encounter}", doctor)
    assert status == 200 and bundle["total"] == 2 and ids(bundle) == [f"{document}.1", f"{document}.2"]
    diabetes, hypertension = (e["resource"] for e in bundle["entry"])
    assert diabetes["code"] == {"coding": [{"system": ICD10, "code": "E11.9",
                                            "display": "Đái tháo đường típ 2 không biến chứng"}],
                                "text": "Đái tháo đường típ 2 không biến chứng"}
    assert hypertension["code"]["coding"][0]["code"] == "I10"  # as the record normalised it
    assert hypertension["extension"] == [{"url": "urn:caunoi:fhir:primary-diagnosis", "valueBoolean": True}]
    assert "extension" not in diabetes
    assert diabetes["subject"] == {"reference": f"Patient/{u['patient1'].id}"}
    assert diabetes["encounter"] == {"reference": f"Encounter/{encounter}"}
    assert diabetes["recorder"] == diabetes["asserter"] == {"reference": f"Practitioner/{u['doctor'].id}"}
    assert diabetes["category"][0]["coding"][0]["code"] == "encounter-diagnosis"
    assert diabetes["clinicalStatus"]["coding"][0]["code"] == "active"
    assert diabetes["verificationStatus"]["coding"][0]["code"] == "provisional"  # not signed yet
    status, read = await fhir_get(client, f"Condition/{document}.2", doctor)
    assert status == 200 and read == hypertension
    for query, expected in [("code=I10", [f"{document}.2"]), (f"code={ICD10}|e11.9", [f"{document}.1"]),
                            ("code=http://snomed.info/sct|38341003", []), ("code=I10,E11.9", ids(bundle)),
                            (f"patient={u['patient1'].id}", ids(bundle)), (f"patient={u['patient2'].id}", [])]:
        status, found = await fhir_get(client, f"Condition?{query}", doctor)
        assert status == 200 and ids(found) == expected, query
    assert (await fhir_get(client, "Condition?code=huyết-áp", doctor))[0] == 400
    assert (await fhir_get(client, f"Condition/{document}.3", doctor))[0] == 404
    assert (await fhir_get(client, "Condition/not-a-record", doctor))[0] == 404
    # _count pages through, following the next link.
    _, first = await fhir_get(client, f"Condition?patient=Patient/{u['patient1'].id}&_count=1", doctor)
    assert first["total"] == 2 and ids(first) == [f"{document}.1"]
    [next_url] = [link["url"] for link in first["link"] if link["relation"] == "next"]
    _, second = await fhir_get(client, local(next_url), doctor)
    assert ids(second) == [f"{document}.2"] and not [k for k in second["link"] if k["relation"] == "next"]

    # MedicationRequests: one per item, with the e-prescription code, dosage and supply.
    status, bundle = await fhir_get(client, f"MedicationRequest?patient={u['patient1'].id}", doctor)
    assert status == 200 and ids(bundle) == [f"{document}.1", f"{document}.2"]
    amlodipine, metformin = (e["resource"] for e in bundle["entry"])
    assert amlodipine["medicationCodeableConcept"] == {"text": "Amlodipin 5 mg"}
    assert amlodipine["status"] == "draft" and amlodipine["intent"] == "order"
    assert amlodipine["identifier"] == [{"use": "official", "system": "urn:caunoi:e-prescription",
                                         "value": "79001A1B2C3D-c"}]
    assert amlodipine["groupIdentifier"]["value"] == "79001A1B2C3D-c"
    assert amlodipine["requester"] == {"reference": f"Practitioner/{u['doctor'].id}"}
    assert amlodipine["encounter"] == {"reference": f"Encounter/{encounter}"}
    assert amlodipine["reasonReference"] == [{"reference": f"Condition/{document}.2"}]  # the primary diagnosis
    assert amlodipine["dispenseRequest"]["expectedSupplyDuration"] == {
        "value": 14, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"}
    dosage = amlodipine["dosageInstruction"][0]
    assert dosage["text"] == "1 viên · sáng"
    assert dosage["timing"]["repeat"]["when"] == ["MORN"]
    assert dosage["doseAndRate"] == [{"doseQuantity": {"value": 1, "unit": "viên"}}]
    dosage = metformin["dosageInstruction"][0]
    assert dosage["patientInstruction"] == "uống sau ăn"
    assert {k: dosage["timing"]["repeat"][k] for k in ("frequency", "period", "periodUnit")} == {
        "frequency": 2, "period": 1, "periodUnit": "d"}
    assert dosage["timing"]["repeat"]["boundsDuration"]["value"] == 30
    status, read = await fhir_get(client, f"MedicationRequest/{document}.2", doctor)
    assert status == 200 and read == metformin
    _, by_encounter = await fhir_get(client, f"MedicationRequest?encounter={encounter}&_count=1", doctor)
    assert by_encounter["total"] == 2 and len(ids(by_encounter)) == 1

    # Consents: one per decision, with its status and its evidence.
    status, bundle = await fhir_get(client, f"Consent?patient=Patient/{u['patient1'].id}", doctor)
    assert status == 200 and set(ids(bundle)) - earlier == {exam["id"], recording["id"], sharing["id"]}
    consents = {e["resource"]["id"]: e["resource"] for e in bundle["entry"]}
    given, taken_back, refused = consents[exam["id"]], consents[recording["id"]], consents[sharing["id"]]
    assert (given["status"], taken_back["status"], refused["status"]) == ("active", "inactive", "rejected")
    assert given["scope"]["coding"][0]["code"] == "treatment"
    assert taken_back["scope"]["coding"][0]["code"] == refused["scope"]["coding"][0]["code"] == "patient-privacy"
    assert given["patient"] == given["performer"][0] == {"reference": f"Patient/{u['patient1'].id}"}
    assert given["provision"]["type"] == "permit" and refused["provision"]["type"] == "deny"
    assert "end" in taken_back["provision"]["period"] and "end" not in given["provision"]["period"]
    assert given["policy"] == [{"uri": "urn:caunoi:consent-text:remote_examination:1:vi"}]
    attachment = given["sourceAttachment"]
    text = base64.b64decode(attachment["data"])
    assert "rút lại" in text.decode("utf-8")
    assert attachment["extension"][0]["valueBase64Binary"] == base64.b64encode(
        bytes.fromhex(exam["text_sha256"])).decode()
    assert hashlib.sha256(text).hexdigest() == exam["text_sha256"]  # the text shown is the text hashed
    assert "extension" not in given and "contained" not in given  # an adult decides alone
    status, read = await fhir_get(client, f"Consent/{recording['id']}", doctor)
    assert status == 200 and read == taken_back
    for query, wanted in [("status=active", {exam["id"]}), ("status=inactive,rejected",
                                                            {recording["id"], sharing["id"]}),
                          ("status=draft", set())]:
        _, found = await fhir_get(client, f"Consent?patient={u['patient1'].id}&{query}", doctor)
        assert set(ids(found)) - earlier == wanted, query
        assert all(e["resource"]["status"] in query for e in found.get("entry", [])), query
    assert (await fhir_get(client, "Consent?status=accepted", doctor))[0] == 400
    _, paged = await fhir_get(client, f"Consent?patient={u['patient1'].id}&_count=2", doctor)
    assert paged["total"] == 3 + len(earlier) and len(ids(paged)) == 2

    # A child: the guardian decides (a contained RelatedPerson), and the child's own assent is recorded.
    child_phone, child_csrf, child_visit = await clinic.visit("patient2")
    child = await decide(child_phone, child_csrf, child_visit, "remote_examination", True,
                         guardian_name="Võ Văn Em", child_assent=True)
    status, minor = await fhir_get(client, f"Consent/{child['id']}", doctor)
    assert status == 200 and minor["performer"] == [{"reference": "#guardian"}]
    assert minor["contained"][0]["resourceType"] == "RelatedPerson"
    assert minor["contained"][0]["name"] == [{"text": "Võ Văn Em"}]
    assert minor["contained"][0]["relationship"][0]["coding"][0]["code"] == "GUARD"
    assert minor["extension"] == [{"url": "urn:caunoi:fhir:child-assent", "valueBoolean": True}]
    assert minor["verification"][0]["verified"] is True
    assert minor["verification"][0]["verifiedWith"] == {"reference": f"Patient/{u['patient2'].id}"}

    # Who sees what. The patient: their consents at once, their record once the visit has finished.
    patient1 = keys["patient1"]
    _, own = await fhir_get(client, "Consent", patient1)
    assert set(ids(own)) - earlier == {exam["id"], recording["id"], sharing["id"]}
    assert all(e["resource"]["patient"]["reference"] == f"Patient/{u['patient1'].id}" for e in own["entry"])
    assert (await fhir_get(client, f"Condition/{document}.1", patient1))[0] == 404
    assert (await fhir_get(client, "MedicationRequest", patient1))[1]["total"] == 0
    assert (await fhir_get(client, f"Consent/{child['id']}", patient1))[0] == 404  # another patient's
    signed = await clinic.post(f"/api/records/documents/{document}/versions/1/sign")
    assert signed["version"] == 1
    await clinic.post(f"/api/clinics/encounters/{encounter}/end")
    status, own = await fhir_get(client, "Condition", patient1)
    assert status == 200 and ids(own) == [f"{document}.1", f"{document}.2"]
    assert own["entry"][0]["resource"]["verificationStatus"]["coding"][0]["code"] == "confirmed"  # signed
    status, own = await fhir_get(client, f"MedicationRequest/{document}.1", patient1)
    assert status == 200 and own["status"] == "active"
    paths = [f"Condition/{document}.1", f"MedicationRequest/{document}.1", f"Consent/{exam['id']}"]
    for who in ("patient2", "other_doctor", "other_admin", "patient3", "teacher", "platform_admin"):
        for path in paths:
            assert (await fhir_get(client, path, keys[who]))[0] == 404, (who, path)
        for name in ("Condition", "MedicationRequest"):
            assert (await fhir_get(client, name, keys[who]))[1]["total"] == 0, (who, name)
        _, their_consents = await fhir_get(client, "Consent", keys[who])
        assert not {exam["id"], recording["id"], sharing["id"]} & set(ids(their_consents)), who
    for who in ("nurse", "facility_admin"):  # the facility's care staff
        for path in paths:
            assert (await fhir_get(client, path, keys[who]))[0] == 200, (who, path)
    for path in paths:
        assert (await fhir_get(client, path))[0] == 401  # anonymous
        response = await client.get(f"/fhir/R4/{path}", headers=bearer("cn_not-a-real-key"))
        assert response.status == 401
    # The doctor's browser session reads as the API key does.
    response = await clinic.client.get(f"/fhir/R4/Condition/{document}.1")
    assert response.status == 200 and (await response.json(content_type=None))["id"] == f"{document}.1"

    # Every read and search is audited, searches of health data one row per resource returned.
    reads = await audit_rows(client, action="fhir.read", target_type="Condition", target_id=f"{document}.1")
    assert {r.outcome.value for r in reads} == {"success", "denied"}
    assert {r.actor_id for r in reads if r.outcome.value == "success"} == {u[w].id for w in ("nurse", "facility_admin",
                                                                                  "doctor")}
    assert {r.actor_id for r in reads if r.outcome.value == "denied"} >= {u["patient1"].id, u["patient2"].id}
    searched = await audit_rows(client, action="fhir.search", target_type="MedicationRequest",
                                actor_id=u["doctor"].id)
    assert {r.target_id for r in searched} == {f"{document}.1", f"{document}.2"}
    assert all(r.tenant_id == world.facility.id for r in searched)
    consent_searches = await audit_rows(client, action="fhir.search", target_type="Consent", target_id=exam["id"])
    assert consent_searches

    # The bulk export of the facility carries them, each line valid.
    key = keys["facility_admin"]
    kicked = await client.get("/fhir/R4/$export", headers={**bearer(key), "Prefer": "respond-async"})
    assert kicked.status == 202
    status_url = local(kicked.headers["Content-Location"])
    for _ in range(200):
        response = await client.get(status_url, headers=bearer(key))
        if response.status == 200:
            break
        await asyncio.sleep(0.05)
    assert response.status == 200, "the export did not finish"
    manifest = await response.json()
    by_type = {o["type"]: o for o in manifest["output"]}
    exported: dict[str, list[dict[str, Any]]] = {}
    for name in ("Condition", "MedicationRequest", "Consent", "Encounter"):
        lines = await (await client.get(local(by_type[name]["url"]), headers=bearer(key))).text()
        exported[name] = [json.loads(line) for line in lines.splitlines()]
        for resource in exported[name]:
            validate(resource)
    assert {r["id"] for r in exported["Condition"]} == {f"{document}.1", f"{document}.2"}
    assert {r["id"] for r in exported["MedicationRequest"]} == {f"{document}.1", f"{document}.2"}
    assert {r["id"] for r in exported["Consent"]} - earlier == {exam["id"], recording["id"], sharing["id"],
                                                                  child["id"]}
    assert {r["id"] for r in exported["Encounter"]} == {encounter, child_visit}


async def test_organization_part_of_follows_the_effective_dated_parents(
    app_world: tuple[TestClient, World], aiohttp_client: Client
) -> None:
    client, world = app_world
    async with client.app[SESSIONS].begin() as db:
        hospital = Tenant(kind=TenantKind.FACILITY, name="Bệnh viện Đa khoa TP. Cần Thơ", slug="bvdk-cantho")
        db.add(hospital)
    key = world.keys["facility_admin"]
    _, before = await fhir_get(client, f"Organization/{world.facility.id}", key)
    assert "partOf" not in before
    admin = await aiohttp_client(client.server)
    csrf = await login(admin, world.users["platform_admin"].email)
    parents = f"/api/clinics/{world.facility.id}/parents"
    for parent, since in [(world.other.id, "2024-01-01"), (hospital.id, "2025-07-01"), (world.other.id, "2099-01-01")]:
        response = await admin.post(parents, headers={"X-CSRF-Token": csrf},
                                    json={"parent_id": parent, "valid_from": since})
        assert response.status == 201, await response.text()
    # Today's parent: the hospital since 2025-07-01; the re-parenting of 2099 has not taken effect.
    status, org = await fhir_get(client, f"Organization/{world.facility.id}", key)
    assert status == 200 and org["partOf"] == {"reference": f"Organization/{hospital.id}", "display": hospital.name}
    _, bundle = await fhir_get(client, "Organization", key)
    assert [e["resource"] for e in bundle["entry"]] == [org]  # a search says the same as a read
    _, other = await fhir_get(client, f"Organization/{world.other.id}", world.keys["other_admin"])
    assert "partOf" not in other
    # The types around an Organization are unchanged and still valid.
    for name in ("PractitionerRole", "HealthcareService", "Appointment", "Encounter", "Patient"):
        assert (await fhir_get(client, f"{name}?_count=5", key))[0] == 200, name


def test_timing_and_dose_read_only_what_is_written() -> None:
    assert timing("2 lần/ngày", 7)["repeat"] == {
        "boundsDuration": {"value": 7, "unit": "days", "system": "http://unitsofmeasure.org", "code": "d"},
        "frequency": 2, "period": 1, "periodUnit": "d"}
    assert timing("ngày 3 lần", 5)["repeat"]["frequency"] == 3
    assert timing("mỗi 8 giờ", 5)["repeat"] | {"boundsDuration": None} == {
        "boundsDuration": None, "frequency": 1, "period": 8, "periodUnit": "h"}
    assert timing("Sáng, tối", 5)["repeat"]["when"] == ["MORN", "EVE"]
    assert timing("khi đau", 5) == {"repeat": {"boundsDuration": timing("x", 5)["repeat"]["boundsDuration"]},
                                    "code": {"text": "khi đau"}}
    assert dose_quantity("2,5 ml") == {"value": 2.5, "unit": "ml"}
    assert dose_quantity("1/2 viên") is None
    assert dose_quantity("nửa viên") is None


async def test_a_witnessed_consent_names_the_witness_and_the_statement(app_world: tuple[TestClient, World]) -> None:
    """A nurse recorded a guardian's decision at a station (decided_as witness_guardian) with a statement."""
    client, world = app_world
    nurse, child = world.users["nurse"], world.users["patient2"]
    async with client.app[SESSIONS].begin() as db:
        record = ConsentRecord(tenant_id=world.facility.id, patient_id=child.id,
                               purpose=ConsentPurpose.REMOTE_EXAMINATION, text_version=1, text_language="vi",
                               text_sha256="ab" * 32, accepted=True, decided_by=nurse.id,
                               decided_as="witness_guardian", guardian_name="Võ Văn Em", child_assent=False)
        db.add(record)
        await db.flush()
        statement = Document(tenant_id=world.facility.id, kind=DocumentKind.CONSENT, title="Biên bản",
                             subject_type=SubjectType.PATIENT, subject_id=child.id, context_type="consent",
                             context_id=record.id, created_by=nurse.id)
        db.add(statement)
    status, resource = await fhir_get(client, f"Consent/{record.id}", world.keys["doctor"])
    assert status == 200 and resource["performer"] == [{"reference": "#guardian"}]
    assert resource["extension"] == [
        {"url": "urn:caunoi:fhir:child-assent", "valueBoolean": False},
        {"url": "urn:caunoi:fhir:consent-witness", "valueReference": {"reference": f"Practitioner/{nurse.id}"}},
        {"url": "urn:caunoi:fhir:witness-statement",
         "valueReference": {"reference": f"DocumentReference/{statement.id}"}}]
    assert resource["verification"][0]["verified"] is False
    # A hash that no shipped text has: the evidence is the hash alone, without a text to show.
    assert "data" not in resource["sourceAttachment"]
    assert base64.b64decode(resource["sourceAttachment"]["extension"][0]["valueBase64Binary"]) == bytes([0xAB] * 32)
