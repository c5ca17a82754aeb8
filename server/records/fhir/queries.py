"""One search per resource type, scoped to what the reader may see (server/records/scope.py).

People and tenants are filtered and paged in Python after a scoped SQL query: per tenant they are few,
and it gives accent-insensitive name matching ("nguyen" finds "Nguyễn") on SQLite and PostgreSQL alike.
The audit log can be large, so it is filtered and paged in SQL.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.models import Role, RoleAssignment, Tenant, TenantKind, User
from server.records.audit_search import AuditFilter, search_audit
from server.records.fhir import resources as build
from server.records.fhir.outcome import bad_parameter
from server.records.fhir.resources import ORG_TYPES, OUTCOME_CODES, ROLE_CODES, Resource
from server.records.fhir.search import SearchRequest, date_bounds, strip_reference
from server.records.scope import PRACTITIONER_ROLES, Scope


@dataclass
class Found:
    """One page of resources, each with the tenant its access is audited under, and the total."""

    page: list[tuple[Resource, str | None]] = field(default_factory=list)
    total: int = 0


@dataclass(frozen=True)
class Context:
    """What a search needs besides the database and the reader."""

    zone: str
    """Where a date without a time is a local day (CAUNOI_TIMEZONE)."""
    public_url: str
    """The server as clients reach it, for links out of the FHIR API (document content)."""


Searcher = Callable[[AsyncSession, Scope, SearchRequest, Context], Awaitable[Found]]


def fold(text: str) -> str:
    """Lower case without diacritics; đ has no decomposition, so it is mapped by hand."""
    decomposed = unicodedata.normalize("NFD", text.casefold().replace("đ", "d"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def name_matches(name: str, wanted: Iterable[str]) -> bool:
    """FHIR string search: some word of the name starts with the value (or the whole name does)."""
    folded = fold(name)
    words = folded.split()
    return any(folded.startswith(fold(w)) or any(word.startswith(fold(w)) for word in words) for w in wanted)


def page(items: Sequence[tuple[Resource, str | None]], search: SearchRequest) -> Found:
    return Found(page=list(items[search.offset:search.offset + search.count]), total=len(items))


def _within(column: object, tenants: frozenset[str] | None) -> object:
    return True if tenants is None else column.in_(sorted(tenants))  # type: ignore[attr-defined]


async def organizations(db: AsyncSession, scope: Scope, search: SearchRequest, ctx: Context) -> Found:
    types = search.any_of("type")
    kinds = {k for k, (code, _) in ORG_TYPES.items() if types is None or code in types or k.value in types}
    rows = (await db.execute(
        select(Tenant).where(Tenant.kind != TenantKind.PLATFORM, _within(Tenant.id, scope.members))  # type: ignore[arg-type]
        .order_by(Tenant.name, Tenant.id)
    )).scalars().all()
    ids, names = search.any_of("_id"), search.any_of("name")
    found = [(build.organization(t), t.id) for t in rows
             if t.kind in kinds and (ids is None or t.id in ids) and (names is None or name_matches(t.name, names))]
    return page(found, search)


async def _people(db: AsyncSession, roles: frozenset[Role], condition: object) -> list[tuple[RoleAssignment, User]]:
    rows = await db.execute(
        select(RoleAssignment, User).join(User, User.id == RoleAssignment.user_id)
        .where(RoleAssignment.role.in_(sorted(roles)), condition)  # type: ignore[arg-type]
        .order_by(User.display_name, User.id, RoleAssignment.tenant_id, RoleAssignment.role)
    )
    return [(assignment, user) for assignment, user in rows]


def _by_user(rows: list[tuple[RoleAssignment, User]]) -> list[tuple[User, list[str]]]:
    """Users in order, each with the tenants (in order) of their matching roles."""
    grouped: dict[str, tuple[User, list[str]]] = {}
    for assignment, user in rows:
        tenants = grouped.setdefault(user.id, (user, []))[1]
        if assignment.tenant_id not in tenants:
            tenants.append(assignment.tenant_id)
    return list(grouped.values())


def _person_filter(user: User, search: SearchRequest) -> bool:
    ids, names = search.any_of("_id"), search.any_of("name")
    return (ids is None or user.id in ids) and (names is None or name_matches(user.display_name, names))


async def practitioners(db: AsyncSession, scope: Scope, search: SearchRequest, ctx: Context) -> Found:
    rows = await _people(db, PRACTITIONER_ROLES, _within(RoleAssignment.tenant_id, scope.staff))
    found = [(build.practitioner(user), tenants[0]) for user, tenants in _by_user(rows)
             if _person_filter(user, search)]
    return page(found, search)


async def practitioner_roles(db: AsyncSession, scope: Scope, search: SearchRequest, ctx: Context) -> Found:
    rows = await _people(db, PRACTITIONER_ROLES, _within(RoleAssignment.tenant_id, scope.staff))
    ids = search.any_of("_id")
    people = search.any_of("practitioner")
    people = None if people is None else tuple(strip_reference(p, ["Practitioner"]) for p in people)
    orgs = search.any_of("organization")
    orgs = None if orgs is None else tuple(strip_reference(o, ["Organization"]) for o in orgs)
    codes = search.any_of("role")
    found = [(build.practitioner_role(a, user), a.tenant_id) for a, user in rows
             if (ids is None or a.id in ids) and (people is None or user.id in people)
             and (orgs is None or a.tenant_id in orgs) and (codes is None or ROLE_CODES[a.role][0] in codes)]
    return page(found, search)


async def patients(db: AsyncSession, scope: Scope, search: SearchRequest, ctx: Context) -> Found:
    visible = RoleAssignment.tenant_id.in_(sorted(scope.patients))
    # A patient sees their own record, whichever facility they are a patient of.
    condition = or_(visible, RoleAssignment.user_id == scope.user_id) if scope.is_patient else visible
    rows = await _people(db, frozenset({Role.PATIENT}), condition)
    orgs = search.any_of("organization")
    orgs = None if orgs is None else tuple(strip_reference(o, ["Organization"]) for o in orgs)
    found = [(build.patient(user, tenants), tenants[0]) for user, tenants in _by_user(rows)
             if _person_filter(user, search) and (orgs is None or set(orgs) & set(tenants))]
    return page(found, search)


def single(search: SearchRequest, name: str, types: list[str] | None = None) -> str | None:
    values = search.any_of(name)
    if values is None:
        return None
    if len(values) != 1:
        raise bad_parameter(f"{name} takes one value here")
    return strip_reference(values[0], types) if types else values[0]


async def audit_events(db: AsyncSession, scope: Scope, search: SearchRequest, ctx: Context) -> Found:
    outcome_code = single(search, "outcome")
    outcomes = {code: outcome for outcome, code in OUTCOME_CODES.items()}
    if outcome_code is not None and outcome_code not in outcomes:
        raise bad_parameter(f"outcome is one of {', '.join(sorted(outcomes))}")
    subtype = single(search, "subtype")
    patient = single(search, "patient", ["Patient"])
    entity = single(search, "entity", sorted(build.FHIR_TARGETS))
    if patient is not None and entity is not None and patient != entity:
        raise bad_parameter("patient and entity name different targets; give one")
    f = AuditFilter(
        event_id=single(search, "_id"),
        actor_id=single(search, "agent", ["Practitioner", "Patient"]),
        target_id=patient or entity,
        target_type="Patient" if patient else None,
        action=subtype.rpartition("|")[2] if subtype else None,  # accept system|code
        outcome=outcomes[outcome_code] if outcome_code else None,
    )
    dates = search.any_of("date")
    if dates:
        f = f.narrowed(*date_bounds(dates, ctx.zone))
    rows, total = await search_audit(db, f, scope.audit, limit=search.count, offset=search.offset)
    return Found(page=[(build.audit_event(row), row.tenant_id) for row in rows], total=total)
