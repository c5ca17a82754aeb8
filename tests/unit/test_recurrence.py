"""server.scheduling.recurrence: RRULE expansion in local time, DST, cancellations, moves."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from server.scheduling.recurrence import Change, InvalidRule, expand, parse_rule

TERM = "FREQ=WEEKLY;BYDAY=MO,WE;UNTIL=20261230T000000"
WIDE = (datetime(2026, 1, 1, tzinfo=UTC), datetime(2027, 6, 1, tzinfo=UTC))


def test_a_term_of_monday_and_wednesday_mornings_in_vietnam() -> None:
    occurrences = expand(TERM, datetime(2026, 9, 7, 7, 30), "Asia/Ho_Chi_Minh", timedelta(minutes=45), *WIDE)
    zone = ZoneInfo("Asia/Ho_Chi_Minh")
    local = [o.start.astimezone(zone) for o in occurrences]
    assert local[0] == datetime(2026, 9, 7, 7, 30, tzinfo=zone)
    assert {d.strftime("%a %H:%M") for d in local} == {"Mon 07:30", "Wed 07:30"}
    assert len(local) == 33  # 7 Sep – 28 Dec: 17 Mondays, 16 Wednesdays
    assert all(o.end - o.start == timedelta(minutes=45) for o in occurrences)


def test_local_time_is_kept_across_dst() -> None:
    occurrences = expand("FREQ=WEEKLY;COUNT=3", datetime(2026, 3, 22, 7, 30), "Europe/Berlin",
                         timedelta(minutes=30), *WIDE)
    assert [o.start.astimezone(ZoneInfo("Europe/Berlin")).strftime("%H:%M") for o in occurrences] == ["07:30"] * 3
    assert occurrences[1].start - occurrences[0].start == timedelta(days=7, hours=-1)


def test_nonexistent_local_times_are_skipped() -> None:
    occurrences = expand("FREQ=DAILY;COUNT=3", datetime(2026, 3, 28, 2, 30), "Europe/Berlin",
                         timedelta(minutes=30), *WIDE)
    assert [o.start.date().isoformat() for o in occurrences] == ["2026-03-28", "2026-03-30"]


def test_cancel_and_move_single_occurrences() -> None:
    first = expand(TERM, datetime(2026, 9, 7, 7, 30), "Asia/Ho_Chi_Minh", timedelta(minutes=45), *WIDE)
    cancelled, moved = first[1].original_start, first[2].original_start
    new_start = moved + timedelta(hours=3)
    changes = [Change(cancelled, cancelled=True), Change(moved, cancelled=False, new_start=new_start)]
    after = expand(TERM, datetime(2026, 9, 7, 7, 30), "Asia/Ho_Chi_Minh", timedelta(minutes=45), *WIDE, changes)
    by_original = {o.original_start: o for o in after}
    assert by_original[cancelled].cancelled
    assert by_original[moved].moved and by_original[moved].start == new_start
    assert by_original[moved].end == new_start + timedelta(minutes=45)


def test_a_session_moved_into_the_window_from_outside_is_listed() -> None:
    all_of_them = expand(TERM, datetime(2026, 9, 7, 7, 30), "Asia/Ho_Chi_Minh", timedelta(minutes=45), *WIDE)
    last = all_of_them[-1].original_start
    into = datetime(2026, 9, 8, 2, 0, tzinfo=UTC)
    window = (datetime(2026, 9, 8, tzinfo=UTC), datetime(2026, 9, 9, tzinfo=UTC))
    found = expand(TERM, datetime(2026, 9, 7, 7, 30), "Asia/Ho_Chi_Minh", timedelta(minutes=45), *window,
                   [Change(last, cancelled=False, new_start=into)])
    assert [o.start for o in found] == [into]


@pytest.mark.parametrize("rule", ["FREQ=WEEKLY", "FREQ=SOMETIMES;COUNT=2", "BYDAY=XX;COUNT=1", "garbage"])
def test_bad_or_endless_rules_are_refused(rule: str) -> None:
    with pytest.raises(InvalidRule):
        parse_rule(rule, datetime(2026, 9, 7, 7, 30))
