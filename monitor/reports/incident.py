"""The incident report and the drill comparison, for management: HTML (Jinja2 templates in
``templates/``), CSV (UTF-8 with a BOM, so Excel reads the Chinese) and PDF (WeasyPrint), in
zh-CN or English. Labels stand where the data has ids: steps, roles, areas."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from monitor.config.model import SiteConfig
from monitor.playbooks.model import (
    END,
    ApprovalStep,
    ChecklistStep,
    DeadlineStep,
    EscalateStep,
    NotifyStep,
    Playbook,
    ResolveStep,
    RollCallStep,
    WaitStep,
)
from monitor.playbooks.review import Review, Row, Target, passed, quicker, target_trend
from monitor.reports.documents import Format, csv_bytes, html_or_pdf
from monitor.words.report import Language, words
from monitor.words.text import spoken_duration

DELIVERED_SEP = " | "
"""Between a delivery line's channel (and why it failed) and the message it carried."""
MEASURES = {"ack": "acknowledged", "first": "first_action", "resolution": "resolution"}
"""The report's words for the times a review measures."""

@dataclass(frozen=True)
class Names:
    """The site's labels for role and area names, the site's and its time zone."""

    roles: dict[str, str]
    areas: dict[str, str]
    site: str = ""
    timezone: str = ""

    @classmethod
    def of(cls, cfg: SiteConfig) -> Names:
        return cls({r.name: r.label for r in cfg.roles if r.label},
                   {a.name: a.label for a in cfg.areas if a.label},
                   cfg.site.label or cfg.site.name, cfg.site.timezone)


def local_time(ts: float | None) -> str:
    return "—" if ts is None else datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


class _Say:
    """One language's words, and how durations, times, steps and roles are said in it."""

    def __init__(self, language: Language, names: Names):
        self.language, self.names, self.w = language, names, words(language)

    def __getitem__(self, key: str) -> str:
        return self.w[key]

    def duration(self, seconds: float | None) -> str:
        return "—" if seconds is None else spoken_duration(seconds, self.language)

    def zone(self, at: float) -> str:
        """The site's time zone and its offset from UTC at ``at``."""
        offset = datetime.fromtimestamp(at, ZoneInfo(self.names.timezone)).strftime("%z")
        return self.w["zone_is"].format(tz=self.names.timezone,
                                        offset=f"{offset[:3]}:{offset[3:]}")

    def measure(self, r: Review, measure: str) -> str:
        """Acknowledged, first action or resolution after the start, or that it never was."""
        seconds = getattr(r, MEASURES[measure])
        return self.w[f"no_{measure}"] if seconds is None else self.duration(seconds)

    def step(self, pb: Playbook, step_id: str | None) -> str:
        if step_id is None:
            return ""
        found = next((s for s in pb.steps if s.id == step_id), None)
        return (found.alias or found.id) if found else step_id

    def roles(self, roles: list[str]) -> str:
        return self.w["list_sep"].join(self.names.roles.get(r, r) for r in roles)

    def scope(self, scope: str) -> str:
        return self.w["site"] if scope == "site" else self.names.areas.get(scope, scope)

    def target(self, t: Target) -> str:
        d = self.duration(t.within)
        if t.what == "ack":
            return self.w["ack_target"].format(d=d)
        if t.what == "timeout":
            return self.w["timeout_target"].format(label=t.label, d=d)
        return t.label

    def late(self, t: Target) -> str:
        return self.w["late_by"].format(d=self.duration(t.late)) if t.late else ""

    def result(self, t: Target) -> str:
        """The state, and how late when it was done late."""
        return self.w[t.state] + (f" ({self.late(t)})" if t.late else "")

    def status(self, r: Review) -> str:
        inc = r.incident
        return self.w[inc.status] + (f" ({inc.level})" if inc.level else "")

    def title(self, r: Review) -> str:
        return (self.w["drill_mark"] if r.incident.drill else "") + r.playbook.label


# -- one incident -----------------------------------------------------------------------------

def incident_report(r: Review, fmt: Format, language: Language, names: Names) -> bytes:
    say = _Say(language, names)
    if fmt == "csv":
        return csv_bytes([[say["time"], say["actor"], say["step"], say["event"],
                           say["detail"]], *timeline(r, say)])
    return html_or_pdf("incident.html.j2", fmt, **_incident(r, say))


