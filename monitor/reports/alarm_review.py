"""The alarm-system review for management: HTML (``templates/alarm_review.html.j2`` on the
reports' base page), CSV of the per-alarm table (UTF-8 with a BOM) and PDF, in zh-CN or
English; plain text lines of the measures for the command line."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from monitor.alarms.model import SEVERITY_TEXT
from monitor.alarms.review import FLEETING, AlarmStats, Measure, Review, Shelve
from monitor.reports.documents import Format, csv_bytes, html_or_pdf
from monitor.words.report import Language
from monitor.words.text import spoken_duration

_WORDS: dict[str, tuple[str, str]] = {
    "title": ("告警系统月度评估", "Alarm system review"),
    "period": ("统计期间", "Period"),
    "up_to": ("截至 {t}", "up to {t}"),
    "timezone": ("时区", "Time zone"),
    "operators": ("值班员人数", "Operators"),
    "generated": ("生成时间", "Generated"),
    "annunciated": ("报警次数", "Alarms annunciated"),
    "peak_hour": ("任意 1 小时内最多 (每名值班员)", "Most in any hour (per operator)"),
    "not_annunciated": ("搁置或抑制期间产生 (未提示, 不计入)",
                        "Raised while shelved or suppressed (not annunciated, not counted)"),
    "system": ("Vigil 自身故障告警 (不计入)", "Vigil's own fault alarms (not counted)"),
    "measures": ("ISA-18.2 指标", "ISA-18.2 measures"),
    "measure": ("指标", "Measure"),
    "value": ("本期", "Value"),
    "target": ("目标", "Target"),
    "result": ("结果", "Result"),
    "passed": ("达标", "met"),
    "manageable": ("尚可管理", "manageable"),
    "missed": ("未达标", "missed"),
    "at_most": ("最多 {n}", "at most {n}"),
    "m.rate_hour": ("平均每小时告警 (每名值班员)", "Alarms per hour per operator"),
    "m.rate_day": ("平均每天告警 (每名值班员)", "Alarms per day per operator"),
    "m.rate_10min": ("平均每 10 分钟告警 (每名值班员)", "Alarms per 10 minutes per operator"),
    "m.peak_10min": ("任意 10 分钟内最多告警 (每名值班员)",
                     "Most alarms in any 10 minutes per operator"),
    "m.busy_hours": ("超过 30 个告警的小时占比", "Hours with more than 30 alarms"),
    "m.busy_10min": ("超过 10 个告警的 10 分钟时段占比",
                     "10-minute periods with more than 10 alarms"),
    "m.flood_time": ("处于告警泛滥的时间占比", "Time in flood"),
    "m.top10_share": ("最频繁的 10 个告警占全部告警", "Share of the ten most frequent alarms"),
    "m.chattering": ("抖动告警 (1 分钟内 3 次以上)", "Chattering alarms (3 or more in a minute)"),
    "m.fleeting": (f"瞬时告警 ({spoken_duration(FLEETING)}内自行恢复)",
                   f"Fleeting alarms (clear by themselves within "
                   f"{spoken_duration(FLEETING, 'en')})"),
    "m.stale": ("单日最多的长时告警 (持续超过 24 小时)",
                "Most stale alarms on one day (active over 24 h)"),
    "m.priority_high": ("高优先级 (紧急) 占比", "High priority (critical) share"),
    "m.priority_medium": ("中优先级 (重要) 占比", "Medium priority (major) share"),
    "m.priority_low": ("低优先级 (次要、警告、提示) 占比",
                       "Low priority (minor, warning, info) share"),
    "m.unexplained_shelves": ("未说明原因的搁置", "Shelves without a reason"),
    "u.per_hour": ("{n} 次/小时", "{n} /h"),
    "u.per_day": ("{n} 次/天", "{n} /day"),
    "u.per_10min": ("{n} 次/10 分钟", "{n} /10 min"),
    "u.percent": ("{n}%", "{n}%"),
    "u.alarms": ("{n} 个", "{n}"),
    "u.shelves": ("{n} 次", "{n}"),
    "floods": ("告警泛滥", "Alarm floods"),
    "flood_rule": ("每名值班员 10 分钟内超过 10 个告警即为泛滥, "
                   "最近 10 分钟内降到 5 个以下为结束。",
                   "A flood starts when more than 10 alarms per operator come within 10 minutes "
                   "and ends when fewer than 5 per operator remain in the last 10 minutes."),
    "no_floods": ("本期没有告警泛滥。", "No floods in this period."),
    "start": ("开始", "Start"),
    "end": ("结束", "End"),
    "duration": ("持续", "Duration"),
    "count": ("次数", "Alarms"),
    "main_alarms": ("主要告警", "Main alarms"),
    "ongoing": ("期末仍在泛滥", "still flooding at the end"),
    "top": ("最频繁的十个告警", "The ten most frequent alarms"),
    "top_rule": ("单个告警超过全部告警的 5% 即为频繁告警, 应优先整改。",
                 "An alarm over 5% of all alarms is a bad actor: fix it first."),
    "rank": ("序号", "#"),
    "alarm": ("告警", "Alarm"),
    "area": ("区域", "Area"),
    "priority": ("优先级", "Priority"),
    "share": ("占比", "Share"),
    "bad_actor": ("频繁告警", "bad actor"),
    "no_alarms": ("本期没有告警。", "No alarms in this period."),
    "chatter": ("抖动与瞬时告警", "Chattering and fleeting alarms"),
    "burst": ("1 分钟内最多", "Most in a minute"),
    "chattering": ("抖动", "Chattering"),
    "fleeting": ("瞬时次数", "Fleeting"),
    "no_chatter": ("没有抖动或瞬时告警。", "No chattering or fleeting alarms."),
    "stale": ("长时告警 (持续超过 24 小时)", "Stale alarms (active over 24 h)"),
    "raised": ("产生", "Raised"),
    "cleared": ("恢复", "Cleared"),
    "still_active": ("期末仍在报警", "still active at the end"),
    "no_stale": ("没有长时告警。", "No stale alarms."),
    "shelves": ("搁置记录", "Shelving"),
    "who": ("搁置人", "By"),
    "reason": ("原因", "Reason"),
    "no_reason": ("未说明", "none given"),
    "expired": ("到期", "expired"),
    "ended_by": ("由 {who} 解除", "ended by {who}"),
    "still_shelved": ("期末仍在搁置", "still shelved at the end"),
    "no_shelves": ("本期没有搁置。", "Nothing was shelved."),
    "priorities": ("优先级分布", "Priority distribution"),
    "isa_priority": ("ISA-18.2 优先级", "ISA-18.2 priority"),
    "p.high": ("高", "high"),
    "p.medium": ("中", "medium"),
    "p.low": ("低", "low"),
    "p.": ("未知", "unknown"),
    "sev.": ("未知 (告警已不在配置中)", "unknown (no longer configured)"),
    "yes": ("是", "yes"),
    "list_sep": ("、", ", "),
    "quiet": ("搁置或抑制期间产生", "Raised while shelved or suppressed"),
    "active_total": ("累计报警时长", "Time active"),
    "longest": ("最长持续", "Longest"),
    "shelved": ("搁置次数", "Shelved"),
    "source": ("目标依据 ISA-18.2 (每个值班台, 至少 30 天的数据); 各项的计算方法见 "
               "docs/alarm-review.md。",
               "Targets from ISA-18.2 (per operator console, based on at least 30 days of data); "
               "how each is computed: docs/alarm-review.md."),
    **{f"sev.{k}": (v, k) for k, v in SEVERITY_TEXT.items()},
}
OPS = {"<": "<", "<=": "≤", ">=": "≥"}


def words(language: Language) -> dict[str, str]:
    i = 0 if language == "zh-CN" else 1
    return {key: pair[i] for key, pair in _WORDS.items()}


def number(value: float) -> str:
    """``6``, ``4.2``; below 1 two decimals (``0.35``), and ``< 0.01`` for less."""
    if 0 < value < 0.01:
        return "< 0.01"
    text = f"{value:.2f}" if value < 1 else f"{value:.1f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


class _Say:
    """One language's words, and how times, durations and measures are said in it."""

    def __init__(self, language: Language, timezone: str):
        self.language, self.w, self.tz = language, words(language), ZoneInfo(timezone)

    def __getitem__(self, key: str) -> str:
        return self.w[key]

    def time(self, ts: float | None) -> str:
        return "—" if ts is None else datetime.fromtimestamp(ts, self.tz).strftime(
            "%Y-%m-%d %H:%M")

    def duration(self, seconds: float) -> str:
        return spoken_duration(seconds, self.language)

    def amount(self, m: Measure, value: float) -> str:
        return self.w[f"u.{m.unit}"].format(n=number(value))

    def target(self, m: Measure) -> str:
        text = self.amount(m, 0) if m.op == "<=" and m.target == 0 else \
            f"{OPS[m.op]} {self.amount(m, m.target)}"
        return text + (f" ({self.w['at_most'].format(n=self.amount(m, m.limit))})"
                       if m.limit is not None else "")

    def severity(self, severity: str) -> str:
        return self.w.get(f"sev.{severity}", severity)

    def share(self, value: float) -> str:
        return f"{number(value)}%"

    def shelve_end(self, s: Shelve) -> str:
        if s.until is None:
            return self.w["still_shelved"]
        by = self.w["expired"] if s.ended_by == "system" else self.w["ended_by"].format(
            who=s.ended_by or "—")
        return f"{self.time(s.until)} ({by})"


