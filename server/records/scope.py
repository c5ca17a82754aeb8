"""Which tenants' records a user may read, per kind of record.

Shared by the FHIR API and the audit pages, so that both answer the same question the same way.
``None`` means every tenant (the platform administrator).
"""

from __future__ import annotations

from dataclasses import dataclass

from server.auth.models import Role
from server.auth.sessions import CurrentUser

PRACTITIONER_ROLES = frozenset({Role.DOCTOR, Role.NURSE, Role.TEACHER})
STAFF_ROLES = frozenset({Role.FACILITY_ADMIN, Role.DOCTOR, Role.NURSE, Role.SCHOOL_ADMIN, Role.TEACHER})
# Who may see a facility's patients: its care staff and its administrator.
PATIENT_READERS = frozenset({Role.FACILITY_ADMIN, Role.DOCTOR, Role.NURSE})
AUDIT_READERS = frozenset({Role.FACILITY_ADMIN, Role.SCHOOL_ADMIN})


@dataclass(frozen=True, slots=True)
class Scope:
    user_id: str
    members: frozenset[str] | None
    """Tenants whose Organization the user may read: any role in it."""
    staff: frozenset[str] | None
    """Tenants whose practitioners and their roles the user may read."""
    patients: frozenset[str]
    """Facilities whose patients the user may read (never "all": see scope_of)."""
    audit: frozenset[str] | None
    """Tenants whose audit rows the user may read; empty for everyone but administrators."""
    is_patient: bool
    """The user is a patient somewhere, so may read their own Patient resource."""
    roles: frozenset[tuple[str, Role]] = frozenset()
    """(tenant, role) of every role the user holds: the calendars, bookings and documents rules are
    per tenant and per role (server/scheduling/routes.py, server/records/documents/access.py)."""

    @property
    def may_read_audit(self) -> bool:
        return self.audit is None or bool(self.audit)

    def roles_in(self, tenant_id: str) -> frozenset[Role]:
        return frozenset(role for tenant, role in self.roles if tenant == tenant_id)

    @property
    def tenants(self) -> frozenset[str]:
        """Every tenant the user has a role in; the platform administrator's is only the platform."""
        return frozenset(tenant for tenant, _ in self.roles)


def _tenants(user: CurrentUser, roles: frozenset[Role]) -> frozenset[str]:
    return frozenset(r.tenant_id for r in user.roles if r.role in roles)


def scope_of(user: CurrentUser) -> Scope:
    platform = user.has_role(Role.PLATFORM_ADMIN)
    return Scope(
        user_id=user.id,
        members=None if platform else frozenset(r.tenant_id for r in user.roles),
        staff=None if platform else _tenants(user, STAFF_ROLES),
        # The platform administrator runs the service, not a clinic: patients' identities stay with
        # the facilities that treat them (least privilege).
        patients=_tenants(user, PATIENT_READERS),
        audit=None if platform else _tenants(user, AUDIT_READERS),
        is_patient=user.has_role(Role.PATIENT),
        roles=frozenset((r.tenant_id, r.role) for r in user.roles),
    )
