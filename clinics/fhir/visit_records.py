"""The current version of each visit record (clinics/visit_record.py), under the visit record's
reading rules, for the resources built from it (Condition, MedicationRequest).

The rules are those of GET /api/clinics/encounters/{id}/record: the facility's care staff (its
administrator, doctors and nurses) at any time; the patient their own once the visit has finished.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from clinics.models import Encounter, EncounterStatus
from server.auth.models import Role
from server.records.documents.models import Document, DocumentKind, DocumentVersion, Signature
from server.records.fhir.search import SearchRequest, strip_reference
from server.records.scope import Scope


@dataclass(frozen=True)
class VisitRecord:
    encounter: Encounter
    document: Document
    version: DocumentVersion
    signed: bool
    """The current version carries a doctor's signature."""
    content: dict[str, Any]


def visible_encounters(scope: Scope, *, finished_for_patient: bool) -> ColumnElement[bool]:
    """Encounters the reader may see: their facilities' (care staff), and, for a patient, their own
    (only finished ones where the record is concerned). An export's scope has is_patient False, so an
    administrator's export never adds their own visits as a patient."""
    staff: ColumnElement[bool] = Encounter.tenant_id.in_(sorted(scope.patients))
    if not scope.is_patient:
        return staff
    own = Encounter.patient_id == scope.user_id
    if finished_for_patient:
        own = and_(own, Encounter.status == EncounterStatus.FINISHED)
    return or_(staff, own)


def split_id(resource_id: str) -> tuple[str, int] | None:
    """'{document id}.{n}' -> (document id, n); None for anything else."""
    document_id, _, number = resource_id.rpartition(".")
    if not document_id or not number.isdigit() or len(number) > 3:
        return None
    return document_id, int(number)


def resource_id(record: VisitRecord, number: int) -> str:
    """Stable while the record's document lives: the n-th (from 1) diagnosis or item of its current version."""
    return f"{record.document.id}.{number}"


def wanted_ids(search: SearchRequest) -> dict[str, set[int]] | None:
    """The _id values as {document id: item numbers}."""
    ids = search.any_of("_id")
    if ids is None:
        return None
    wanted: dict[str, set[int]] = {}
    for value in ids:
        parts = split_id(value)
        if parts is not None:
            wanted.setdefault(parts[0], set()).add(parts[1])
    return wanted


async def current_records(db: AsyncSession, scope: Scope, search: SearchRequest,
                          document_ids: Sequence[str] | None) -> list[VisitRecord]:
    """Newest first; narrowed in SQL by _id (documents), patient and encounter."""
    signed = exists().where(Signature.document_id == Document.id, Signature.version == Document.current_version,
                            Signature.signer_role == Role.DOCTOR.value)
    query = (
        select(Encounter, Document, DocumentVersion, signed.label("signed"))
        .join(Document, and_(Document.context_type == "encounter", Document.context_id == Encounter.id,
                             Document.kind == DocumentKind.NOTE, Document.tenant_id == Encounter.tenant_id))
        .join(DocumentVersion, and_(DocumentVersion.document_id == Document.id,
                                    DocumentVersion.version == Document.current_version))
        .where(visible_encounters(scope, finished_for_patient=True))
        .order_by(DocumentVersion.created_at.desc(), Document.id)
    )
    if document_ids is not None:
        query = query.where(Document.id.in_(sorted(document_ids)))
    if (patients := search.any_of("patient")) is not None:
        query = query.where(Encounter.patient_id.in_([strip_reference(p, ["Patient"]) for p in patients]))
    if (encounters := search.any_of("encounter")) is not None:
        query = query.where(Encounter.id.in_([strip_reference(e, ["Encounter"]) for e in encounters]))
    records = []
    for encounter, document, version, is_signed in await db.execute(query):
        try:
            content = json.loads(version.text or "")
        except ValueError:
            continue  # not a record this code wrote: nothing to show rather than a 500
        if isinstance(content, dict):
            records.append(VisitRecord(encounter, document, version, bool(is_signed), content))
    return records
