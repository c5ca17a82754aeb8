"""Who may read, write and sign which documents."""

from __future__ import annotations

from server.auth.models import Role
from server.auth.sessions import CurrentUser
from server.records.documents.models import Document, SubjectType
from server.records.scope import PATIENT_READERS

SCHOOL_STAFF = frozenset({Role.SCHOOL_ADMIN, Role.TEACHER})
WRITERS: dict[SubjectType, frozenset[Role]] = {
    SubjectType.PATIENT: PATIENT_READERS,
    SubjectType.STUDENT: SCHOOL_STAFF,
    SubjectType.CLASS: SCHOOL_STAFF,
}
# The subject reads their own documents; a class's documents are read by its school's students too.
SELF_ROLE: dict[SubjectType, Role] = {SubjectType.PATIENT: Role.PATIENT, SubjectType.STUDENT: Role.STUDENT}


def roles_in(user: CurrentUser, tenant_id: str) -> frozenset[Role]:
    return frozenset(r.role for r in user.roles if r.tenant_id == tenant_id)


def may_write(user: CurrentUser, tenant_id: str, subject_type: SubjectType) -> bool:
    return bool(roles_in(user, tenant_id) & WRITERS[subject_type])


def may_read(user: CurrentUser, document: Document) -> bool:
    return may_read_with(user.id, roles_in(user, document.tenant_id), document)


def may_read_with(user_id: str, roles: frozenset[Role], document: Document) -> bool:
    """may_read from the user's id and roles in the document's tenant (the FHIR API has no session)."""
    if roles & WRITERS[document.subject_type]:
        return True
    if document.subject_type == SubjectType.CLASS:
        return Role.STUDENT in roles
    own = SELF_ROLE.get(document.subject_type)
    return own is not None and own in roles and document.subject_id == user_id


def signer_role(user: CurrentUser, document: Document) -> Role | None:
    """The role under which the user signs, or None when they may not sign this document."""
    roles = roles_in(user, document.tenant_id) & WRITERS[document.subject_type]
    for preferred in (Role.DOCTOR, Role.TEACHER, Role.NURSE, Role.FACILITY_ADMIN, Role.SCHOOL_ADMIN):
        if preferred in roles:
            return preferred
    return None
