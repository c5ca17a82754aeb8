"""server.scheduling.slots: pure slot computation, including DST and capacity."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from server.scheduling.slots import Period, Policy, Window, free_slots, local_to_utc

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def local_times(slots: list, zone: str) -> list[str]:  # type: ignore[type-arg]
    return [s.start.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M") for s in slots]


def test_weekly_window_in_vietnam_becomes_utc_slots() -> None:
    policy = Policy("Asia/Ho_Chi_Minh", slot_minutes=30)
    slots = free_slots([Window(0, time(7, 30), time(9, 0))], [], [], [], policy, now=NOW,
                       start=datetime(2026, 3, 2, tzinfo=UTC) - timedelta(hours=7),
                       end=datetime(2026, 3, 3, tzinfo=UTC))
    assert [s.start for s in slots] == [datetime(2026, 3, 2, 0, 30, tzinfo=UTC), datetime(2026, 3, 2, 1, 0, tzinfo=UTC),
                                        datetime(2026, 3, 2, 1, 30, tzinfo=UTC)]


def test_spring_forward_gap_has_no_slots_and_no_duplicates() -> None:
    policy = Policy("Europe/Berlin", slot_minutes=30)
    slots = free_slots([Window(6, time(1, 0), time(4, 0))], [], [], [], policy, now=NOW,
                       start=datetime(2026, 3, 28, tzinfo=UTC), end=datetime(2026, 3, 30, tzinfo=UTC))
    assert local_times(slots, "Europe/Berlin") == ["2026-03-29 01:00", "2026-03-29 01:30", "2026-03-29 03:00",
                                                   "2026-03-29 03:30"]


def test_fall_back_hour_is_counted_once_as_real_time() -> None:
    policy = Policy("Europe/Berlin", slot_minutes=60)
    slots = free_slots([Window(6, time(1, 0), time(4, 0))], [], [], [], policy, now=datetime(2026, 10, 1, tzinfo=UTC),
                       start=datetime(2026, 10, 24, tzinfo=UTC), end=datetime(2026, 10, 26, tzinfo=UTC))
    # 01:00 CEST to 04:00 CET is four real hours; 02:00 occurs twice and both are real slots.
    assert [s.start for s in slots] == [datetime(2026, 10, 24, 23, tzinfo=UTC) + timedelta(hours=h) for h in range(4)]


def test_local_to_utc_refuses_nonexistent_times() -> None:
    assert local_to_utc(date(2026, 3, 29), time(2, 30), ZoneInfo("Europe/Berlin")) is None
    assert local_to_utc(date(2026, 3, 29), time(3, 30), ZoneInfo("Europe/Berlin")) == datetime(2026, 3, 29, 1, 30,
                                                                                                tzinfo=UTC)


def test_buffer_notice_horizon_and_closures() -> None:
    policy = Policy("UTC", slot_minutes=20, buffer_minutes=10, min_notice_minutes=60, horizon_days=1)
    now = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
    closed = [Period(datetime(2026, 3, 2, 10, 0, tzinfo=UTC), datetime(2026, 3, 2, 10, 30, tzinfo=UTC))]
    slots = free_slots([Window(d, time(8), time(12)) for d in range(7)], closed, [], [], policy, now=now,
                       start=now, end=now + timedelta(days=3))
    starts = [s.start.strftime("%d %H:%M") for s in slots]
    assert starts[:4] == ["02 09:00", "02 09:30", "02 10:30", "02 11:00"]  # notice: nothing before 09:00
    assert starts[-1] == "03 08:00"  # horizon: one day from now
    assert all(s.end - s.start == timedelta(minutes=20) for s in slots)


def test_extra_opening_adds_slots() -> None:
    policy = Policy("UTC", slot_minutes=30)
    opened = [Period(datetime(2026, 3, 7, 8, tzinfo=UTC), datetime(2026, 3, 7, 9, tzinfo=UTC))]
    slots = free_slots([], [], opened, [], policy, now=NOW, start=NOW, end=NOW + timedelta(days=10))
    assert [s.start.strftime("%d %H:%M") for s in slots] == ["07 08:00", "07 08:30"]


def test_capacity_counts_bookings() -> None:
    policy = Policy("UTC", slot_minutes=60, capacity=3)
    start = datetime(2026, 3, 2, 8, tzinfo=UTC)
    windows = [Window(0, time(8), time(10))]
    slots = free_slots(windows, [], [], [start, start], policy, now=NOW, start=NOW, end=NOW + timedelta(days=2))
    assert [(s.free, s.booked) for s in slots] == [(1, 2), (3, 0)]
    full = free_slots(windows, [], [], [start] * 3, policy, now=NOW, start=NOW, end=NOW + timedelta(days=2))
    assert [s.start for s in full] == [start + timedelta(hours=1)]
    shown = free_slots(windows, [], [], [start] * 3, policy, now=NOW, start=NOW, end=NOW + timedelta(days=2),
                       include_full=True)
    assert [s.free for s in shown] == [0, 3]


def test_window_validity_period() -> None:
    policy = Policy("UTC", slot_minutes=60)
    window = Window(0, time(8), time(9), valid_from=date(2026, 3, 9), valid_until=date(2026, 3, 16))
    slots = free_slots([window], [], [], [], policy, now=NOW, start=NOW, end=NOW + timedelta(days=30))
    assert [s.start.date() for s in slots] == [date(2026, 3, 9), date(2026, 3, 16)]


def test_slot_at_agrees_with_the_full_listing() -> None:
    """Booking checks one instant with slot_at; the listing computes every slot. They must agree."""
    import random

    from server.scheduling.slots import slot_at

    rng = random.Random(7)
    for zone in ("Asia/Ho_Chi_Minh", "Europe/Berlin", "America/New_York"):
        for _ in range(20):
            policy = Policy(zone, slot_minutes=rng.choice([10, 15, 20, 30]), buffer_minutes=rng.choice([0, 5, 10]),
                            min_notice_minutes=rng.choice([0, 120]), horizon_days=20)
            windows = [Window(rng.randrange(7), time(rng.randrange(0, 12), rng.choice([0, 30])),
                              time(rng.randrange(13, 24), rng.choice([0, 30]))) for _ in range(3)]
            now = datetime(2026, 3, 20, rng.randrange(24), tzinfo=UTC)
            closed = [Period(now + timedelta(days=2), now + timedelta(days=2, hours=5))]
            listed = {s.start for s in free_slots(windows, closed, [], [], policy, now=now, start=now,
                                                  end=now + timedelta(days=25), include_full=True)}
            for minute in range(0, 25 * 24 * 60, 5):
                instant = now.replace(minute=0) + timedelta(minutes=minute)
                assert (slot_at(instant, windows, closed, [], policy, now=now) is not None) == (instant in listed), \
                    (zone, policy, windows, instant)
