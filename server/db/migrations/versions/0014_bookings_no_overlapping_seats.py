"""bookings: no two active bookings of one resource hold one seat at overlapping times (PostgreSQL)

The unique index (resource, start, seat) only stops bookings that *start* together. After a resource's
slot length, buffer, zone or hours change, an old booking can overlap a slot of the new grid that starts
at another time; this exclusion constraint makes the database refuse a second booking of the same seat
over any overlap, whatever the start. SQLite has no exclusion constraints: there the booking path checks
overlaps while it holds SQLite's single write lock (server/scheduling/service.py, claim_seat).

Bookings that already overlap on one seat (made through the gap this closes) are given another seat first
(the lowest one free over their time, possibly beyond the capacity): nobody's booking is cancelled.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-26 17:00:00
"""
import logging
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from itertools import count

import sqlalchemy as sa
from alembic import op

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONSTRAINT = 'ex_bookings_active_seat'
log = logging.getLogger('alembic.runtime.migration')

# Resources with an active booking that overlaps an earlier active booking of the same seat.
CLASHING_RESOURCES = """SELECT DISTINCT resource_id FROM (
    SELECT resource_id, starts_at, max(ends_at) OVER (
        PARTITION BY resource_id, seat ORDER BY starts_at, id
        ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS earlier_end
    FROM bookings WHERE status = 'booked') AS ordered
WHERE earlier_end > starts_at"""


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != 'postgresql':
        return
    # btree_gist gives GiST the = operator on text and integer columns (a trusted extension).
    op.execute('CREATE EXTENSION IF NOT EXISTS btree_gist')
    moved = sum(_reseat(bind, row[0]) for row in bind.execute(sa.text(CLASHING_RESOURCES)).all())
    if moved:
        log.warning('bookings: %d overlapping active bookings were given another seat', moved)
    op.execute(f"""ALTER TABLE bookings ADD CONSTRAINT {CONSTRAINT} EXCLUDE USING gist
        (tstzrange(starts_at, ends_at) WITH &&, resource_id WITH =, seat WITH =) WHERE (status = 'booked')""")


def _reseat(bind: sa.Connection, resource_id: str) -> int:
    """Give each active booking of the resource that overlaps an earlier one on its seat the lowest
    seat free over its time (in order of start: the earlier keeps its seat). Returns how many moved."""
    rows = bind.execute(sa.text(
        "SELECT id, starts_at, ends_at, seat FROM bookings WHERE resource_id = :r AND status = 'booked' "
        "ORDER BY starts_at, created_at, id"), {'r': resource_id}).all()
    # Every seat ever seen at a start, so that a new seat never collides with the unique index.
    at_start: dict[datetime, set[int]] = defaultdict(set)
    for _, start, _, seat in rows:
        at_start[start].add(seat)
    running: list[tuple[datetime, int]] = []  # (end, seat) of the bookings placed so far still going on
    moved = 0
    for booking_id, start, end, seat in rows:
        running = [(e, s) for e, s in running if e > start]
        used = {s for _, s in running}
        if seat in used:
            seat = next(n for n in count() if n not in used | at_start[start])
            at_start[start].add(seat)
            bind.execute(sa.text('UPDATE bookings SET seat = :s WHERE id = :i'), {'s': seat, 'i': booking_id})
            moved += 1
        running.append((end, seat))
    return moved


def downgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute(f'ALTER TABLE bookings DROP CONSTRAINT IF EXISTS {CONSTRAINT}')
