"""Consent: one per consent record (clinics/consent.py), with its evidence.

- status: ``active`` (accepted, not withdrawn), ``inactive`` (withdrawn), ``rejected`` (refused).
- The exact text is named by ``policy.uri`` (purpose, version, language) and carried in
  ``sourceAttachment`` with its SHA-256 (the hash the record keeps); the text itself (``data``) is
  included while the shipped text file still holds that version with that hash.
- performer: the Patient, or the guardian who decided for a minor (a contained RelatedPerson); from
  age 7 the child's own assent is ``verification`` with the Patient and the extension
  ``urn:caunoi:fhir:child-assent``.
- A consent a nurse or doctor recorded as witness (clinics/witnessed_consent.py, ``decided_as``
  ``witness_patient`` / ``witness_guardian``) names the witness (``urn:caunoi:fhir:consent-witness``,
  a Practitioner) and their signed statement (``urn:caunoi:fhir:witness-statement``, a DocumentReference).

Readers: the facility's care staff, and the patient their own (at any time).
"""

from __future__ import annotations

import base64
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from clinics.consent import ConsentText
from clinics.models import ConsentPurpose, ConsentRecord
from server.records.documents.models import Document, DocumentKind
from server.records.fhir.documents import SHA256_EXTENSION
from server.records.fhir.outcome import bad_parameter
from server.records.fhir.queries import Context, Found, Searcher
from server.records.fhir.resources import Resource, instant, reference
from server.records.fhir.search import SearchRequest, strip_reference
from server.records.scope import Scope

PURPOSE_SYSTEM = "urn:caunoi:consent-purpose"
TEXT_URI = "urn:caunoi:consent-text"
CHILD_ASSENT_EXTENSION = "urn:caunoi:fhir:child-assent"
WITNESS_EXTENSION = "urn:caunoi:fhir:consent-witness"
STATEMENT_EXTENSION = "urn:caunoi:fhir:witness-statement"
STATEMENT_CONTEXT = "consent"
"""Document.context_type of a witness statement, whose context_id is the consent record."""
SCOPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/consentscope"
ACTION_SYSTEM = "http://terminology.hl7.org/CodeSystem/consentaction"
PATIENT_CONSENT = {"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}
OPT_IN = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN",
                      "display": "opt-in"}]}
TREATMENT = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "TREAT", "display": "treatment"}
GUARDIAN = {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "GUARD",
                        "display": "guardian"}]}
# purpose -> (consent scope, what the patient allows: consentaction)
PURPOSES: dict[ConsentPurpose, tuple[tuple[str, str], tuple[str, str]]] = {
    ConsentPurpose.REMOTE_EXAMINATION: (("treatment", "Treatment"), ("use", "Use")),
    ConsentPurpose.RECORDING: (("patient-privacy", "Privacy Consent"), ("collect", "Collect")),
    ConsentPurpose.DATA_SHARING_CONSULTATION: (("patient-privacy", "Privacy Consent"), ("disclose", "Disclose")),
}
STATUSES = frozenset({"active", "inactive", "rejected"})
# The other codes of consent-state-codes: valid to ask for, never ours.
NEVER_OURS = frozenset({"draft", "proposed", "entered-in-error"})


def status(record: ConsentRecord) -> str:
    if not record.accepted:
        return "rejected"
    return "inactive" if record.withdrawn_at is not None else "active"


def _attachment(record: ConsentRecord, text: ConsentText | None) -> dict[str, Any]:
    attachment: dict[str, Any] = {
        "extension": [{"url": SHA256_EXTENSION,
                       "valueBase64Binary": base64.b64encode(bytes.fromhex(record.text_sha256)).decode()}],
        "contentType": "text/plain; charset=utf-8",
        "language": record.text_language,
    }
    if text is not None:
        body = text.body.encode("utf-8")
        attachment.update(data=base64.b64encode(body).decode(), size=len(body), title=text.title)
    return attachment


