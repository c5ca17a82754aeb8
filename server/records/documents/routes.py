"""The documents API. Text documents travel as JSON; files as multipart/form-data with a
``metadata`` JSON part and a ``file`` part. Reads and writes of health or student data are audited;
anything the user may not see is 404."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import BodyPartReader, web
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import select

from server.auth.sessions import CurrentUser
from server.errors import ApiError
from server.keys import DOCUMENT_STORAGE, SESSIONS, SETTINGS
from server.records.audit import Outcome, audit, audit_row
from server.records.documents import service
from server.records.documents.access import may_read, may_write, signer_role
from server.records.documents.content import ContentRefused
from server.records.documents.models import Document, DocumentKind, DocumentVersion, Signature, SubjectType
from server.requestctx import USER, audit_context

routes = web.RouteTableDef()


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DocumentIn(_Body):
    tenant_id: str = Field(max_length=36)
    kind: DocumentKind
    title: str = Field(min_length=1, max_length=200)
    subject_type: SubjectType
    subject_id: str = Field(max_length=36)
    context_type: str | None = Field(default=None, max_length=32)
    context_id: str | None = Field(default=None, max_length=36)
    content_type: str = Field(default="text/plain", max_length=100)
    text: str | None = None


class VersionIn(_Body):
    content_type: str = Field(default="text/plain", max_length=100)
    text: str | None = None


def _user(request: web.Request) -> CurrentUser:
    user = request.get(USER)
    if user is None:
        raise ApiError(401, "not_logged_in", "log in first")
    return user


async def _read_input(request: web.Request, model: type[_Body]) -> tuple[Any, service.Content]:
    """(metadata, content) from a JSON body with ``text``, or from multipart metadata + file."""
    try:
        if request.content_type.startswith("multipart/"):
            metadata: Any = None
            content: service.Content | None = None
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader):
                    raise ApiError(400, "invalid_body", "nested multipart is not accepted")
                if part.name == "metadata":
                    metadata = model.model_validate(json.loads(await part.text()))
                elif part.name == "file":
                    data = await part.read()
                    content = service.Content(part.headers.get("Content-Type", "application/octet-stream"),
                                              bytes(data), part.filename)
            if metadata is None or content is None:
                raise ApiError(400, "invalid_body", "multipart needs a 'metadata' part and a 'file' part")
            return metadata, content
        metadata = model.model_validate(await request.json())
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "invalid_json", "the body is not valid JSON") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        raise ApiError(400, "invalid_body", f"{'.'.join(map(str, first['loc'])) or 'body'}: {first['msg']}") from None
    if metadata.text is None:
        raise ApiError(400, "invalid_body", "text: required for a JSON body (send files as multipart)")
    return metadata, service.Content(metadata.content_type, metadata.text.encode("utf-8"))


def _document_json(document: Document, versions: list[DocumentVersion], signatures: list[Signature]
                   ) -> dict[str, object]:
    return {
        "id": document.id, "tenant_id": document.tenant_id, "kind": document.kind.value, "title": document.title,
        "subject_type": document.subject_type.value, "subject_id": document.subject_id,
        "context_type": document.context_type, "context_id": document.context_id,
        "current_version": document.current_version, "created_by": document.created_by,
        "created_at": document.created_at.isoformat(),
        "versions": [{"version": v.version, "content_type": v.content_type, "size": v.size, "sha256": v.sha256,
                      "filename": v.filename, "created_by": v.created_by, "created_at": v.created_at.isoformat(),
                      "signatures": [{"signer_id": s.signer_id, "signer_role": s.signer_role,
                                      "signed_at": s.signed_at.isoformat(), "sha256": s.sha256}
                                     for s in signatures if s.version == v.version]}
                     for v in versions],
    }


async def _load(request: web.Request, user: CurrentUser, action: str) -> Document:
    document_id = request.match_info["document_id"]
    async with request.app[SESSIONS]() as db:
        document = await db.get(Document, document_id)
    if document is None or not may_read(user, document):
        await audit(request.app[SESSIONS], audit_context(request), action, Outcome.DENIED,
                    target_type="document", target_id=document_id[:64])
        raise ApiError(404, "not_found", "no such document")
    return document


@routes.post("/api/records/documents")
async def create_document(request: web.Request) -> web.Response:
    user = _user(request)
    metadata, content = await _read_input(request, DocumentIn)
    assert isinstance(metadata, DocumentIn)
    if not may_write(user, metadata.tenant_id, metadata.subject_type):
        await audit(request.app[SESSIONS], audit_context(request), "records.document.create", Outcome.DENIED,
                    target_type="tenant", target_id=metadata.tenant_id)
        raise ApiError(404, "not_found", "no such tenant")
    app = request.app
    async with app[SESSIONS].begin() as db:
        try:
            await service.check_subject(db, metadata.tenant_id, metadata.subject_type, metadata.subject_id)
            document = Document(tenant_id=metadata.tenant_id, kind=metadata.kind, title=metadata.title,
                                subject_type=metadata.subject_type, subject_id=metadata.subject_id,
                                context_type=metadata.context_type, context_id=metadata.context_id,
                                created_by=user.id)
            db.add(document)
            await db.flush()
            version = await service.add_version(db, app[DOCUMENT_STORAGE], document, 1, content, author_id=user.id,
                                                max_bytes=app[SETTINGS].document_max_bytes)
        except ContentRefused as exc:
            raise ApiError(415 if "type" in str(exc) or "bytes are not" in str(exc) else 413
                           if "larger" in str(exc) else 400, "content_refused", str(exc)) from None
        except service.DocumentError as exc:
            raise ApiError(exc.status, exc.code, str(exc)) from None
        db.add(audit_row(audit_context(request), "records.document.create", Outcome.SUCCESS, target_type="document",
                         target_id=document.id, tenant_id=document.tenant_id))
    return web.json_response(_document_json(document, [version], []), status=201)


@routes.post("/api/records/documents/{document_id}/versions")
async def new_version(request: web.Request) -> web.Response:
    user = _user(request)
    document = await _load(request, user, "records.document.update")
    if not may_write(user, document.tenant_id, document.subject_type):
        raise ApiError(403, "forbidden", "you may read this document but not change it")
    metadata, content = await _read_input(request, VersionIn)
    del metadata
    app = request.app
    async with app[SESSIONS].begin() as db:
        current = await db.get(Document, document.id, with_for_update=True)
        assert current is not None
        try:
            await service.add_version(db, app[DOCUMENT_STORAGE], current, current.current_version + 1, content,
                                      author_id=user.id, max_bytes=app[SETTINGS].document_max_bytes)
        except ContentRefused as exc:
            raise ApiError(413 if "larger" in str(exc) else 415, "content_refused", str(exc)) from None
        db.add(audit_row(audit_context(request), "records.document.update", Outcome.SUCCESS, target_type="document",
                         target_id=current.id, tenant_id=current.tenant_id))
        version = current.current_version
    return web.json_response({"id": document.id, "current_version": version}, status=201)


@routes.get("/api/records/documents/{document_id}")
async def get_document(request: web.Request) -> web.Response:
    user = _user(request)
    document = await _load(request, user, "records.document.read")
    async with request.app[SESSIONS]() as db:
        versions = (await db.execute(select(DocumentVersion).where(DocumentVersion.document_id == document.id)
                                     .order_by(DocumentVersion.version))).scalars().all()
        signatures = (await db.execute(select(Signature).where(Signature.document_id == document.id))).scalars().all()
    await audit(request.app[SESSIONS], audit_context(request), "records.document.read", Outcome.SUCCESS,
                target_type="document", target_id=document.id, tenant_id=document.tenant_id)
    return web.json_response(_document_json(document, list(versions), list(signatures)))


@routes.get("/api/records/documents/{document_id}/versions/{version}/content")
async def get_content(request: web.Request) -> web.Response:
    user = _user(request)
    document = await _load(request, user, "records.document.read")
    try:
        number = int(request.match_info["version"])
    except ValueError:
        raise ApiError(400, "invalid_version", "the version is a number") from None
    async with request.app[SESSIONS]() as db:
        version = await db.scalar(select(DocumentVersion).where(DocumentVersion.document_id == document.id,
                                                                DocumentVersion.version == number))
    if version is None:
        raise ApiError(404, "not_found", "no such version")
    data = await service.read_content(request.app[DOCUMENT_STORAGE], version)
    await audit(request.app[SESSIONS], audit_context(request), "records.document.content", Outcome.SUCCESS,
                target_type="document", target_id=document.id, tenant_id=document.tenant_id)
    # Served as a download in a sandbox: a stored file must never run as our page.
    return web.Response(body=data, content_type=version.content_type, headers={
        "Content-Disposition": f'attachment; filename="document-{document.id[:8]}-v{number}"',
        "Content-Security-Policy": "sandbox", "Cache-Control": "private, no-store"})


@routes.post("/api/records/documents/{document_id}/versions/{version}/sign")
async def sign_version(request: web.Request) -> web.Response:
    user = _user(request)
    document = await _load(request, user, "records.document.sign")
    role = signer_role(user, document)
    if role is None:
        raise ApiError(403, "forbidden", "you may read this document but not sign it")
    try:
        number = int(request.match_info["version"])
    except ValueError:
        raise ApiError(400, "invalid_version", "the version is a number") from None
    async with request.app[SESSIONS].begin() as db:
        current = await db.get(Document, document.id)
        assert current is not None
        try:
            signature = await service.sign(db, current, number, signer_id=user.id, role=role)
        except service.DocumentError as exc:
            raise ApiError(exc.status, exc.code, str(exc)) from None
        db.add(audit_row(audit_context(request), "records.document.sign", Outcome.SUCCESS, target_type="document",
                         target_id=document.id, tenant_id=document.tenant_id))
    return web.json_response({"document_id": document.id, "version": number, "signer_id": user.id,
                              "signer_role": role.value, "sha256": signature.sha256,
                              "signed_at": signature.signed_at.isoformat()}, status=201)


@routes.get("/api/records/documents")
async def list_documents(request: web.Request) -> web.Response:
    """Documents about one subject (``subject_id``), those the user may read, newest first."""
    user = _user(request)
    subject_id = request.query.get("subject_id", "")[:36]
    if not subject_id:
        raise ApiError(400, "invalid_query", "subject_id is required")
    async with request.app[SESSIONS]() as db:
        documents = (await db.execute(select(Document).where(Document.subject_id == subject_id)
                                      .order_by(Document.created_at.desc()).limit(200))).scalars().all()
    readable = [d for d in documents if may_read(user, d)]
    await audit(request.app[SESSIONS], audit_context(request), "records.document.list", Outcome.SUCCESS,
                target_type="subject", target_id=subject_id)
    return web.json_response({"documents": [{"id": d.id, "kind": d.kind.value, "title": d.title,
                                             "current_version": d.current_version,
                                             "created_at": d.created_at.isoformat()} for d in readable]})
