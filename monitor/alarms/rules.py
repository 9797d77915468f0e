"""Rules turn readings into alarm conditions: threshold, state, rate of change, staleness."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping

from monitor.alarms.model import AlarmDef, Conditions
from monitor.config.model import (
    PointBase,
    RateRule,
    Rule,
    Severity,
    StaleRule,
    StateRule,
    ThresholdRule,
)
from monitor.core.model import Quality, Reading
from monitor.words.labels import LEVEL, boolean_meaning, label, table
from monitor.words.report import Language
from monitor.words.text import display, quantity, spoken_duration

LEVELS = ("high_high", "high", "low", "low_low")


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def point_limits(rules: Iterable[Rule]) -> dict[str, dict[str, float]]:
    """Each point's threshold limits, by level (``high``, ``low``, ...), for charts."""
    limits: dict[str, dict[str, float]] = {}
    for rule in rules:
        if isinstance(rule, ThresholdRule):
            found = limits.setdefault(rule.point, {})
            found.update({lvl: getattr(rule, lvl) for lvl in LEVELS
                          if getattr(rule, lvl) is not None})
    return limits


Situations = Callable[[Rule, str, Severity], str | None]
"""The situation a rule's alarm makes: (rule, threshold level or "", severity)."""


class _Evaluator:
    def __init__(self, rule: Rule, alarms: Conditions, point: PointBase, language: Language,
                 situation: Situations):
        self.rule, self.alarms, self.point, self.language = rule, alarms, point, language
        self.label, self.situation = point.label, situation
        self.alarm_ids: list[str] = []

    def _define(self, alarm_id: str, severity: Severity, message: str, level: str = "") -> None:
        r = self.rule
        self.alarm_ids.append(alarm_id)
        self.alarms.define(AlarmDef(alarm_id, severity, message, r.point, r.on_delay, r.off_delay,
                                    advice=r.advice, situation=self.situation(r, level, severity)))

    def on_reading(self, reading: Reading) -> None:
        raise NotImplementedError

    def tick(self, now: float) -> None:
        """Time-driven rules override this."""


class _Threshold(_Evaluator):
    rule: ThresholdRule

    def __init__(self, rule: ThresholdRule, alarms: Conditions, point: PointBase,
                 language: Language, situation: Situations):
        super().__init__(rule, alarms, point, language, situation)
        self.levels = [(lvl, getattr(rule, lvl)) for lvl in LEVELS
                       if getattr(rule, lvl) is not None]
        for lvl, limit in self.levels:
            sev = rule.severity_extreme if lvl in ("high_high", "low_low") else rule.severity
            self._define(f"{rule.name}.{lvl}", sev, self.message(lvl, limit), lvl)

    def message(self, level: str, limit: float, value: float | None = None) -> str:
        """``办公区湿度偏低 (29.0 %RH, 限值 30)``: a direction word always (a rule's message
        that ends in one keeps its own), the value once there is one (English: ``Office
        humidity low (29.0 %RH, limit 30)``)."""
        lang, unit, zh = self.language, self.point.unit, self.language == "zh-CN"
        name = self.rule.message or self.label
        said = name if name.endswith(tuple(table(LEVEL, lang).values())) \
            else f"{name}{'' if zh else ' '}{label(LEVEL, level, lang)}"
        now = "" if value is None else f"{quantity(value, unit, lang)}, "
        limit_text = spoken_duration(limit, lang) if unit == "s" else f"{limit:g}"
        return f"{said} ({now}{'限值' if zh else 'limit'} {limit_text})"

    def on_reading(self, reading: Reading) -> None:
        v = _number(reading.value)
        if v is None or reading.quality is not Quality.GOOD:
            return
        band = self.rule.deadband
        for lvl, limit in self.levels:
            alarm_id = f"{self.rule.name}.{lvl}"
            was = self.alarms.holds(alarm_id)
            if lvl.startswith("high"):
                cond = v >= limit - band if was else v > limit
            else:
                cond = v <= limit + band if was else v < limit
            self.alarms.set_condition(alarm_id, cond, v, reading.ts,
                                      self.message(lvl, limit, v) if cond else None)


