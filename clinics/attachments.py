"""Images and PDFs sent in a visit's chat: stored as documents of the patient, linked to the visit.

Upload is multipart/form-data with one ``file`` part. The type is read from the bytes (JPEG, PNG,
WebP, PDF), never from the client's Content-Type or file name; the size cap
(``CAUNOI_DOCUMENT_MAX_BYTES``) is enforced while the part streams in, so an oversized upload is
refused without being held in memory. Reading is for the visit's patient and the facility's staff;
anyone else gets 404, and every upload, read and refusal is audited.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from urllib.parse import quote, unquote

from aiohttp import BodyPartReader, web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from clinics.models import Encounter
from clinics.visits import ACTIVE, visit_of
from server.auth.models import User
from server.errors import ApiError
from server.keys import DOCUMENT_STORAGE, SESSIONS, SETTINGS
from server.records.audit import Outcome, audit, audit_row
from server.records.documents import service
from server.records.documents.content import ContentRefused, sniff
from server.records.documents.models import Document, DocumentKind, DocumentVersion, SubjectType
from server.requestctx import USER, audit_context

ACCEPTED = frozenset({"image/jpeg", "image/png", "image/webp", "application/pdf"})
CONTEXT = "encounter"
CHUNK = 64 * 1024
MULTIPART_OVERHEAD = 16 * 1024
"""Room for the multipart boundaries and part headers around the file itself."""


def clean_filename(name: str | None) -> str:
    """A file name fit to show and to put in a header: no path, no control characters, ≤ 120 chars."""
    # Browsers escape '"' and line breaks as %22/%0A; aiohttp's parser leaves RFC 5987 names quoted.
    base = re.split(r"[\\/]", unquote(name or ""))[-1]
    base = "".join(c for c in unicodedata.normalize("NFC", base) if unicodedata.category(c)[0] != "C").strip(" .")
    return base[:120] or "tep-dinh-kem"


def attachment_url(encounter_id: str, document_id: str) -> str:
    return f"/api/clinics/encounters/{encounter_id}/attachments/{document_id}"


def attachment_json(document: Document, version: DocumentVersion, sender_name: str, from_clinic: bool
                    ) -> dict[str, object]:
    """One attachment as a chat item (the same shape as a text message, plus ``attachment``)."""
    assert document.context_id is not None
    return {"id": document.id, "sender_name": sender_name, "from_clinic": from_clinic, "text": "",
            "sent_at": document.created_at.isoformat(),
            "attachment": {"id": document.id, "filename": version.filename or document.title,
                           "content_type": version.content_type, "size": version.size,
                           "url": attachment_url(document.context_id, document.id)}}


async def read_file_part(request: web.Request, max_bytes: int) -> tuple[str, bytes, str]:
    """(content type from the bytes, bytes, clean file name) of the upload's ``file`` part."""
    if not request.content_type.startswith("multipart/form-data"):
        raise ApiError(415, "unsupported_media_type", "send the file as multipart/form-data")
    if request.content_length is not None and request.content_length > max_bytes + MULTIPART_OVERHEAD:
        raise _too_large(max_bytes)  # said up front: nothing is read
    try:
        reader = await request.multipart()
        part = await reader.next()
    except (ValueError, AssertionError):
        raise ApiError(400, "invalid_body", "the multipart body could not be read") from None
    if not isinstance(part, BodyPartReader) or part.name != "file":
        raise ApiError(400, "invalid_body", "the body needs one part named 'file'")
    data = bytearray()
    kind: str | None = None
    while chunk := await part.read_chunk(CHUNK):
        data += chunk
        if len(data) > max_bytes:
            raise _too_large(max_bytes)  # stop reading here: the rest is never buffered
        if kind is None and len(data) >= 12:
            kind = sniff(bytes(data[:12]))
            if kind not in ACCEPTED:
                raise _wrong_type()
    if not data:
        raise ApiError(400, "invalid_body", "the file is empty")
    kind = sniff(bytes(data[:12]))
    if kind not in ACCEPTED:
        raise _wrong_type()
    return kind, bytes(data), clean_filename(part.filename)


def _too_large(max_bytes: int) -> ApiError:
    return ApiError(413, "too_large", f"a file may be at most {max_bytes // (1024 * 1024)} MiB")


