"""Our documents as FHIR DocumentReferences (the current version; the content stays behind the
documents API, which checks access and audits the download again).

Who sees which: exactly server/records/documents/access.py may_read. SQL narrows to the reader's
tenants; may_read decides per document, so the rule lives in one place; paging follows in Python.
"""

from __future__ import annotations

import base64
from typing import Any

from sqlalchemy import and_, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.records.documents.access import may_read_with
from server.records.documents.models import Document, DocumentKind, DocumentVersion, SubjectType
from server.records.fhir.outcome import bad_parameter
from server.records.fhir.queries import Context, Found, page
from server.records.fhir.resources import USER_SYSTEM, instant, reference
from server.records.fhir.resources import Resource as Fhir
from server.records.fhir.search import SearchRequest, date_bounds, strip_reference
from server.records.scope import Scope

KIND_SYSTEM = "urn:caunoi:document-kind"
# R4 defines Attachment.hash as SHA-1; we keep SHA-256 (which signatures are made over), so it travels
# in an extension rather than in a field whose meaning it would break.
SHA256_EXTENSION = "urn:caunoi:fhir:attachment-sha256"
KINDS = {k.value for k in DocumentKind}


def _subject(document: Document) -> dict[str, Any]:
    if document.subject_type == SubjectType.PATIENT:
        return reference("Patient", document.subject_id)
    system = USER_SYSTEM if document.subject_type == SubjectType.STUDENT else "urn:caunoi:class"
    return {"identifier": {"system": system, "value": document.subject_id}}


def document_reference(document: Document, version: DocumentVersion, public_url: str) -> Fhir:
    attachment: dict[str, Any] = {
        "contentType": version.content_type,
        "url": f"{public_url}/api/records/documents/{document.id}/versions/{version.version}/content",
        "size": version.size,
        "title": version.filename or document.title,
        "creation": instant(version.created_at),
        "extension": [{"url": SHA256_EXTENSION,
                       "valueBase64Binary": base64.b64encode(bytes.fromhex(version.sha256)).decode()}],
    }
    result: Fhir = {
        "resourceType": "DocumentReference",
        "id": document.id,
        "meta": {"versionId": str(version.version)},
        "status": "current",
        "type": {"coding": [{"system": KIND_SYSTEM, "code": document.kind.value}], "text": document.kind.value},
        "subject": _subject(document),
        "date": instant(document.created_at),
        "custodian": reference("Organization", document.tenant_id),
        "description": document.title,
        "content": [{"attachment": attachment}],
    }
    if document.context_type and document.context_id:
        result["context"] = {"related": [{"identifier": {"system": f"urn:caunoi:{document.context_type}",
                                                         "value": document.context_id}}]}
    return result


async def document_references(db: AsyncSession, scope: Scope, search: SearchRequest, ctx: Context) -> Found:
    conditions: list[Any] = [Document.tenant_id.in_(sorted(scope.tenants))]
    if (ids := search.any_of("_id")) is not None:
        conditions.append(Document.id.in_(ids))
    if (patients := search.any_of("patient")) is not None:
        conditions += [Document.subject_type == SubjectType.PATIENT,
                       Document.subject_id.in_([strip_reference(p, ["Patient"]) for p in patients])]
    if (subjects := search.any_of("subject")) is not None:
        conditions.append(Document.subject_id.in_([strip_reference(s, ["Patient", "Group"]) for s in subjects]))
    if (kinds := search.any_of("type")) is not None:
        codes = [k.rpartition("|")[2] for k in kinds]  # accept system|code
        if not set(codes) <= KINDS:
            raise bad_parameter(f"type is one of {', '.join(sorted(KINDS))}")
        conditions.append(Document.kind.in_([DocumentKind(c) for c in codes]))
    if dates := search.any_of("date"):
        low, high = date_bounds(dates, ctx.zone)
        if low is not None:
            conditions.append(Document.created_at >= low)
        if high is not None:
            conditions.append(Document.created_at < high)
    rows = await db.execute(
        select(Document, DocumentVersion)
        .join(DocumentVersion, and_(DocumentVersion.document_id == Document.id,
                                    DocumentVersion.version == Document.current_version))
        .where(*conditions).order_by(Document.created_at.desc(), Document.id))
    found = [(document_reference(d, v, ctx.public_url), d.tenant_id) for d, v in rows
             if may_read_with(scope.user_id, scope.roles_in(d.tenant_id), d)]
    return page(found, search)