class _State(_Evaluator):
    rule: StateRule

    def __init__(self, rule: StateRule, alarms: Conditions, point: PointBase,
                 language: Language, situation: Situations):
        super().__init__(rule, alarms, point, language, situation)
        key = rule.point.partition(".")[2]
        shown = ", ".join(str(display(v, point.unit, language, boolean_meaning(key)))
                          for v in rule.equals)
        self._define(rule.name, rule.severity, rule.message or f"{self.label}: {shown}")

    def on_reading(self, reading: Reading) -> None:
        if reading.quality is Quality.GOOD:
            self.alarms.set_condition(self.rule.name, reading.value in self.rule.equals,
                                      reading.value, reading.ts)


class _Rate(_Evaluator):
    rule: RateRule

    def __init__(self, rule: RateRule, alarms: Conditions, point: PointBase,
                 language: Language, situation: Situations):
        super().__init__(rule, alarms, point, language, situation)
        self.samples: deque[tuple[float, float]] = deque()
        self._define(rule.name, rule.severity, rule.message or (
            f"{self.label} changing too fast (> {rule.max_per_minute:g}/min)"
            if language == "en" else f"{self.label} 变化过快 (> {rule.max_per_minute:g}/分钟)"))

    def on_reading(self, reading: Reading) -> None:
        v = _number(reading.value)
        if v is None or reading.quality is not Quality.GOOD:
            return
        self.samples.append((reading.ts, v))
        while self.samples and self.samples[0][0] < reading.ts - self.rule.window:
            self.samples.popleft()
        t0, v0 = self.samples[0]
        if reading.ts - t0 < self.rule.window / 2:  # too short a span: noise, not a trend
            return
        rate = (v - v0) / (reading.ts - t0) * 60.0
        self.alarms.set_condition(self.rule.name, abs(rate) > self.rule.max_per_minute,
                                  round(rate, 3), reading.ts)


class _Stale(_Evaluator):
    rule: StaleRule

    def __init__(self, rule: StaleRule, alarms: Conditions, point: PointBase,
                 language: Language, situation: Situations):
        super().__init__(rule, alarms, point, language, situation)
        self.last_good = time.time()  # a fresh start gives the device max_age to answer
        self._define(rule.name, rule.severity, rule.message or (
            f"{self.label}: no valid data for over {spoken_duration(rule.max_age, 'en')}"
            if language == "en"
            else f"{self.label} 超过 {spoken_duration(rule.max_age)}没有有效数据"))

    def on_reading(self, reading: Reading) -> None:
        if reading.quality is Quality.GOOD:
            self.last_good = reading.ts
            self.alarms.set_condition(self.rule.name, False, None, reading.ts)

    def tick(self, now: float) -> None:
        age = now - self.last_good
        if age > self.rule.max_age:
            self.alarms.set_condition(self.rule.name, True, round(age, 1), now)


_KINDS: dict[type, type[_Evaluator]] = {ThresholdRule: _Threshold, StateRule: _State,
                                        RateRule: _Rate, StaleRule: _Stale}


class RuleEngine:
    """Routes each reading to the rules that watch its point."""

    def __init__(self, rules: Iterable[Rule], alarms: Conditions,
                 points: Mapping[str, PointBase] | None = None, language: Language = "zh-CN",
                 situation: Situations = lambda rule, level, severity: None):
        """``points``: what people call a point and its unit (``DEVICE.KEY`` -> point);
        ``language``: the site's, that the messages are said in; ``situation``: the
        situation each alarm makes."""
        self.by_point: dict[str, list[_Evaluator]] = {}
        self.timed: list[_Evaluator] = []
        self.alarm_ids: list[str] = []
        """The alarms these rules define."""
        for rule in rules:
            if not rule.enabled:
                continue
            point = (points or {}).get(rule.point) \
                or PointBase.model_construct(key=rule.point, label=rule.point, unit="")
            ev = _KINDS[type(rule)](rule, alarms, point, language,  # type: ignore[arg-type]
                                    situation)
            self.alarm_ids += ev.alarm_ids
            self.by_point.setdefault(rule.point, []).append(ev)
            if isinstance(rule, StaleRule):
                self.timed.append(ev)

    def on_readings(self, readings: Iterable[Reading]) -> None:
        by_point = self.by_point
        for r in readings:
            evs = by_point.get(r.point)
            if evs:
                for ev in evs:
                    ev.on_reading(r)

    def tick(self, now: float) -> None:
        for ev in self.timed:
            ev.tick(now)
