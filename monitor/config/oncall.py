"""On-call schedules as configured: who holds a role when (rotations, layers, overrides)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from monitor.config.types import Strict

Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]+$", min_length=1, max_length=64)]
ClockTime = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$", description="HH:MM")]


def time_zone(value: str) -> str:
    """An IANA time zone name, checked."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise ValueError(f"unknown time zone {value!r}") from err
    return value


class Window(Strict):
    """Days of mainland China's calendar, and hours of those days."""

    days: Literal["all", "workdays", "restdays"] = Field(
        default="all", description="mainland China's calendar: holidays rest, working "
                                   "weekends work")
    hours: str | None = Field(default=None, pattern=r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):"
                                                    r"[0-5]\d$",
                              description="HH:MM-HH:MM of the day it covers (may pass midnight)")


class Layer(Window):
    """A rotation of people; a later layer wins where it applies (nights, holidays, ...)."""

    name: Name
    rotation: Literal["daily", "weekly"] = "weekly"
    handover: ClockTime = "09:00"
    start: dt.date = Field(description="the first person's first day")
    people: list[str] = Field(min_length=1)


class Override(Strict):
    """Someone takes over for a period (swap, leave), local time of the schedule."""

    person: str
    start: dt.datetime
    end: dt.datetime
    note: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> Override:
        if self.end <= self.start:
            raise ValueError("end must come after start")
        return self


class Schedule(Strict):
    name: Name
    role: str
    timezone: str = "Asia/Shanghai"
    layers: list[Layer] = Field(min_length=1)
    overrides: list[Override] = Field(default_factory=list)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return time_zone(value)
