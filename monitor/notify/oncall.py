"""Who is on call for a role at a time: overrides, then the last layer that applies, else
everyone who holds the role (so a gap in a schedule still pages someone)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import chinese_calendar

from monitor.config.model import SiteConfig
from monitor.config.oncall import Layer, Schedule, Window


@dataclass(frozen=True)
class OnCall:
    role: str
    people: list[str]
    source: str


def calendar_known(day: dt.date) -> bool:
    """chinese-calendar has this year's holidays and working weekends."""
    try:
        chinese_calendar.is_workday(day)
    except NotImplementedError:
        return False
    return True


def is_workday(day: dt.date) -> bool:
    """Mainland China's calendar; past its data, Monday to Friday."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:
        return day.weekday() < 5


def _clock(text: str) -> dt.time:
    hours, minutes = text.split(":")
    return dt.time(int(hours), int(minutes))


def covers(layer: Window, local: dt.datetime) -> bool:
    """``local`` (the schedule's or site's time zone) falls in the window."""
    day = local.date()
    if layer.hours is not None:
        start, end = (_clock(x) for x in layer.hours.split("-"))
        now = local.time()
        if start <= end:
            if not start <= now < end:
                return False
        elif now >= start:
            pass
        elif now < end:
            day -= dt.timedelta(days=1)  # the small hours belong to the evening before
        else:
            return False
    if layer.days == "workdays":
        return is_workday(day)
    if layer.days == "restdays":
        return not is_workday(day)
    return True


def _turn(layer: Layer, local: dt.datetime) -> str:
    period = dt.timedelta(days=1 if layer.rotation == "daily" else 7)
    anchor = dt.datetime.combine(layer.start, _clock(layer.handover))
    n = (local.replace(tzinfo=None) - anchor) // period
    return layer.people[n % len(layer.people)]


def holder(schedule: Schedule, at: dt.datetime) -> tuple[str, str] | None:
    """(person, why) on call in ``schedule`` at ``at`` (aware), or None in a gap."""
    local = at.astimezone(ZoneInfo(schedule.timezone))
    naive = local.replace(tzinfo=None)
    for override in reversed(schedule.overrides):
        if override.start <= naive < override.end:
            return override.person, f"{schedule.name}: override"
    for layer in reversed(schedule.layers):
        if covers(layer, local):
            return _turn(layer, local), f"{schedule.name}: layer {layer.name}"
    return None


def on_call(cfg: SiteConfig, role: str, at: dt.datetime) -> OnCall:
    schedules = [s for s in cfg.schedules if s.role == role]
    for schedule in schedules:
        found = holder(schedule, at)
        if found is not None:
            return OnCall(role, [found[0]], found[1])
    everyone = [p.name for p in cfg.people if role in p.roles]
    why = "no schedule covers this time" if schedules else "no schedule for this role"
    return OnCall(role, everyone, f"{why}: everyone holding the role")


def gaps(schedule: Schedule, start: dt.datetime, days: int = 28,
         step: dt.timedelta = dt.timedelta(minutes=30)) -> list[tuple[dt.datetime, dt.datetime]]:
    """The periods (local time) within ``days`` from ``start`` when nobody is on call."""
    zone = ZoneInfo(schedule.timezone)
    t = start.astimezone(zone).replace(second=0, microsecond=0)
    t -= dt.timedelta(minutes=t.minute % 30)
    end = t + dt.timedelta(days=days)
    found: list[tuple[dt.datetime, dt.datetime]] = []
    while t < end:
        if holder(schedule, t) is None:
            if found and found[-1][1] == t:
                found[-1] = (found[-1][0], t + step)
            else:
                found.append((t, t + step))
        t += step
    return found
