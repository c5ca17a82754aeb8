"""Condition: one per diagnosis (ICD-10) in the current version of a visit's record.

verificationStatus is ``confirmed`` once a doctor has signed that version and ``provisional`` before:
an unsigned record is a draft. clinicalStatus is ``active``: the record says what the patient has now.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from clinics.eligibility import InvalidCode, icd10_key
from clinics.fhir.visit_records import VisitRecord, current_records, resource_id, wanted_ids
from server.records.fhir.outcome import bad_parameter
from server.records.fhir.queries import Context, Found, page
from server.records.fhir.resources import Resource, instant, reference
from server.records.fhir.search import SearchRequest
from server.records.scope import Scope

ICD10_SYSTEM = "http://hl7.org/fhir/sid/icd-10"
PRIMARY_EXTENSION = "urn:caunoi:fhir:primary-diagnosis"
CLINICAL = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active",
                        "display": "Active"}]}
VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
ENCOUNTER_DIAGNOSIS = [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-category",
                                    "code": "encounter-diagnosis", "display": "Encounter Diagnosis"}]}]


def condition(record: VisitRecord, number: int, diagnosis: dict[str, Any]) -> Resource:
    code, text = str(diagnosis.get("icd10", "")), str(diagnosis.get("text") or "")
    coding: dict[str, str] = {"system": ICD10_SYSTEM, "code": code}
    if text:
        coding["display"] = text  # as the doctor wrote it (the Vietnamese ICD-10 title)
    verified = ("confirmed", "Confirmed") if record.signed else ("provisional", "Provisional")
    resource: Resource = {
        "resourceType": "Condition",
        "id": resource_id(record, number),
        "meta": {"versionId": str(record.version.version)},
        "clinicalStatus": CLINICAL,
        "verificationStatus": {"coding": [{"system": VERIFICATION, "code": verified[0], "display": verified[1]}]},
        "category": ENCOUNTER_DIAGNOSIS,
        "code": {"coding": [coding], "text": text or code},
        "subject": reference("Patient", record.encounter.patient_id),
        "encounter": reference("Encounter", record.encounter.id),
        "recordedDate": instant(record.version.created_at),
    }
    if record.version.created_by:
        resource["recorder"] = reference("Practitioner", record.version.created_by)
    if record.encounter.practitioner_id:
        resource["asserter"] = reference("Practitioner", record.encounter.practitioner_id)
    if diagnosis.get("primary"):
        # R4's Condition has no "principal" (Encounter.diagnosis.rank has): an extension of ours says it.
        resource["extension"] = [{"url": PRIMARY_EXTENSION, "valueBoolean": True}]
    return resource


def _codes(search: SearchRequest) -> set[str] | None:
    values = search.any_of("code")
    if values is None:
        return None
    keys = set()
    for value in values:
        system, bar, code = value.rpartition("|")
        if bar and system and system != ICD10_SYSTEM:
            continue  # another code system: none of ours matches
        try:
            keys.add(icd10_key(code))
        except InvalidCode as exc:
            raise bad_parameter(f"code: {exc}") from None
    return keys


async def conditions(db: AsyncSession, scope: Scope, search: SearchRequest, ctx: Context) -> Found:
    ids, codes = wanted_ids(search), _codes(search)
    records = await current_records(db, scope, search, None if ids is None else list(ids))
    found = []
    for record in records:
        for number, diagnosis in enumerate(record.content.get("diagnoses") or [], start=1):
            if ids is not None and number not in ids.get(record.document.id, set()):
                continue
            if codes is not None and _key(diagnosis) not in codes:
                continue
            found.append((condition(record, number, diagnosis), record.encounter.tenant_id))
    return page(found, search)


def _key(diagnosis: dict[str, Any]) -> str | None:
    try:
        return icd10_key(str(diagnosis.get("icd10", "")))
    except InvalidCode:
        return None
