"""The monthly alarm-system review as ISA-18.2 measures it: alarm rates per operator, floods,
the most frequent alarms, chattering, fleeting and stale alarms, shelving and the priority
split, each against its target (docs/alarm-review.md). Pure: rows of ``alarm_log`` and the
alarms' names in, figures out."""

from __future__ import annotations

import bisect
import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, NamedTuple
from zoneinfo import ZoneInfo

from monitor.alarms.facts import alarm_device
from monitor.alarms.health import SYSTEM_PREFIXES
from monitor.alarms.model import Alarm, AlarmDef
from monitor.config.model import SiteConfig

TEN_MINUTES, HOUR, DAY = 600.0, 3600.0, 86400.0
FLOOD_START, FLOOD_END = 10, 5
"""A flood starts when more than 10 alarms per operator come within 10 minutes, and ends
when fewer than 5 per operator remain in the last 10 minutes."""
BUSY_HOUR = 30
"""An hour with more than this many alarms per operator."""
CHATTER, CHATTER_WINDOW = 3, 60.0
"""Raised this many times within a minute: chattering."""
FLEETING = 10.0
"""Back to normal by itself within this many seconds: fleeting."""
STALE = DAY
"""Active for longer than this: stale."""
TOP, BAD_ACTOR = 10, 5.0
"""The most frequent alarms listed; one alarm over this percent of all is a bad actor."""
SYSTEM = (*SYSTEM_PREFIXES, "notify:")
"""Vigil's own alarms (its database, tasks, bus, sink, outbox, notifications): not counted."""
NOT_ANNUNCIATED = ("shelved", "suppressed")
"""States in which a raised alarm is kept but not shown to the operator."""
PRIORITY = {"critical": "high", "major": "medium", "minor": "low", "warning": "low",
            "info": "low"}
"""Vigil's severities as ISA-18.2's three priorities."""
MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")

State = Literal["passed", "manageable", "missed"]


class Row(NamedTuple):
    """One ``alarm_log`` entry."""

    seq: int
    alarm: str
    ts: float
    action: str
    state: str | None
    who: str | None
    note: str | None


@dataclass(frozen=True)
class AlarmInfo:
    """What people call an alarm: its message, its severity and its area's label."""

    label: str
    severity: str = ""
    area: str = ""


@dataclass(frozen=True)
class Period:
    """A calendar month in the site's time zone; ``until`` is its end, or now while it runs."""

    month: str
    timezone: str
    start: float
    end: float
    until: float

    @property
    def seconds(self) -> float:
        return self.until - self.start


@dataclass(frozen=True)
class Measure:
    """One ISA-18.2 figure and its target: ``value op target`` passes; a rate up to ``limit``
    (ISA's "maximum manageable") is manageable."""

    key: str
    value: float
    target: float
    op: Literal["<", "<=", ">="]
    unit: str
    limit: float | None = None
    state: State = field(init=False)

    def __post_init__(self) -> None:
        met = {"<": self.value < self.target, "<=": self.value <= self.target,
               ">=": self.value >= self.target}[self.op]
        state: State = "passed" if met else (
            "manageable" if self.limit is not None and self.value <= self.limit else "missed")
        object.__setattr__(self, "state", state)


@dataclass(frozen=True)
class Flood:
    start: float
    end: float
    count: int
    alarms: list[tuple[str, int]]
    """Label and raises in the flood, most first."""
    ongoing: bool
    """Still flooding at the end of the period."""


@dataclass(frozen=True)
class AlarmStats:
    """One alarm over the period."""

    alarm: str
    label: str
    area: str
    severity: str
    raised: int
    """Annunciated raises."""
    share: float
    """Percent of all annunciated raises."""
    bad_actor: bool
    quiet: int
    """Raised while shelved or suppressed (not annunciated)."""
    burst: int
    """Most raises within one minute."""
    chattering: bool
    fleeting: int
    """Raises back to normal by themselves within FLEETING seconds."""
    active: float
    """Seconds active within the period."""
    longest: float
    """The longest time active, counted from its raise (also one before the period)."""
    shelved: int
    stale: bool


@dataclass(frozen=True)
class Stale:
    alarm: str
    label: str
    area: str
    raised: float
    cleared: float | None
    """None: still active at the end of the period."""
    longest: float
    """How long it was active: until it cleared, or until the end of the period."""


@dataclass(frozen=True)
class Shelve:
    alarm: str
    label: str
    who: str
    since: float
    until: float | None
    """None: still shelved at the end of the period."""
    ended_by: str | None
    """Who unshelved it; ``system``: the shelving expired."""
    reason: str