def _wrong_type() -> ApiError:
    return ApiError(415, "unsupported_media_type", "send a JPEG, PNG or WebP image or a PDF")


async def upload(request: web.Request) -> web.Response:
    """POST /api/clinics/encounters/{encounter_id}/attachments (registered with the chat's routes)."""
    encounter = await visit_of(request, "clinic.attachment.upload")
    if encounter.status not in ACTIVE:
        raise ApiError(409, "visit_closed", "this visit has ended")
    user = request[USER]
    app = request.app
    try:
        kind, data, filename = await read_file_part(request, app[SETTINGS].document_max_bytes)
    except ApiError:
        await audit(app[SESSIONS], audit_context(request), "clinic.attachment.upload", Outcome.DENIED,
                    target_type="encounter", target_id=encounter.id, tenant_id=encounter.tenant_id)
        raise
    async with app[SESSIONS].begin() as db:
        document = Document(tenant_id=encounter.tenant_id, kind=DocumentKind.ATTACHMENT, title=filename,
                            subject_type=SubjectType.PATIENT, subject_id=encounter.patient_id,
                            context_type=CONTEXT, context_id=encounter.id, created_by=user.id)
        db.add(document)
        await db.flush()
        try:
            version = await service.add_version(db, app[DOCUMENT_STORAGE], document, 1,
                                                service.Content(kind, data, filename), author_id=user.id,
                                                max_bytes=app[SETTINGS].document_max_bytes)
        except ContentRefused as exc:  # read_file_part checked the same: kept as a second guard
            raise ApiError(415, "unsupported_media_type", str(exc)) from None
        db.add(audit_row(audit_context(request), "clinic.attachment.upload", Outcome.SUCCESS,
                         target_type="document", target_id=document.id, tenant_id=encounter.tenant_id))
    from_clinic = user.id != encounter.patient_id
    return web.json_response(attachment_json(document, version, user.display_name, from_clinic), status=201)


async def download(request: web.Request) -> web.Response:
    """GET /api/clinics/encounters/{encounter_id}/attachments/{document_id}."""
    encounter = await visit_of(request, "clinic.attachment.read")
    document_id = request.match_info["document_id"]
    async with request.app[SESSIONS]() as db:
        document = await db.get(Document, document_id[:36])
        version = None
        if (document is not None and document.kind == DocumentKind.ATTACHMENT and document.context_type == CONTEXT
                and document.context_id == encounter.id):
            version = await db.scalar(select(DocumentVersion).where(
                DocumentVersion.document_id == document.id, DocumentVersion.version == document.current_version))
    if document is None or version is None:
        await audit(request.app[SESSIONS], audit_context(request), "clinic.attachment.read", Outcome.DENIED,
                    target_type="document", target_id=document_id[:64], tenant_id=encounter.tenant_id)
        raise ApiError(404, "not_found", "no such attachment")
    data = await service.read_content(request.app[DOCUMENT_STORAGE], version)
    await audit(request.app[SESSIONS], audit_context(request), "clinic.attachment.read", Outcome.SUCCESS,
                target_type="document", target_id=document.id, tenant_id=encounter.tenant_id)
    filename = version.filename or document.title
    ascii_name = filename.encode("ascii", "ignore").decode().replace('"', "") or "attachment"
    # A download in a sandbox, never cached: a stored file must not run as our page nor linger on a
    # shared device (a commune station's tablet).
    return web.Response(body=data, content_type=version.content_type, headers={
        "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}",
        "Content-Security-Policy": "sandbox", "Cache-Control": "private, no-store"})


async def chat_items(db: AsyncSession, encounter: Encounter, after: datetime | None) -> list[dict[str, object]]:
    """The visit's attachments (after ``after``) as chat items, oldest first."""
    query = (select(Document, DocumentVersion, User.display_name)
             .join(DocumentVersion, (DocumentVersion.document_id == Document.id)
                   & (DocumentVersion.version == Document.current_version))
             .outerjoin(User, User.id == Document.created_by)
             .where(Document.context_type == CONTEXT, Document.context_id == encounter.id,
                    Document.kind == DocumentKind.ATTACHMENT))
    if after is not None:
        query = query.where(Document.created_at > after)
    rows = (await db.execute(query.order_by(Document.created_at).limit(200))).all()
    return [attachment_json(document, version, name or "", document.created_by != encounter.patient_id)
            for document, version, name in rows]