def consent(record: ConsentRecord, texts: dict[tuple[ConsentPurpose, str], ConsentText],
            statement_id: str | None = None) -> Resource:
    (scope_code, scope_display), (action_code, action_display) = PURPOSES[record.purpose]
    shipped = texts.get((record.purpose, record.text_language))
    text = shipped if shipped is not None and shipped.sha256 == record.text_sha256 else None
    period: dict[str, str] = {"start": instant(record.decided_at)}
    if record.withdrawn_at is not None:
        period["end"] = instant(record.withdrawn_at)
    resource: Resource = {
        "resourceType": "Consent",
        "id": record.id,
        "status": status(record),
        "scope": {"coding": [{"system": SCOPE_SYSTEM, "code": scope_code, "display": scope_display}]},
        "category": [{"coding": [PATIENT_CONSENT]},
                     {"coding": [{"system": PURPOSE_SYSTEM, "code": record.purpose.value}]}],
        "patient": reference("Patient", record.patient_id),
        "dateTime": instant(record.decided_at),
        "organization": [reference("Organization", record.tenant_id)],
        "sourceAttachment": _attachment(record, text),
        "policy": [{"uri": f"{TEXT_URI}:{record.purpose.value}:{record.text_version}:{record.text_language}"}],
        "policyRule": OPT_IN,
        "provision": {
            "type": "permit" if record.accepted else "deny",
            "period": period,
            "action": [{"coding": [{"system": ACTION_SYSTEM, "code": action_code, "display": action_display}]}],
            "purpose": [TREATMENT],
        },
    }
    if record.decided_as.endswith("guardian"):  # guardian, witness_guardian
        guardian: Resource = {"resourceType": "RelatedPerson", "id": "guardian",
                              "patient": reference("Patient", record.patient_id), "relationship": [GUARDIAN]}
        if record.guardian_name:
            guardian["name"] = [{"text": record.guardian_name}]
        resource["contained"] = [guardian]
        resource["performer"] = [{"reference": "#guardian"}]
    else:
        resource["performer"] = [reference("Patient", record.patient_id)]
    extensions: list[dict[str, Any]] = []
    if record.child_assent is not None:
        extensions.append({"url": CHILD_ASSENT_EXTENSION, "valueBoolean": record.child_assent})
        resource["verification"] = [{"verified": record.child_assent,
                                     "verifiedWith": reference("Patient", record.patient_id),
                                     "verificationDate": instant(record.decided_at)}]
    if record.decided_as.startswith("witness_"):
        extensions.append({"url": WITNESS_EXTENSION, "valueReference": reference("Practitioner", record.decided_by)})
        if statement_id:
            extensions.append({"url": STATEMENT_EXTENSION,
                               "valueReference": reference("DocumentReference", statement_id)})
    if extensions:
        resource["extension"] = extensions
    return resource


def _statuses(search: SearchRequest) -> set[str] | None:
    values = search.any_of("status")
    if values is None:
        return None
    unknown = set(values) - STATUSES - NEVER_OURS
    if unknown:
        raise bad_parameter(f"status is one of {', '.join(sorted(STATUSES | NEVER_OURS))}")
    return set(values)


async def _statements(db: AsyncSession, consent_ids: list[str]) -> dict[str, str]:
    """consent record id -> the id of its witness statement document."""
    if not consent_ids:
        return {}
    rows = await db.execute(select(Document.context_id, Document.id).where(
        Document.kind == DocumentKind.CONSENT, Document.context_type == STATEMENT_CONTEXT,
        Document.context_id.in_(sorted(consent_ids))).order_by(Document.created_at))
    return {consent_id: document_id for consent_id, document_id in rows if consent_id}


def searcher(texts: dict[tuple[ConsentPurpose, str], ConsentText]) -> Searcher:
    """The Consent search, with the consent texts the plugin loaded (to include the text shown)."""

    async def consents(db: AsyncSession, scope: Scope, search: SearchRequest, ctx: Context) -> Found:
        visible: Any = ConsentRecord.tenant_id.in_(sorted(scope.patients))
        if scope.is_patient:
            visible = or_(visible, ConsentRecord.patient_id == scope.user_id)
        query = select(ConsentRecord).where(visible).order_by(ConsentRecord.decided_at.desc(), ConsentRecord.id)
        if (ids := search.any_of("_id")) is not None:
            query = query.where(ConsentRecord.id.in_(ids))
        if (patients := search.any_of("patient")) is not None:
            query = query.where(ConsentRecord.patient_id.in_([strip_reference(p, ["Patient"]) for p in patients]))
        statuses = _statuses(search)
        rows = [r for r in (await db.execute(query)).scalars().all() if statuses is None or status(r) in statuses]
        records = rows[search.offset:search.offset + search.count]  # as queries.page, before building
        statements = await _statements(db, [r.id for r in records if r.decided_as.startswith("witness_")])
        return Found(page=[(consent(r, texts, statements.get(r.id)), r.tenant_id) for r in records],
                     total=len(rows))

    return consents
