"""Incidents: playbooks running on the site. It attaches through the runtime context.

- Raised alarms and device events from the bus start incidents: one per playbook and scope.
  A trigger while one runs attaches to it and is written on its timeline.
- Alarm changes are judged again by the running incidents.
- People act on incidents (acknowledge, confirm, approve, resolve, note) through ``act``.
- Each change is stored (incident and timeline) before its effects are carried out:
  - waits and deadlines are durable timers (kind ``playbook``);
  - messages go on the bus as ``IncidentNotice``;
  - actions go through the action runner.
  An action that was running when the daemon died is "unknown" after the restart and is
  never run twice.
- An incident keeps the version of the playbook it started with (``playbook_versions``), so a
  reload changes only the incidents that start after it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from monitor.config.actions import Action
from monitor.core.bus import AlarmEvent, DeviceEvent, IncidentMilestone, IncidentNotice
from monitor.core.context import Context
from monitor.core.part import Part
from monitor.core.timers import fields
from monitor.core.timers import name as timer_name
from monitor.devices.words import event_label
from monitor.playbooks import records
from monitor.playbooks.check import load_playbook_text
from monitor.playbooks.engine import (
    Arm,
    Cancel,
    Changed,
    Done,
    Due,
    Effect,
    Engine,
    Entry,
    Incident,
    Input,
    Notify,
    Restarted,
    RollCall,
    Run,
    Start,
    World,
)
from monitor.playbooks.model import ActionStep, Playbook
from monitor.playbooks.rehearse import Step as ScriptStep
from monitor.playbooks.rehearse import person_input, scripted_facts
from monitor.reports.incident import local_time
from monitor.words.report import words
from monitor.words.text import spoken_duration

log = logging.getLogger(__name__)



MILESTONES = frozenset({"started", "acknowledged", "approved", "rejected", "escalated",
                        "deadline_met", "deadline_missed", "deadline_late", "action_ok",
                        "action_failed", "action_timeout", "action_unknown", "resolved",
                        "closed"})
"""Timeline kinds published as milestones (InfluxDB's ``incident`` measurement)."""
FLAP_WINDOW = 120.0
"""A trigger this soon after the emergency was resolved is a flap of the same one."""


class IncidentError(Exception):
    """A request about an incident that cannot be carried out (unknown, already closed)."""


class IncidentConflict(IncidentError):
    """The request contradicts the incident's state (already linked, ...)."""


class IncidentInvalid(IncidentError):
    """The request cannot be carried out as given (a script for a real incident, a script's
    alarm the site does not define)."""


def version_of(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class Incidents(Part):
    name = "playbooks"

    def __init__(self, ctx: Context, playbooks: dict[str, str]):
        """``playbooks``: name -> YAML text (already checked)."""
        self.ctx = ctx
        self.texts: dict[str, str] = {}
        self.playbooks: dict[str, Playbook] = {}
        self.versions: dict[str, Playbook] = {}
        self.version_texts: dict[str, str] = {}
        self.running: dict[str, Incident] = {}
        self._roster_of: object = None
        self.locks: dict[str, asyncio.Lock] = {}
        self.deferred: dict[str, list[Input | tuple[int, ScriptStep]]] = {}
        """Incident -> inputs (and a scripted drill's steps) that came while a person's
        input was being committed."""
        self._roster_cache: tuple[dict[str, tuple[str, ...]], dict[str, str]] = ({}, {})
        self.use_playbooks(playbooks)
        ctx.timers.on("playbook", self._due, legacy=_legacy_name)
        self.subscription = ctx.bus.subscribe("playbooks", self.on_event,
                                              kinds=(AlarmEvent, DeviceEvent))

    def use_playbooks(self, playbooks: dict[str, str]) -> None:
        """The playbooks new incidents start with (at start and on reload)."""
        self.texts = dict(playbooks)
        self.playbooks = {name: load_playbook_text(text, name) for name, text in playbooks.items()}
        for name, text in playbooks.items():
            self.versions[version_of(text)] = self.playbooks[name]
            self.version_texts[version_of(text)] = text
        kept = [(version_of(t), t) for t in playbooks.values()]  # what a restart reads back
        self.ctx.store.submit(records.versions_writer(kept))

    def persist_all(self, conn: sqlite3.Connection) -> None:
        """Writer op: the running incidents and their playbook versions again (into a
        database made anew; their timelines before it are lost with the old one)."""
        for inc in self.running.values():
            lost = words(self.ctx.cfg.site.language)["timeline_lost"]
            self._writer(inc, [Entry(time.time(), "note", lost, actor="Vigil")])(conn)
        records.versions_writer([(v, self.version_texts[v]) for v in
                                 {inc.version for inc in self.running.values()}])(conn)

    async def load(self) -> None:
        """Incidents that were running when the daemon stopped, on their own playbook
        versions; actions they were running are now of unknown outcome."""
        rows = await self.ctx.store.read(records.running)
        pending = await self.ctx.store.read(records.pending_notices)  # before the restart's
        if pending:
            log.warning("%d messages of incidents were not delivered before the daemon "
                        "stopped: sending them now", len(pending))
        for notice in pending:  # stored with their change, not yet delivered: send them now
            self.ctx.bus.publish(notice)
        down = self._downtime()
        for inc, text in rows:
            if inc.version not in self.versions:
                self.versions[inc.version] = load_playbook_text(text, inc.playbook)
                self.version_texts[inc.version] = text
            self.running[inc.id] = inc
            if down is not None:
                self.ctx.store.submit(self._writer(inc, [down]))
            self._feed(inc, Restarted())

    def _downtime(self) -> Entry | None:
        """What a restart writes on each running incident's timeline: since when Vigil was
        down (its last commit) and when it came back, so management sees the gap."""
        last = self.ctx.store.last_run
        if last is None:
            return None
        now = time.time()
        said = (f"Vigil 未运行: 最后一次写入 {local_time(last)}, {local_time(now)} 重新运行, "
                f"中断 {spoken_duration(now - last)}; 其间的告警与操作未记录在此")
        return Entry(now, "restarted", said, actor="Vigil")

    # -- what starts and moves incidents --------------------------------------------------------
    def on_event(self, event: AlarmEvent | DeviceEvent) -> None:
        if isinstance(event, AlarmEvent):
            # a shelved or suppressed alarm starts nothing, until it is let out still active
            if (event.action == "raised" and event.state not in ("shelved", "suppressed")) \
                    or (event.action in ("unshelved", "unsuppressed") and event.active):
                alarm = self.ctx.alarms.alarms.get(event.alarm)
                if alarm is not None:
                    found = self.ctx.facts.of(alarm)
                    area = next((a.label or a.name for a in self.ctx.cfg.areas
                                 if a.name == found["area"]), "")
                    why = f"告警: {alarm.message}" + (f" ({area})" if area else "")
                    for pb in self.playbooks.values():
                        if any(t.alarm is not None and t.alarm.matches(found)
                               for t in pb.triggers):
                            self.start(pb.name, _scope(pb, found["area"]), why)
            if event.action in ("raised", "cleared", "acknowledged", "retired"):
                for inc in list(self.running.values()):
                    self._feed(inc, Changed())
        else:
            for pb in self.playbooks.values():
                if any(t.event is not None and event.kind in t.event.kind
                       and (not t.event.device or event.device in t.event.device)
                       for t in pb.triggers):
                    dev = self.ctx.cfg.device(event.device)
                    self.start(pb.name, _scope(pb, dev.area if dev else ""),
                               f"事件: {event_label(event.kind)} "
                               f"({(dev.label or dev.name) if dev else event.device})")

    def start(self, playbook: str, scope: str = "site", why: str = "手动启动", *,
              drill: bool = False, unsafe_allowed: bool = False, who: str | None = None,
              script: Sequence[ScriptStep] = ()) -> Incident:
        """A new incident, or the running one of this playbook and scope (a re-trigger is
        written on its timeline). One in its recovery phase for more than ``FLAP_WINDOW`` is
        over: a trigger then starts a new incident, linked to it. A drill never joins a real
        incident, nor one a drill. A drill with a ``script`` gets its alarms and the inputs
        not left to people from it, at their times (durable timers), and sees no alarm of
        the site."""
        pb = self.playbooks.get(playbook)
        if pb is None:
            raise IncidentError(f"no playbook {playbook!r}")
        if script and not drill:
            raise IncidentInvalid("a script is for drills only (drill: true)")
        for step in script:
            alarm = step.raise_["alarm"] if step.raise_ is not None else step.clear
            if alarm is not None and alarm not in self.ctx.alarms.defs:
                raise IncidentInvalid(f"the script's step at {step.at:g} s names the alarm "
                                      f"{alarm!r}, which this site does not define")
        before = None
        for inc in self.running.values():
            if (inc.playbook, inc.scope, inc.drill) == (playbook, scope, drill):
                if inc.status == "recovery" and not script and inc.resolved is not None \
                        and time.time() - inc.resolved[1] > FLAP_WINDOW:
                    before = inc  # over a while ago: this is a new emergency
                    continue
                if script:
                    raise IncidentConflict(f"the drill {inc.id} of this playbook is running: "
                                           f"resolve it first")
                self.ctx.store.submit(self._writer(  # a drill asked for again says so too
                    inc, [Entry(time.time(), "retriggered", why, actor=who)]))
                return inc
        now = time.time()
        stamp = datetime.fromtimestamp(now).strftime("%Y%m%d-%H%M%S")
        where = "" if scope == "site" else f"-{scope}"
        inc = Incident(f"{'drill-' if drill else ''}{stamp}-{playbook}{where}-"
                       f"{secrets.token_hex(2)}", playbook,
                       version_of(self.texts[playbook]), scope, now, drill=drill,
                       unsafe_allowed=unsafe_allowed,
                       script=[s.model_dump(by_alias=True, exclude_none=True) for s in script])
        for step in script:  # the alarms at 0 s are the drill's world when it starts
            if step.at == 0 and step.raise_ is not None:
                inc.scripted[step.raise_["alarm"]] = scripted_facts(step.raise_)
        self.running[inc.id] = inc
        log.warning("incident %s: %s started (%s)", inc.id, pb.label, why)
        self._feed(inc, Start(why))
        for n, step in enumerate(script):
            if step.at > 0 or step.raise_ is None:
                self.ctx.timers.arm("playbook", timer_name(inc.id, "script", n), now + step.at)
        causes = [c for c in self.running.values() if c.playbook in pb.caused_by
                  and c.drill == drill and c.id != inc.id
                  and (scope == "site" or c.scope in ("site", scope))]
        for cause in [*causes, *([before] if before is not None else [])]:
            self.ctx.store.submit(self._linked(cause, inc, who))
            _link(cause, inc)
        return inc

    async def link(self, incident_id: str, other_id: str, who: str) -> Incident:
        """Link two running incidents by hand: committed before it counts."""
        inc, other = self.running.get(incident_id), self.running.get(other_id)
        if inc is None or other is None:
            missing = incident_id if inc is None else other_id
            raise IncidentError(f"no running incident {missing!r}")
        if inc.id == other.id:
            raise IncidentConflict("an incident cannot be linked to itself")
        if other.id in inc.links:
            raise IncidentConflict(f"{inc.id} and {other.id} are already linked")
        if inc.drill != other.drill:
            raise IncidentConflict("a drill and a real incident are never linked")
        await self.ctx.store.call(self._linked(inc, other, who))
        _link(inc, other)
        return inc

    def _linked(self, cause: Incident, effect: Incident, who: str | None
                ) -> Callable[[sqlite3.Connection], None]:
        """Writer op: both incidents as linked, each with the link on its timeline."""
        now = time.time()
        writes = [self._writer(replace(inc, links=[*inc.links, other.id]),
                               [Entry(now, "linked", text, actor=who)])
                  for inc, other, text in (
                      (effect, cause, f"关联: 起因是 {self._label(cause)} ({cause.id})"),
                      (cause, effect, f"关联: 引起了 {self._label(effect)} ({effect.id})"))]

        def write(c: sqlite3.Connection) -> None:
            for w in writes:
                w(c)
        return write

    def _alarm_name(self, alarm_id: str) -> str:
        """What people call an alarm: its message, when the site defines it."""
        defn = self.ctx.alarms.defs.get(alarm_id)
        return defn.message if defn is not None and defn.message else alarm_id

    def _label(self, inc: Incident) -> str:
        pb = self.versions.get(inc.version)
        return pb.label if pb else inc.playbook

    async def act(self, incident_id: str, inp: Input) -> Incident:
        """A person's input: judged on a copy, committed, and only then taken on and carried
        out. When the database cannot commit it (StoreUnavailable), nothing changed. People's
        inputs to one incident take turns; what the site or a timer says meanwhile waits
        until the input is taken on, then follows it."""
        async with self.locks.setdefault(incident_id, asyncio.Lock()):
            inc = self.running.get(incident_id)
            if inc is None:
                raise IncidentError(f"no running incident {incident_id!r}")
            trial = records.decode(records.encode(inc))
            pb = self.versions[inc.version]
            effects = Engine(pb).feed(trial, inp, self._world(trial))
            notices = _notices(trial, pb, effects)
            self.deferred[incident_id] = []
            try:
                await self.ctx.store.call(self._writer(trial, effects, notices))
                self.running[incident_id] = trial
                self._carry_out(trial, pb, effects, notices)
            finally:
                for later in self.deferred.pop(incident_id):
                    live = self.running.get(incident_id)
                    if live is None:
                        continue
                    if isinstance(later, tuple):
                        self.ctx.timers.cancel("playbook",
                                               timer_name(incident_id, "script", later[0]))
                        self._scripted(live, *later)
                    else:
                        self._feed(live, later)
        if incident_id not in self.running:  # closed: nobody acts on it again
            self.locks.pop(incident_id, None)
        return self.running.get(incident_id, trial)

    # -- carrying out what the engine says ------------------------------------------------------
    def _feed(self, inc: Incident, inp: Input) -> None:
        waiting = self.deferred.get(inc.id)
        if waiting is not None:  # a person's input is being committed: after it
            waiting.append(inp)
            return
        pb = self.versions[inc.version]
        effects = Engine(pb).feed(inc, inp, self._world(inc))
        notices = _notices(inc, pb, effects)
        self.ctx.store.submit(self._writer(inc, effects, notices))
        self._carry_out(inc, pb, effects, notices)

    def _carry_out(self, inc: Incident, pb: Playbook, effects: list[Effect],
                   notices: list[IncidentNotice]) -> None:
        for notice in notices:
            self.ctx.bus.publish(notice)
        for effect in effects:
            self._apply(inc, pb, effect)
        if inc.status == "closed":
            self.running.pop(inc.id, None)
            log.info("incident %s closed", inc.id)

    def _world(self, inc: Incident) -> World:
        if inc.script:
            active = tuple(inc.scripted.values())
        else:
            active = tuple(f for f in (self.ctx.facts.of(a)
                                       for a in self.ctx.alarms.alarms.values() if a.active)
                           if inc.scope == "site" or f["area"] == inc.scope)
        roster, labels = self._roster()
        return World(time.time(), active, roster, labels)

    def _roster(self) -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
        """Role -> who holds it (``*`` -> everyone), and their labels: for roll calls (per
        configuration)."""
        cfg = self.ctx.cfg
        if self._roster_of is not cfg:
            self._roster_cache = ({"*": tuple(p.name for p in cfg.people)} | {
                r.name: tuple(p.name for p in cfg.people if r.name in p.roles)
                for r in cfg.roles}, {p.name: p.label or p.name for p in cfg.people})
            self._roster_of = cfg
        return self._roster_cache

    def _writer(self, inc: Incident, effects: list[Effect],
                notices: Sequence[IncidentNotice] = ()) -> Callable[[sqlite3.Connection], None]:
        """The incident, its new timeline entries and the messages it sends, in one
        transaction, written before anything is carried out."""
        return records.writer(inc, [e for e in effects if isinstance(e, Entry)], notices)

    def _apply(self, inc: Incident, pb: Playbook, effect: Effect) -> None:
        if isinstance(effect, Arm):
            self.ctx.timers.arm("playbook", timer_name(inc.id, effect.timer), effect.due)
        elif isinstance(effect, Cancel):
            self.ctx.timers.cancel("playbook", timer_name(inc.id, effect.timer))
        elif isinstance(effect, Entry) and effect.kind in MILESTONES:
            self.ctx.bus.publish(IncidentMilestone(
                inc.id, inc.playbook, pb.label, inc.scope, inc.drill, effect.kind,
                effect.step or "", effect.actor or "", effect.text, effect.ts))
        elif isinstance(effect, Run):
            step = pb.step(effect.step)
            assert isinstance(step, ActionStep)
            self._spawn(self._run(inc.id, step))

    async def _run(self, incident_id: str, step: ActionStep) -> None:
        await self.ctx.store.committed()  # "running" is on disk before it runs
        action = Action(name=step.id, command=step.command, http=step.http, mqtt=step.mqtt,
                        timeout=step.timeout)
        result = await self.ctx.actions.run(action, subject=f"incident:{incident_id}",
                                            kind="PLAYBOOK_ACTION", why=step.alias or step.id)
        inc = self.running.get(incident_id)
        if inc is not None:
            self._feed(inc, Done(step.id, result.ok, result.detail))

    def _due(self, timer: str) -> None:
        incident_id, *rest = fields(timer)
        inc = self.running.get(incident_id)
        if inc is None:
            return
        if rest[0] == "script":
            n = int(rest[1])
            self._scripted(inc, n, ScriptStep.model_validate(inc.script[n]))
        else:
            self._feed(inc, Due(rest[0]))

    def _scripted(self, inc: Incident, n: int, step: ScriptStep) -> None:
        """A scripted drill's ``n``th input: its alarm comes or goes in the drill's own
        world, or what the script says someone does is done; the timeline says it was the
        script. While a person's input is being committed (on a copy of the incident) the
        step waits, so that the copy taken on does not lose it; its timer is armed again
        meanwhile, so a restart before then still has it."""
        waiting = self.deferred.get(inc.id)
        if waiting is not None:
            waiting.append((n, step))
            self.ctx.timers.arm("playbook", timer_name(inc.id, "script", n), time.time() + 60)
            return
        now = time.time()
        inp: Input
        if step.raise_ is not None:
            facts = scripted_facts(step.raise_)
            inc.scripted[facts["alarm"]] = facts
            said, inp = f"演练脚本: 告警 {self._alarm_name(facts['alarm'])} 出现", Changed()
        elif step.clear is not None:
            inc.scripted.pop(step.clear, None)
            said, inp = f"演练脚本: 告警 {self._alarm_name(step.clear)} 恢复", Changed()
        elif step.start is not None or step.event is not None:
            said, inp = "演练脚本: 启动和设备事件在演练中忽略", Changed()
        else:
            said, inp = "演练脚本: 以下操作由脚本代为执行", person_input(step, on_behalf=True)
        self.ctx.store.submit(self._writer(inc, [Entry(now, "scripted", said)]))
        self._feed(inc, inp)

    async def close(self) -> None:
        """Stop: actions still running are cancelled (after a restart their outcome is
        unknown, and they are not run again)."""
        await self.ctx.supervisor.finish(self.name)

    def _spawn(self, coro: Any) -> None:
        self.ctx.supervisor.run_once(self.name, coro)


def _notices(inc: Incident, pb: Playbook, effects: list[Effect]) -> list[IncidentNotice]:
    """The messages among ``effects``, each with the key of its row in ``notices``."""
    out = []
    for e in effects:
        if isinstance(e, Notify | RollCall):
            roles, people = (e.roles, ()) if isinstance(e, Notify) else ((), e.people)
            out.append(IncidentNotice(inc.id, pb.label, pb.step(e.step).alias, roles, e.text,
                                      inc.drill, time.time(), people,
                                      rollcall=isinstance(e, RollCall), cause=inc.cause,
                                      key=secrets.token_hex(8), step_id=e.step))
    return out


def _link(one: Incident, other: Incident) -> None:
    one.links.append(other.id)
    other.links.append(one.id)


def _scope(pb: Playbook, area: str) -> str:
    return area if pb.scope == "area" and area else "site"


def _legacy_name(old: str) -> tuple[str, ...]:
    """An earlier version's ``INCIDENT#TIMER`` or ``INCIDENT#script#N``."""
    incident, _, timer = old.partition("#")
    return (incident, *timer.split("#", 1)) if timer.startswith("script#") else (incident, timer)
