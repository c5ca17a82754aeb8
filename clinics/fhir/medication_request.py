"""MedicationRequest: one per item of the prescription in the current version of a visit's record.

The record keeps dose and frequency as the doctor wrote them ("1 viên", "sáng, tối"); the text is
always given, and the structured dose and timing only where they can be read without guessing.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from clinics.fhir.visit_records import VisitRecord, current_records, resource_id, wanted_ids
from server.records.fhir.queries import Context, Found, page
from server.records.fhir.resources import Resource, instant, reference
from server.records.fhir.search import SearchRequest
from server.records.scope import Scope

E_PRESCRIPTION_SYSTEM = "urn:caunoi:e-prescription"
"""Ours: the national e-prescription code (mã đơn thuốc) has no published FHIR system URI."""
UCUM = "http://unitsofmeasure.org"
# Times of day, Vietnamese and English, as FHIR event-timing codes.
WHEN = [(re.compile(r"\b(sáng|morning)\b"), "MORN"), (re.compile(r"\b(trưa|noon)\b"), "NOON"),
        (re.compile(r"\b(chiều|afternoon)\b"), "AFT"), (re.compile(r"\b(tối|evening)\b"), "EVE"),
        (re.compile(r"\b(đêm|night)\b"), "NIGHT")]
PER_DAY = [re.compile(r"(\d{1,2})\s*(?:lần|l)\s*(?:/|mỗi|một|trong)?\s*(?:ngày|day)\b"),
           re.compile(r"\bngày\s*(\d{1,2})\s*lần\b"),
           re.compile(r"(\d{1,2})\s*(?:times|x)\s*(?:a|per|/)?\s*day\b")]
EVERY_HOURS = [re.compile(r"\bmỗi\s*(\d{1,2})\s*(?:giờ|tiếng|h)\b"), re.compile(r"\bevery\s*(\d{1,2})\s*h(?:ours?)?\b")]
DOSE = re.compile(r"^(\d{1,4}(?:[.,]\d{1,3})?)\s*([^\W\d_][^\d]*)$")


def _days(days: int) -> dict[str, Any]:
    return {"value": days, "unit": "days", "system": UCUM, "code": "d"}


def timing(frequency: str, days: int) -> dict[str, Any]:
    """Timing from the frequency as written: 'N lần/ngày', 'mỗi N giờ', times of day; always the text."""
    written = unicodedata.normalize("NFC", frequency).casefold()
    repeat: dict[str, Any] = {"boundsDuration": _days(days)}
    per_day = next((int(m.group(1)) for p in PER_DAY if (m := p.search(written))), None)
    hours = next((int(m.group(1)) for p in EVERY_HOURS if (m := p.search(written))), None)
    when = [code for pattern, code in WHEN if pattern.search(written)]
    if per_day:
        repeat.update(frequency=per_day, period=1, periodUnit="d")
    elif hours:
        repeat.update(frequency=1, period=hours, periodUnit="h")
    if when:
        repeat["when"] = when
    return {"repeat": repeat, "code": {"text": frequency}}


def dose_quantity(dose: str) -> dict[str, Any] | None:
    """'1 viên' -> 1 viên, '2,5 ml' -> 2.5 ml; None where the dose is not a number and a unit ('1/2 viên')."""
    match = DOSE.match(dose.strip())
    if not match:
        return None
    value = float(match.group(1).replace(",", "."))
    return {"value": int(value) if value.is_integer() else value, "unit": match.group(2).strip()}


def _primary(record: VisitRecord) -> int | None:
    diagnoses = record.content.get("diagnoses") or []
    primary = next((n for n, d in enumerate(diagnoses, start=1) if d.get("primary")), None)
    return primary or (1 if diagnoses else None)


def medication_request(record: VisitRecord, number: int, item: dict[str, Any], code: str | None) -> Resource:
    dose, frequency = str(item.get("dose", "")), str(item.get("frequency", ""))
    days = int(item.get("duration_days") or 1)
    instructions = str(item.get("instructions") or "")
    dosage: dict[str, Any] = {"sequence": 1, "text": " · ".join(p for p in (dose, frequency, instructions) if p),
                              "timing": timing(frequency, days)}
    if instructions:
        dosage["patientInstruction"] = instructions
    if (quantity := dose_quantity(dose)) is not None:
        dosage["doseAndRate"] = [{"doseQuantity": quantity}]
    encounter = record.encounter
    resource: Resource = {
        "resourceType": "MedicationRequest",
        "id": resource_id(record, number),
        "meta": {"versionId": str(record.version.version)},
        # A prescription in an unsigned record is still a draft.
        "status": "active" if record.signed else "draft",
        "intent": "order",
        "medicationCodeableConcept": {"text": str(item.get("medication", ""))},
        "subject": reference("Patient", encounter.patient_id),
        "encounter": reference("Encounter", encounter.id),
        "authoredOn": instant(record.version.created_at),
        "dosageInstruction": [dosage],
        "dispenseRequest": {"expectedSupplyDuration": _days(days)},
    }
    prescriber = encounter.practitioner_id or record.version.created_by
    if prescriber:
        resource["requester"] = reference("Practitioner", prescriber)
    if record.version.created_by:
        resource["recorder"] = reference("Practitioner", record.version.created_by)
    if code:
        # The code names the whole prescription: each item carries it, and groupIdentifier says so.
        resource["identifier"] = [{"use": "official", "system": E_PRESCRIPTION_SYSTEM, "value": code}]
        resource["groupIdentifier"] = {"system": E_PRESCRIPTION_SYSTEM, "value": code}
    if (primary := _primary(record)) is not None:
        resource["reasonReference"] = [reference("Condition", resource_id(record, primary))]
    return resource


async def medication_requests(db: AsyncSession, scope: Scope, search: SearchRequest, ctx: Context) -> Found:
    ids = wanted_ids(search)
    records = await current_records(db, scope, search, None if ids is None else list(ids))
    found = []
    for record in records:
        prescription = record.content.get("prescription") or {}
        code = prescription.get("e_prescription_code")
        for number, item in enumerate(prescription.get("items") or [], start=1):
            if ids is None or number in ids.get(record.document.id, set()):
                found.append((medication_request(record, number, item, code), record.encounter.tenant_id))
    return page(found, search)
