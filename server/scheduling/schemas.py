"""Request bodies of the scheduling API (validated before anything acts on them)."""

from __future__ import annotations

from datetime import date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from server.scheduling.models import ExceptionKind, ResourceKind


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


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

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value


class RuleIn(_Body):
    weekday: int = Field(ge=0, le=6, description="Monday 0 … Sunday 6")
    start: time
    end: time
    valid_from: date | None = None
    valid_until: date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> RuleIn:
        if self.end != time(0) and self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class ExceptionIn(_Body):
    kind: ExceptionKind
    starts_at: AwareDatetime
    ends_at: AwareDatetime
    reason: str = Field(default="", max_length=200)

    @model_validator(mode="after")
    def _ordered(self) -> ExceptionIn:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class AvailabilityIn(_Body):
    """Replaces the whole weekly availability of a resource (what an editor page saves)."""

    rules: list[RuleIn] = Field(max_length=100)
    exceptions: list[ExceptionIn] = Field(default_factory=list, max_length=500)


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