def summary_lines(data: dict[str, Any], language: Language) -> list[str]:
    """The review's JSON as text: the period, then each measure, its target and result."""
    p = data["period"]
    say = _Say(language, p["timezone"])
    measures = [Measure(**{k: v for k, v in m.items() if k != "state"})
                for m in data["measures"]]
    return [f"{say['title']} {p['month']} ({say.time(p['start'])} — {say.time(p['until'])}, "
            f"{p['timezone']}): {say['annunciated']} {data['annunciated']}",
            *(f"  {say['m.' + m.key]}: {say.amount(m, m.value)} — {say['target']} "
              f"{say.target(m)} — {say[m.state]}" for m in measures)]


def alarm_report(review: Review, fmt: Format, language: Language, site: str) -> bytes:
    say = _Say(language, review.period.timezone)
    if fmt == "csv":
        return csv_bytes(alarm_table(review.alarms, say))
    return html_or_pdf("alarm_review.html.j2", fmt, **_page(review, say, site))


def alarm_table(alarms: list[AlarmStats], say: _Say) -> list[list[str]]:
    """The per-alarm table with its heading row."""
    yes = say["yes"]
    return [[say[k] for k in ("alarm", "area", "priority", "count", "share", "bad_actor",
                              "quiet", "burst", "chattering", "fleeting", "active_total",
                              "longest", "shelved", "stale")],
            *([a.label, a.area, say.severity(a.severity), str(a.raised), say.share(a.share),
               yes if a.bad_actor else "", str(a.quiet), str(a.burst),
               yes if a.chattering else "", str(a.fleeting), say.duration(a.active),
               say.duration(a.longest), str(a.shelved), yes if a.stale else ""]
              for a in alarms)]