@dataclass(frozen=True)
class PriorityShare:
    severity: str
    """Vigil's severity; empty when the alarm is no longer defined."""
    priority: str
    """ISA-18.2's: high, medium, low (empty: unknown)."""
    count: int
    share: float
    """Percent of the annunciated raises whose severity is known."""


@dataclass(frozen=True)
class Review:
    period: Period
    operators: int
    annunciated: int
    not_annunciated: int
    """Raises while shelved or suppressed."""
    system: int
    """Raises of Vigil's own alarms, left out."""
    peak_hour: float
    """Most alarms per operator in any hour."""
    measures: list[Measure]
    floods: list[Flood]
    alarms: list[AlarmStats]
    """Every alarm raised, active or shelved in the period, most raised first."""
    stale: list[Stale]
    shelves: list[Shelve]
    priorities: list[PriorityShare]

    @property
    def top(self) -> list[AlarmStats]:
        return [a for a in self.alarms[:TOP] if a.raised]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- the period ---------------------------------------------------------------------------------

def month_period(month: str | None, timezone: str, now: float) -> Period:
    """``YYYY-MM`` in the site's time zone; None: the previous calendar month. A month that
    has not begun is a ValueError."""
    tz = ZoneInfo(timezone)
    if month is None:
        today = datetime.fromtimestamp(now, tz)
        year, mon = (today.year, today.month - 1) if today.month > 1 else (today.year - 1, 12)
    else:
        found = MONTH.match(month)
        if found is None or int(found[1]) < 1970:
            raise ValueError(f"month {month!r}: give YYYY-MM, e.g. 2026-10")
        year, mon = int(found[1]), int(found[2])
    start = datetime(year, mon, 1, tzinfo=tz).timestamp()
    end = datetime(year + mon // 12, mon % 12 + 1, 1, tzinfo=tz).timestamp()
    name = f"{year:04d}-{mon:02d}"
    if start > now:
        raise ValueError(f"month {name} has not begun")
    return Period(name, timezone, start, end, min(end, now))


def alarm_infos(cfg: SiteConfig, defs: Mapping[str, AlarmDef],
                held: Mapping[str, Alarm]) -> dict[str, AlarmInfo]:
    """Each alarm's label (its definition's message), severity and area label."""
    areas = {a.name: a.label or a.name for a in cfg.areas}
    known = [*held.values(), *(d.new()
                               for d in defs.values())]  # definitions last: their words win
    infos = {}
    for alarm in known:
        dev = alarm_device(cfg, alarm)
        infos[alarm.id] = AlarmInfo(alarm.message, alarm.severity,
                                    areas.get(dev.area, dev.area) if dev else "")
    return infos


# -- following the log ------------------------------------------------------------------------

@dataclass
class _Track:
    """One alarm through the log."""

    raises: list[float] = field(default_factory=list)
    annunciated: list[float] = field(default_factory=list)
    active: list[tuple[float, float | None]] = field(default_factory=list)
    """(raised, ended or None)."""
    fleeting: int = 0
    shelves: list[tuple[float, str, str, float | None, str | None]] = field(default_factory=list)
    """(since, who, reason, until, ended by)."""
    since: float | None = None
    shelve: tuple[float, str, str] | None = None

    def end_shelve(self, ts: float, who: str | None) -> None:
        if self.shelve is not None:
            self.shelves.append((*self.shelve, ts, who))
            self.shelve = None

    def close(self) -> None:
        if self.since is not None:
            self.active.append((self.since, None))
        if self.shelve is not None:
            self.shelves.append((*self.shelve, None, None))


def _ends(row: Row) -> bool:
    """The alarm stops being active: it cleared, was retired, or (latched) was acknowledged."""
    return row.action in ("cleared", "retired") or (row.action == "acknowledged"
                                                     and row.state == "normal")


def _follow(rows: Iterable[Row], period: Period) -> dict[str, _Track]:
    tracks: dict[str, _Track] = {}
    for row in sorted(rows, key=lambda r: r.seq):
        if row.ts >= period.until or row.alarm.startswith(SYSTEM):
            continue
        t = tracks.setdefault(row.alarm, _Track())
        within = row.ts >= period.start
        if row.action == "raised":
            if t.since is None:
                t.since = row.ts
            if within:
                t.raises.append(row.ts)
                if row.state not in NOT_ANNUNCIATED:
                    t.annunciated.append(row.ts)
        elif _ends(row) and t.since is not None:
            if row.action == "cleared" and t.since >= period.start \
                    and row.ts - t.since < FLEETING:
                t.fleeting += 1
            t.active.append((t.since, row.ts))
            t.since = None
        if row.action in ("shelved", "unshelved", "retired"):
            t.end_shelve(row.ts, row.who)
        if row.action == "shelved":
            t.shelve = (row.ts, row.who or "", row.note or "")
    for t in tracks.values():
        t.close()
    return tracks


def _within(a: float, b: float | None, period: Period) -> float:
    """Seconds of [a, b) (b None: open) inside the period."""
    return max(0.0, min(period.until if b is None else b, period.until) - max(a, period.start))


def _overlaps(a: float, b: float | None, period: Period) -> bool:
    """[a, b) (b None: open) meets the period."""
    return a < period.until and (b is None or b > period.start)


def _most_within(times: Sequence[float], window: float) -> int:
    """The most of ``times`` (sorted) in any span shorter than ``window``."""
    most = first = 0
    for i, t in enumerate(times):
        while t - times[first] >= window:
            first += 1
        most = max(most, i - first + 1)
    return most


def _busy(times: Sequence[float], period: Period, width: float, over: int) -> float:
    """Percent of the period's ``width``-long spans (from its start) with more than ``over``."""
    spans = math.ceil(period.seconds / width)
    counts = Counter(int((t - period.start) // width) for t in times)
    return 100 * sum(1 for n in counts.values() if n > over) / spans if spans else 0.0


# -- floods -------------------------------------------------------------------------------------

def _floods(raises: list[tuple[float, str]], period: Period, operators: int) -> list[Flood]:
    """Sliding 10 minutes: more than FLOOD_START per operator starts a flood at the first
    of them; it ends the moment fewer than FLOOD_END per operator are left in the window."""
    times = [t for t, _ in raises]
    begin, end = FLOOD_START * operators, FLOOD_END * operators
    floods, first, i = [], 0, 0
    while i < len(times):
        while times[i] - times[first] >= TEN_MINUTES:
            first += 1
        if i - first + 1 <= begin:
            i += 1
            continue
        stop = next((t + TEN_MINUTES for t in times[first:] if _in_window(times, t + TEN_MINUTES)
                     < end), math.inf)
        ongoing = stop >= period.until
        stop = min(stop, period.until)
        last = bisect.bisect_left(times, stop)
        labels = Counter(label for _, label in raises[first:last])
        floods.append(Flood(times[first], stop, last - first,
                            sorted(labels.items(), key=lambda x: (-x[1], x[0])), ongoing))
        first = i = last
    return floods


def _in_window(times: Sequence[float], t: float) -> int:
    """How many of ``times`` fall in the 10 minutes up to ``t``: (t - 10 min, t]."""
    return bisect.bisect_right(times, t) - bisect.bisect_right(times, t - TEN_MINUTES)


# -- stale alarms -------------------------------------------------------------------------------

def _stale_span(raised: float, ended: float | None, period: Period) -> tuple[float, float]:
    """When in the period the alarm was stale (empty when start >= end)."""
    return (max(raised + STALE, period.start),
            min(period.until if ended is None else ended, period.until))


def _is_stale(raised: float, ended: float | None, period: Period) -> bool:
    start, end = _stale_span(raised, ended, period)
    return start < end


def _days(period: Period) -> list[tuple[float, float]]:
    """The period's days, midnight to midnight in its time zone."""
    tz = ZoneInfo(period.timezone)
    day = datetime.fromtimestamp(period.start, tz).date()
    bounds = []
    while (t := datetime(day.year, day.month, day.day, tzinfo=tz).timestamp()) < period.until:
        bounds.append(t)
        day += timedelta(days=1)
    return list(zip(bounds, [*bounds[1:], period.until], strict=True))


def _most_stale_a_day(spans: list[tuple[float, float]], period: Period) -> int:
    return max((sum(1 for a, b in spans if a < day_end and b > day_start)
                for day_start, day_end in _days(period)), default=0)


# -- the review ---------------------------------------------------------------------------------

def review_alarms(rows: Iterable[Row], period: Period, infos: Mapping[str, AlarmInfo],
                  operators: int = 1) -> Review:
    """The review of ``period``. ``rows``: its log entries, and before them at least each
    alarm's last raise or end and its last shelve or unshelve (to know what was active or
    shelved when the period began)."""
    rows = list(rows)
    tracks = _follow(rows, period)
    system = sum(1 for r in rows if r.action == "raised" and r.alarm.startswith(SYSTEM)
                 and period.start <= r.ts < period.until)
    info = {a: infos.get(a) or AlarmInfo(a) for a in tracks}
    raises = sorted((t, info[a].label) for a, tr in tracks.items() for t in tr.annunciated)
    total = len(raises)
    stats = sorted((_stats(a, tr, info[a], total, period) for a, tr in tracks.items()),
                   key=lambda s: (-s.raised, s.label))
    stats = [s for s in stats if s.raised or s.quiet or s.active or s.shelved]
    stale = [Stale(a, info[a].label, info[a].area, r, e, (period.until if e is None else e) - r)
             for a, tr in tracks.items() for r, e in tr.active if _is_stale(r, e, period)]
    shelves = sorted((Shelve(a, info[a].label, who, since, until, by, reason)
                      for a, tr in tracks.items() for since, who, reason, until, by in tr.shelves
                      if _overlaps(since, until, period)),
                     key=lambda s: s.since)
    floods = _floods(raises, period, operators)
    priorities = _priorities(Counter(info[a].severity for a, tr in tracks.items()
                                     for _ in tr.annunciated))
    times = [t for t, _ in raises]
    hours = period.seconds / HOUR
    per_op = (total / operators / hours) if hours else 0.0
    top_share = 100 * sum(s.raised for s in stats[:TOP]) / total if total else 0.0
    shares = {level: sum(p.share for p in priorities if p.priority == level)
              for level in ("high", "medium", "low")}
    measures = [
        Measure("rate_hour", per_op, 6, "<=", "per_hour", 12),
        Measure("rate_day", per_op * 24, 150, "<=", "per_day", 300),
        Measure("rate_10min", per_op / 6, 1, "<=", "per_10min", 2),
        Measure("peak_10min", _most_within(times, TEN_MINUTES) / operators, 10, "<=",
                "per_10min"),
        Measure("busy_hours", _busy(times, period, HOUR, BUSY_HOUR * operators), 1, "<",
                "percent"),
        Measure("busy_10min", _busy(times, period, TEN_MINUTES, FLOOD_START * operators), 1,
                "<", "percent"),
        Measure("flood_time", 100 * sum(f.end - f.start for f in floods) / period.seconds
                if period.seconds else 0.0, 1, "<", "percent"),
        Measure("top10_share", top_share, 1, "<=", "percent", 5),
        Measure("chattering", sum(s.chattering for s in stats), 0, "<=", "alarms"),
        Measure("fleeting", sum(bool(s.fleeting) and not s.chattering for s in stats), 0, "<=",
                "alarms"),
        Measure("stale", _most_stale_a_day([_stale_span(s.raised, s.cleared, period)
                                            for s in stale], period), 5, "<", "alarms"),
        Measure("priority_high", shares["high"], 5, "<=", "percent"),
        Measure("priority_medium", shares["medium"], 15, "<=", "percent"),
        Measure("priority_low", shares["low"] if total else 100.0, 80, ">=", "percent"),
        Measure("unexplained_shelves", sum(1 for s in shelves if not s.reason.strip()), 0, "<=",
                "shelves"),
    ]
    return Review(period, operators, total, sum(len(tr.raises) - len(tr.annunciated)
                                                for tr in tracks.values()), system,
                  _most_within(times, HOUR) / operators, measures, floods, stats,
                  sorted(stale, key=lambda s: s.raised), shelves, priorities)


def _stats(alarm: str, tr: _Track, info: AlarmInfo, total: int, period: Period) -> AlarmStats:
    share = 100 * len(tr.annunciated) / total if total else 0.0
    burst = _most_within(tr.raises, CHATTER_WINDOW)
    longest = max(((period.until if e is None else e) - r for r, e in tr.active), default=0.0)
    return AlarmStats(
        alarm, info.label, info.area, info.severity, len(tr.annunciated), share,
        share > BAD_ACTOR, len(tr.raises) - len(tr.annunciated), burst, burst >= CHATTER,
        tr.fleeting, sum(_within(r, e, period) for r, e in tr.active), longest,
        sum(1 for since, _, _, until, _ in tr.shelves if _overlaps(since, until, period)),
        any(_is_stale(r, e, period) for r, e in tr.active))


def _priorities(counts: Counter[str]) -> list[PriorityShare]:
    known = sum(n for sev, n in counts.items() if sev in PRIORITY)
    order = [*PRIORITY, *sorted(s for s in counts if s not in PRIORITY)]
    return [PriorityShare(sev, PRIORITY.get(sev, ""), counts[sev],
                          100 * counts[sev] / known if known and sev in PRIORITY else 0.0)
            for sev in order if sev in PRIORITY or counts[sev]]