def _incident(r: Review, say: _Say) -> dict[str, Any]:
    inc, pb = r.incident, r.playbook
    first = r.first_action_row
    first_text = say.measure(r, "first")
    if first is not None:
        kind, detail = describe(first, r, say)
        what = f"{kind} {detail}".strip()
        first_text += f" ({say['by'].format(who=first.actor, what=what) if first.actor else what})"
    return {
        "w": say.w, "lang": say.language, "title": say.title(r),
        "header": [*([(say["site_name"], say.names.site)] if say.names.site else []),
                   (say["playbook"], pb.label), (say["scope"], say.scope(inc.scope)),
                   (say["type"], say["drill"] if inc.drill else say["real"]),
                   (say["start"], local_time(inc.started)), (say["end"], local_time(r.end)),
                   (say["status"], say.status(r)),
                   *([(say["zone"], say.zone(inc.started))] if say.names.timezone else [])],
        "reference": inc.id, "generated": local_time(time.time()),
        "measures": [(say["ack"], say.measure(r, "ack")
                      + (f" ({inc.acked[0]})" if inc.acked else "")),
                     (say["first"], first_text),
                     (say["resolution"], say.measure(r, "resolution"))],
        "targets": [{"label": say.target(t), "limit": say.duration(t.within),
                     "due": local_time(t.due), "state": t.state, "result": say[t.state],
                     "late": say.late(t),
                     "done": say["never"] if t.done is None and t.state == "missed"
                     else local_time(t.done)} for t in r.targets],
        "steps": [(s.label, say.w.get(f"s.{s.kind}", s.kind), local_time(s.entered),
                   local_time(s.done),
                   say[s.outcome],
                   say["list_sep"].join(s.who) or "—") for s in r.steps],
        "roles": [(say.roles([x.role]), x.asked, x.answered, say.duration(x.average),
                   say.duration(x.slowest), say["list_sep"].join(x.people) or "—")
                  for x in r.roles],
        "timeline": timeline(r, say)}


def timeline(r: Review, say: _Say) -> list[list[str]]:
    """Time, who, step, what happened, detail: one list per timeline line."""
    return [[local_time(row.ts), row.actor or "", say.step(r.playbook, row.step),
             *describe(row, r, say)] for row in r.timeline]


def describe(row: Row, r: Review, say: _Say) -> tuple[str, str]:
    """What a timeline line says, in words: its kind, and the detail from the playbook (the
    recorded text only where it is free text: why, notes, action output)."""
    kind = say.w.get(f"k.{row.kind}", row.kind)
    pb = r.playbook
    step = next((s for s in pb.steps if s.id == row.step), None)
    if row.kind in ("started", "retriggered", "restarted", "note", "action_ok", "action_failed",
                    "confirmed", "linked", "scripted"):
        return kind, row.text
    if row.kind in ("delivered", "undelivered"):  # CHANNEL[: why it failed][ | the message]
        sent, _, message = row.text.partition(DELIVERED_SEP)
        channel, _, why = sent.partition(": ")
        return kind, say.w.get(f"ch.{channel}", channel) + (f": {why}" if why else "") + (
            f" — {message}" if message else "")
    match step:
        case NotifyStep() if row.kind == "notify":
            return kind, f"{say.roles(step.roles)}: {step.message}"
        case EscalateStep():
            return kind, step.level + (f" ({say.roles(step.roles)})" if step.roles else "")
        case DeadlineStep() if row.kind == "deadline_late":
            due = r.incident.deadlines[step.id]["due"]
            return kind, f"{step.target} ({say['late_by'].format(d=say.duration(row.ts - due))})"
        case DeadlineStep():
            return kind, step.target
        case ChecklistStep() if row.kind == "checklist":
            return kind, say["list_sep"].join(f"{i.text} ({say.roles([i.role])})"
                                              for i in step.items)
        case ApprovalStep() if row.kind == "approval":
            return kind, f"{step.text} ({say.roles([step.role])})"
        case WaitStep() if row.kind == "wait":
            return kind, (say["wait_for"].format(d=say.duration(step.for_))
                          if step.for_ is not None else say["wait_until"])
        case ResolveStep() if row.kind == "wait":
            return kind, say["wait_clear"]
        case RollCallStep() if row.kind == "rollcall":
            n = len(r.incident.rollcall.get(step.id, {}))
            return kind, say["asked_n"].format(n=n, text=step.text) if n else say["nobody"]
        case WaitStep() if row.kind == "timeout" and step.timeout is not None:
            to = say["path_end"] if step.on_timeout in (None, END) \
                else say.step(pb, step.on_timeout)
            return say["k.switched"], say["switched_to"].format(d=say.duration(step.timeout),
                                                                to=to)
        case ChecklistStep() | WaitStep() | ApprovalStep() | RollCallStep() \
                if row.kind == "timeout" and step.timeout is not None:
            return kind, say["over"].format(d=say.duration(step.timeout))
    return kind, _detail(row, r, say)


