"""Creating documents and versions, and signing them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.models import Role, RoleAssignment
from server.records.documents.content import TEXT_TYPES, check
from server.records.documents.models import Document, DocumentVersion, Signature, SubjectType
from server.records.documents.storage import LocalStorage
from server.rooms.models import Room, RoomKind


class DocumentError(Exception):
    status = 400
    code = "document_error"


class InvalidSubject(DocumentError):
    status = 422
    code = "invalid_subject"


class NotCurrentVersion(DocumentError):
    status = 409
    code = "not_current_version"


class AlreadySigned(DocumentError):
    status = 409
    code = "already_signed"


@dataclass(frozen=True)
class Content:
    content_type: str
    data: bytes
    filename: str | None = None


async def check_subject(db: AsyncSession, tenant_id: str, subject_type: SubjectType, subject_id: str) -> None:
    """The subject exists in this tenant: a patient of the facility, a student or a class of the school."""
    if subject_type == SubjectType.CLASS:
        found = await db.scalar(select(Room.id).where(Room.id == subject_id, Room.tenant_id == tenant_id,
                                                      Room.kind == RoomKind.CLASS))
    else:
        role = Role.PATIENT if subject_type == SubjectType.PATIENT else Role.STUDENT
        found = await db.scalar(select(RoleAssignment.id).where(
            RoleAssignment.user_id == subject_id, RoleAssignment.tenant_id == tenant_id, RoleAssignment.role == role))
    if found is None:
        raise InvalidSubject(f"no {subject_type.value} with this id in this tenant")


async def add_version(db: AsyncSession, storage: LocalStorage, document: Document, version: int, content: Content,
                      *, author_id: str, max_bytes: int) -> DocumentVersion:
    kind = check(content.content_type, content.data, max_bytes)
    text = content.data.decode("utf-8") if kind in TEXT_TYPES else None
    key = None if text is not None else await storage.put(content.data)
    row = DocumentVersion(document_id=document.id, version=version, content_type=kind, size=len(content.data),
                          sha256=hashlib.sha256(content.data).hexdigest(), text=text, storage_key=key,
                          filename=(content.filename or None) and content.filename[:200], created_by=author_id)
    db.add(row)
    document.current_version = version
    await db.flush()
    return row


async def read_content(storage: LocalStorage, version: DocumentVersion) -> bytes:
    if version.text is not None:
        return version.text.encode("utf-8")
    assert version.storage_key is not None
    return await storage.get(version.storage_key)


async def sign(db: AsyncSession, document: Document, version: int, *, signer_id: str, role: Role) -> Signature:
    if version != document.current_version:
        raise NotCurrentVersion(f"version {version} has been replaced by version {document.current_version}")
    row = await db.scalar(select(DocumentVersion).where(DocumentVersion.document_id == document.id,
                                                        DocumentVersion.version == version))
    assert row is not None
    if await db.scalar(select(Signature.id).where(Signature.document_id == document.id, Signature.version == version,
                                                  Signature.signer_id == signer_id)):
        raise AlreadySigned("you have already signed this version")
    signature = Signature(document_id=document.id, version=version, signer_id=signer_id, signer_role=role.value,
                          sha256=row.sha256)
    db.add(signature)
    await db.flush()
    return signature