def _page(r: Review, say: _Say, site: str) -> dict[str, Any]:
    p = r.period
    until = f" ({say['up_to'].format(t=say.time(p.until))})" if p.until < p.end else ""
    return {
        "w": say.w, "lang": say.language,
        "title": f"{say['title']} {p.month}", "site": site,
        "generated": say.time(time.time()),
        "facts": [(say["period"], f"{say.time(p.start)} — {say.time(p.end)}{until}"),
                  (say["timezone"], p.timezone), (say["operators"], str(r.operators)),
                  (say["annunciated"], str(r.annunciated)),
                  (say["peak_hour"], number(r.peak_hour)),
                  (say["not_annunciated"], str(r.not_annunciated)),
                  (say["system"], str(r.system))],
        "measures": [(say[f"m.{m.key}"], say.amount(m, m.value), say.target(m), m.state,
                      say[m.state]) for m in r.measures],
        "floods": [(say.time(f.start), say["ongoing"] if f.ongoing else say.time(f.end),
                    say.duration(f.end - f.start), f.count,
                    say["list_sep"].join(f"{label} × {n}" for label, n in f.alarms[:3]))
                   for f in r.floods],
        "top": [(a.label, a.area or "—", say.severity(a.severity), a.raised, say.share(a.share),
                 a.bad_actor) for a in r.top],
        "chatter": [(a.label, a.area or "—", a.burst, say["yes"] if a.chattering else "",
                     a.fleeting) for a in r.alarms if a.chattering or a.fleeting],
        "stale": [(s.label, s.area or "—", say.time(s.raised),
                   say["still_active"] if s.cleared is None else say.time(s.cleared),
                   say.duration(s.longest)) for s in r.stale],
        "shelves": [(s.label, s.who, say.time(s.since), say.shelve_end(s),
                     say.duration((p.until if s.until is None else s.until) - s.since),
                     s.reason) for s in r.shelves],
        "priorities": [(say.severity(x.severity), say[f"p.{x.priority}"], x.count,
                        say.share(x.share) if x.priority else "—") for x in r.priorities],
    }