def _detail(row: Row, r: Review, say: _Say) -> str:
    """Details the engine writes in its own words, said again in the report's language."""
    if row.kind == "branch":
        taken = row.text.rpartition("转到 ")[2]
        return say["path_end"] if taken == END else say.step(r.playbook, taken)
    if row.kind in ("approved", "rejected"):
        return row.text.partition(": ")[2]
    if row.kind == "confirm_ignored":
        item, _, first = row.text.partition(": 已由 ")
        return f"{item}: {say['first_by'].format(who=first.removesuffix(' 确认'))}"
    if row.kind == "action_timeout":
        step = r.playbook.step(row.step) if row.step else None
        timeout = getattr(step, "timeout", None)
        return say["not_within"].format(d=say.duration(timeout)) if timeout else ""
    if row.kind == "action_unknown":
        return say["unknown_run"]
    if row.kind == "refused":  # an item or step named that was not waiting
        known = {i.id: i.text for s in r.playbook.steps if isinstance(s, ChecklistStep)
                 for i in s.items} | {s.id: s.alias or s.id for s in r.playbook.steps}
        named = next((known[t] for t in row.text.split(" ") if t in known), None)
        return say["not_waiting"].format(what=named) if named else row.text
    if row.kind == "resolved" and row.actor is None:
        return say["by_condition"]
    if row.kind in ("safe", "safe_ignored", "rollcall_missing"):
        return _roll(row, say)
    return ""


def _roll(row: Row, say: _Say) -> str:
    """A roll call's line as the engine words it, said again: who is safe (late, reported
    by someone else), whose report did not count and why, who never answered."""
    if row.kind == "rollcall_missing":
        count, _, names = row.text.partition(": ")
        n = count.removeprefix("未确认安全 ").removesuffix(" 人")
        return say["missing_n"].format(n=n, names=say["list_sep"].join(names.split(", ")))
    if row.kind == "safe_ignored":
        name, _, why = row.text.partition(": ")
        return f"{name}: {say['already_safe'] if why == '已确认过安全' else say['not_listed']}"
    name, _, rest = row.text.partition(" 已确认安全")
    late = f" ({say['after_timeout']})" if "(超时后)" in rest else ""
    by = rest.partition(", 由 ")[2].removesuffix(" 代报")
    return name + late + (f", {say['reported_by'].format(who=by)}" if by else "")


# -- drills side by side ------------------------------------------------------------------------

def drill_report(runs: list[Review], fmt: Format, language: Language, names: Names) -> bytes:
    """Runs of one playbook's drills, oldest first; each compared with the one before."""
    say = _Say(language, names)
    table = drill_table(runs, say)
    if fmt == "csv":
        return csv_bytes([[say["measure"], *(f"{say['runs']} {n} {start}"
                                             for n, start in enumerate(table["runs"], 1))],
                          *([label, *(_cell_text(c, say) for c in cells)]
                            for label, cells in table["rows"])])
    return html_or_pdf("drills.html.j2", fmt, w=say.w, lang=say.language,
                       title=f"{say['drills']}: {runs[-1].playbook.label}",
                       generated=local_time(time.time()), **table)


Cell = tuple[str, str, str]
"""Text, CSS class (a target's state), trend against the previous run ('' for none)."""


def drill_table(runs: list[Review], say: _Say) -> dict[str, Any]:
    keys: dict[str, str] = {}
    for r in runs:
        for t in r.targets:
            keys.setdefault(t.key, say.target(t))
    rows: list[tuple[str, list[Cell]]] = [
        (say["status"], [(say.status(r), "", "") for r in runs])]
    for measure, field in MEASURES.items():
        rows.append((say[measure], [(say.measure(r, measure), "",
                                     (quicker(getattr(p, field), getattr(r, field)) or "")
                                     if p else "") for p, r in _pairs(runs)]))
    rows.append((say["passed_count"], [_count(p, r, say) for p, r in _pairs(runs)]))
    for key, label in keys.items():
        cells = []
        for p, r in _pairs(runs):
            this, before = _target(r, key), _target(p, key) if p else None
            cells.append((say.result(this), this.state, target_trend(before, this) or "")
                         if this else ("—", "", ""))
        rows.append((label, cells))
    return {"runs": [local_time(r.incident.started) for r in runs], "rows": rows}


def _pairs(runs: list[Review]) -> list[tuple[Review | None, Review]]:
    return list(zip([None, *runs[:-1]], runs, strict=True))


def _target(r: Review, key: str) -> Target | None:
    return next((t for t in r.targets if t.key == key), None)


def _count(previous: Review | None, r: Review, say: _Say) -> Cell:
    """Targets passed of those judged; fewer missed than the run before is better."""
    n, of = passed(r)
    trend = ""
    if previous is not None:
        was, was_of = passed(previous)
        missed, was_missed = of - n, was_of - was
        trend = "better" if missed < was_missed else "worse" if missed > was_missed else "same"
    return say["of"].format(n=n, of=of), "", trend


def _cell_text(cell: Cell, say: _Say) -> str:
    text, _, trend = cell
    return f"{text} ({say[trend]})" if trend else text
