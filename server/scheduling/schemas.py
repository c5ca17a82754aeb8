"""Request bodies of the scheduling API (validated before anything acts on them)."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from server.scheduling.models import ExceptionKind, ResourceKind


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


def known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise PydanticCustomError("unknown_zone", "unknown time zone {zone!r}", {"zone": value}) from None
    return value


class ResourceIn(_Body):
    kind: ResourceKind
    name: str = Field(min_length=1, max_length=200)
    user_id: str | None = Field(default=None, max_length=36)
    timezone: str = "Asia/Ho_Chi_Minh"
    slot_minutes: int = Field(default=15, ge=5, le=480)
    buffer_minutes: int = Field(default=0, ge=0, le=240)
    min_notice_minutes: int = Field(default=60, ge=0, le=60 * 24 * 30)
    horizon_days: int = Field(default=30, ge=1, le=366)
    capacity: int = Field(default=1, ge=1, le=500)

    _known_zone = field_validator("timezone")(known_zone)


class ResourcePatchIn(_Body):
    """Changes to a resource's settings: only the fields given change; none may be null.

    The limits are those of ResourceIn. Existing bookings keep their times whatever changes."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    timezone: str | None = None
    slot_minutes: int | None = Field(default=None, ge=5, le=480)
    buffer_minutes: int | None = Field(default=None, ge=0, le=240)
    min_notice_minutes: int | None = Field(default=None, ge=0, le=60 * 24 * 30)
    horizon_days: int | None = Field(default=None, ge=1, le=366)
    capacity: int | None = Field(default=None, ge=1, le=500)
    active: bool | None = None

    @field_validator("*", mode="before")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise PydanticCustomError("not_null", "may not be null; leave the field out to keep it")
        return value

    @field_validator("name")
    @classmethod
    def _stripped(cls, value: str) -> str:
        if not value.strip():
            raise PydanticCustomError("required", "may not be empty")
        return value.strip()

    _known_zone = field_validator("timezone")(known_zone)

    def changes(self) -> dict[str, object]:
        return self.model_dump(exclude_unset=True)


class RuleIn(_Body):
    weekday: int = Field(ge=0, le=6, description="Monday 0 … Sunday 6")
    start: time
    end: time
    valid_from: date | None = None
    valid_until: date | None = None

    @field_validator("end")
    @classmethod
    def _ordered(cls, end: time, info: ValidationInfo) -> time:
        # On the field, not the model, so that the error names "end" (the editor marks that input).
        start = info.data.get("start")
        if start is not None and end != time(0) and end <= start:
            raise PydanticCustomError("end_before_start", "end must be after start")
        return end

    @field_validator("valid_until")
    @classmethod
    def _period(cls, until: date | None, info: ValidationInfo) -> date | None:
        since = info.data.get("valid_from")
        if until is not None and since is not None and until < since:
            raise PydanticCustomError("end_before_start", "valid_until must not be before valid_from")
        return until


class ExceptionIn(_Body):
    kind: ExceptionKind
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    reason: str = Field(default="", max_length=200)

    @field_validator("ends_at")
    @classmethod
    def _ordered(cls, ends_at: datetime, info: ValidationInfo) -> datetime:
        starts_at = info.data.get("starts_at")
        if starts_at is not None and ends_at <= starts_at:
            raise PydanticCustomError("end_before_start", "ends_at must be after starts_at")
        return ends_at


class AvailabilityIn(_Body):
    """Replaces the whole weekly availability of a resource (what an editor page saves)."""

    rules: list[RuleIn] = Field(max_length=100)
    exceptions: list[ExceptionIn] = Field(default_factory=list, max_length=500)


def overlapping_rules(rules: list[tuple[int, RuleIn]]) -> list[int]:
    """Indexes of the ranges that overlap an earlier range of the same weekday (and period of validity):
    the grid of each would put slots across the other's. Each is named, not only the first."""
    def minutes(value: time, end: bool = False) -> int:
        return 24 * 60 if end and value == time(0) else value.hour * 60 + value.minute

    clashes = []
    for position, (index, rule) in enumerate(rules):
        for _, other in rules[:position]:
            same_days = (other.weekday, other.valid_from, other.valid_until) == \
                (rule.weekday, rule.valid_from, rule.valid_until)
            if same_days and minutes(rule.start) < minutes(other.end, True) and \
                    minutes(other.start) < minutes(rule.end, True):
                clashes.append(index)
                break
    return clashes


class BookingIn(_Body):
    start: AwareDatetime
    subject_user_id: str | None = Field(default=None, max_length=36)
    note: str = Field(default="", max_length=2000)


class CancelIn(_Body):
    reason: str = Field(default="", max_length=200)


class RescheduleIn(_Body):
    start: AwareDatetime


def utc(value: datetime) -> datetime:
    from datetime import UTC

    return value.astimezone(UTC)
