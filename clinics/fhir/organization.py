"""Organization.partOf: the facility's parent today (clinics/facilities.py keeps the parents with
their dates, so a re-parenting that takes effect later does not show before its day)."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from clinics.models import FacilityParent
from server.auth.models import Tenant
from server.records.fhir.queries import Context
from server.records.fhir.resources import Resource, reference


async def part_of(db: AsyncSession, ctx: Context, resources: list[Resource]) -> None:
    """Add partOf to each facility in ``resources`` that reports to another today (local day)."""
    by_id = {r["id"]: r for r in resources}
    if not by_id:
        return
    today = datetime.now(ZoneInfo(ctx.zone)).date()
    rows = await db.execute(
        select(FacilityParent.child_id, Tenant.id, Tenant.name).join(Tenant, Tenant.id == FacilityParent.parent_id)
        .where(FacilityParent.child_id.in_(sorted(by_id)), FacilityParent.valid_from <= today,
               or_(FacilityParent.valid_until.is_(None), FacilityParent.valid_until > today)))
    for child_id, parent_id, parent_name in rows:
        # The parent's name, so a reader who may not read the parent still knows what it is.
        by_id[child_id]["partOf"] = reference("Organization", parent_id, parent_name)
