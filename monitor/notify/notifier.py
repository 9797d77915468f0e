"""The notifier: alarms reach people. It attaches through the runtime context: alarm
transitions come from the bus, every wait between escalation levels is a durable timer, and
every delivery attempt is recorded (``notifications`` table, ``Notified`` on the bus).

A raised alarm is routed to policies; each level notifies its targets (the on-call holder of a
role, a person, a group) on all their channels, then waits for an acknowledgement. An
acknowledgement, a clear, shelving or suppression stops every pending step at once, and whoever
was paged is told who acknowledged and when.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from monitor.alarms.facts import alarm_device
from monitor.alarms.model import Alarm, AlarmDef
from monitor.config.directory import Contact, Person
from monitor.config.model import Severity, SiteConfig
from monitor.config.notify import Policy, Target
from monitor.core.bus import AlarmEvent, IncidentMilestone, IncidentNotice
from monitor.core.context import Context
from monitor.core.part import Part
from monitor.core.schema import declare
from monitor.core.store import StoreUnavailable
from monitor.notify import journal
from monitor.notify.delivery import Deliveries, Delivery, resend_at
from monitor.notify.links import UsedLinks, link_key, sign
from monitor.notify.oncall import covers, on_call
from monitor.notify.pacing import URGENT, Pacer
from monitor.notify.silences import Silences
from monitor.notify.templates import SEVERITY, render
from monitor.playbooks import records
from monitor.words.text import spoken_duration

log = logging.getLogger(__name__)

TABLES = declare(__name__, """
CREATE TABLE IF NOT EXISTS unheard (key TEXT PRIMARY KEY, subject TEXT NOT NULL,
                                    why TEXT NOT NULL, drill INTEGER NOT NULL);
""")
"""What reached nobody: the alarm or incident message ``notify:failed`` holds for."""

ADVICE = {"zh-CN": "请到现场查看并处理, 处理后点链接确认", "en": "check on site, then acknowledge"}
"""What to do, for an alarm that says nothing more."""
STOPS = ("acknowledged", "cleared", "shelved", "suppressed", "retired")
FAILED = "notify:failed"
FAILED_DRILL = "notify:drill_failed"
"""A drill's message reached nobody: the drill's finding, labelled, ended with the drill."""


Compose = Callable[[Person, str], tuple[str, str]]
"""(person, form) -> (title, body): each person's text in their language and form."""


def _handled(event: AlarmEvent, language: str) -> str:
    """What happened to an alarm, said to whoever was paged for it."""
    if language == "en":
        return {"acknowledged": f"acknowledged by {event.who} at {_local(event.ts)}"
                                + (f", note: {event.note}" if event.note else ""),
                "cleared": "cleared", "shelved": f"shelved by {event.who}",
                "suppressed": f"suppressed ({event.note})",
                "retired": "withdrawn (its device or rule left the configuration)"
                }.get(event.action, event.action)
    return {"acknowledged": f"已由 {event.who} 于 {_local(event.ts)} 确认"
                            + (f", 备注: {event.note}" if event.note else ""),
            "cleared": "已恢复", "shelved": f"已由 {event.who} 搁置",
            "suppressed": f"已抑制 ({event.note})",
            "retired": "已撤销 (设备或规则已从配置中移除)"}.get(event.action, event.action)


@dataclass(frozen=True)
class Notified:
    """One delivery attempt to one person over one channel."""

    alarm: str
    person: str
    channel: str
    ok: bool
    detail: str
    ts: float


def plan(cfg: SiteConfig, found: dict[str, str], at: datetime) -> list[str]:
    """What would happen to an alarm with these facts, in words: routes, levels, who, when
    (``vigil route test``). Nobody acknowledges in this telling."""
    lines = []
    policies = route_facts(cfg, found, at)
    if not policies:
        return ["no route matches: nobody is paged (the alarm shows on the console only)"]
    for policy in policies:
        lines.append(f"policy {policy.name}:")
        offset = 0.0
        for round_ in range(policy.repeat + 1):
            for n, level in enumerate(policy.levels, 1):
                when = at + timedelta(seconds=offset)
                who = people(cfg, level.notify, when)
                names = ", ".join(f"{p.label or p.name} ({p.name}: "
                                  f"{', '.join(c.channel for c in p.contacts) or 'no contacts'})"
                                  for p in who) or "nobody"
                again = f", round {round_ + 1}" if round_ else ""
                lines.append(f"  +{spoken_duration(offset) if offset else '0 秒'}: level {n}"
                             f"{again}: {names}")
                offset += level.wait
    return lines


def public_base(cfg: SiteConfig) -> str:
    """How phones reach Vigil: ``notify.public_url``, else the API's address."""
    return (cfg.notify.public_url or f"http://{cfg.api.listen}:{cfg.api.port}").rstrip("/")


def route_facts(cfg: SiteConfig, found: dict[str, str],
                at: datetime | None = None) -> list[Policy]:
    """The policies for an alarm with these facts at ``at`` (now): routes whose matcher and
    time window (days, hours) hold."""
    local = (at or datetime.now()).astimezone(ZoneInfo(cfg.site.timezone))
    policies = {p.name: p for p in cfg.notify.policies}
    chosen: list[Policy] = []
    for r in cfg.notify.routes:
        if r.match.matches(found) and (r.when is None or covers(r.when, local)):
            chosen.append(policies[r.policy])
            if not r.continue_:
                break
    return chosen


def people(cfg: SiteConfig, targets: list[Target], at: datetime) -> list[Person]:
    """Who the targets are right now (a role: whoever is on call for it), each once."""
    names: list[str] = []
    for t in targets:
        if t.person is not None:
            names.append(t.person)
        elif t.role is not None:
            names += on_call(cfg, t.role, at).people
        else:
            group = next(g for g in cfg.groups if g.name == t.group)
            names += group.members
            for role in group.roles:
                names += [p.name for p in cfg.people if role in p.roles]
    found = [cfg.person(n) for n in dict.fromkeys(names)]
    return [p for p in found if p is not None]


def _local(ts: float | None) -> str:
    return datetime.fromtimestamp(ts or time.time()).strftime("%Y-%m-%d %H:%M:%S")


class Notifier(Part):
    name = "notifier"

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.key = link_key(ctx.cfg.data_dir)
        self.pacer = Pacer(ctx, self._send)
        self.deliveries = Deliveries(ctx, self._record, self._outcome, self._wanted,
                                     self._renew)
        self.reached: dict[str, float] = {}
        """Alarm id -> when the occurrence was raised that a page for it reached someone."""
        self.paged: dict[str, set[str]] = {}
        """Alarm id -> who was paged for its occurrence in this run (the ``notifications``
        table says it too, once committed: a full disk may hold that back)."""
        ctx.timers.on("escalate", self._due)
        ctx.timers.on("notice", self._notice_due)
        self.unsent: dict[str, int] = {}
        """Incident message key -> times it found nobody holding its roles in a row."""
        self.unheard: dict[str, tuple[str, str, bool]] = {}
        """Alarm id or incident message key -> (subject, why ``notify:failed`` holds for it,
        whether it is a drill's); kept in ``unheard``."""
        ctx.alarms.define(AlarmDef(FAILED, Severity.CRITICAL, "通知发送全部失败, 无人收到告警"))
        ctx.alarms.define(AlarmDef(FAILED_DRILL, Severity.MINOR,
                                   "【演练】演练通知无人收到"))
        self.subscription = ctx.bus.subscribe("notifier", self.on_event,
                                              kinds=(AlarmEvent, IncidentNotice,
                                                     IncidentMilestone))
        self.silences = Silences(ctx, self._announce)
        self.links = UsedLinks(ctx.store)

    async def load(self) -> None:
        """Take back the maintenance windows, what was held back for pacing, the deliveries
        under way and the messages that reached nobody."""
        await self.silences.load()
        await self.links.load()
        await self.pacer.load()
        await self.deliveries.load()
        for name in self.ctx.timers.pending("resend"):  # an earlier version's resends: the
            self.ctx.timers.cancel("resend", name)     # deliveries' rounds do this now
        rows = await self.ctx.store.read(lambda c: c.execute(
            "SELECT key, subject, why, drill FROM unheard").fetchall())
        self.unheard = {key: (subject, why, bool(drill)) for key, subject, why, drill in rows}
        raised = {a.id: a.raised_at for a in self.ctx.alarms.alarms.values()
                  if a.active and a.raised_at is not None}
        reached = await self.ctx.store.read(lambda c: {  # this occurrence's
            alarm: journal.last_reached(c, alarm, since) for alarm, since in raised.items()})
        self.reached = {alarm: at for alarm, at in reached.items() if at is not None}
        closed = await self.ctx.store.read(records.closed_drills)
        drills = {d.subjects[0] for d in self.deliveries.active.values()
                  if d.kind == "incident"} | {s for s, _, drill in self.unheard.values() if drill}
        for incident in drills & set(closed):  # closed before its end reached the notifier
            self._drill_over(incident, started=False)
        self._judge_failed()

    def persist_all(self, conn: sqlite3.Connection) -> None:
        """Writer op: the deliveries under way and what reached nobody again (into a
        database made anew); the pacer's held messages, the silences and the used links
        too."""
        self.pacer.persist_all(conn)
        self.silences.persist_all(conn)
        self.links.persist_all(conn)
        self.deliveries.persist_all(conn)
        conn.executemany("INSERT OR REPLACE INTO unheard VALUES (?, ?, ?, ?)",
                         [(k, s, w, int(d)) for k, (s, w, d) in self.unheard.items()])

    # -- what happens to alarms -----------------------------------------------------------
    def on_event(self, event: AlarmEvent | IncidentNotice | IncidentMilestone) -> None:
        if isinstance(event, IncidentNotice):
            self._incident_notice(event)
            return
        if isinstance(event, IncidentMilestone):
            if event.kind == "closed" and event.drill:
                self._drill_over(event.incident)
            return
        if event.alarm in (FAILED, FAILED_DRILL):
            return  # said on the console and /health; a page about paging reaches no one
        if event.action == "raised" and event.state == "active_unacknowledged":
            self._start(event.alarm)
        elif event.action == "unsuppressed" and event.active and not event.acked:
            self._start(event.alarm)
        elif event.action in STOPS:
            self._cancel(event.alarm)
            self._spawn(self._tell_paged(event))

    def _incident_notice(self, event: IncidentNotice) -> None:
        """A playbook step tells roles something, each message with the person's link to
        take the incident on; a roll call asks each person, with their link to say they are
        safe. In a drill every message says so. Once it is someone's to deliver, its
        ``notices`` row gives way to the deliveries (one transaction); one that finds nobody
        holding its roles is recorded so, keeps ``notify:failed`` up, and is tried again
        later (its row stays until then)."""
        cfg = self.ctx.cfg
        if event.key and self.deliveries.batch(event.key):
            return  # already being delivered (a copy published again at a restart)
        if event.people:
            who = [p for p in (cfg.person(n) for n in event.people) if p is not None]
        else:
            who = people(cfg, [Target(role=r) for r in event.roles
                               if any(role.name == r for role in cfg.roles)],
                         datetime.now().astimezone())
        subject = f"{'safe' if event.rollcall else 'incident'}:{event.incident}"

        def compose(person: Person, form: str) -> tuple[str, str]:
            return render("incident", person.language, form, drill=event.drill,
                          playbook=event.playbook, step=event.step, text=event.text,
                          cause=event.cause,
                          incident=event.incident, console=f"{public_base(cfg)}/",
                          rollcall=event.rollcall, link=self.ack_url(subject, person.name))
        reachable = [p for p in who if p.contacts]
        key = event.key or secrets.token_hex(8)
        if reachable:
            self.unsent.pop(key, None)
            self._deliver("incident", [event.incident], reachable, compose, batch=key,
                          drill=event.drill, step=event.step_id, also=records.drop_notice(key))
            return
        roles = ", ".join(event.roles) or ", ".join(event.people)
        self._record_row([event.incident], "", "none", False, f"无人可通知 (角色: {roles})",
                         event.text, False, event.step_id)
        self._unheard(key, event.incident, f"应急事件 {event.playbook} 的通知无人收到: "
                      f"{event.text}"[:200], event.drill)
        if event.key:
            self._again(event)

    def _again(self, event: IncidentNotice) -> None:
        """``event`` (stored in ``notices``) goes again later, each time later up to
        ``RESEND_MAX``."""
        n = self.unsent[event.key] = self.unsent.get(event.key, 0) + 1
        self.ctx.timers.arm("notice", event.key, resend_at(self.ctx.cfg.notify.resend, n))

    def _notice_due(self, key: str) -> None:
        """An incident message that found nobody goes again (if it is still undelivered)."""
        async def again() -> None:
            notice = await self.ctx.store.read(lambda c: records.notice(c, key))
            if notice is not None:
                self._incident_notice(notice)
        self._spawn(again())

    def _drill_over(self, incident: str, started: bool = True) -> None:
        """A drill closed: its messages still undelivered, and its failures, end with it. A
        message of its last moments still gets its first round (``started``: in this run;
        after a restart none is begun again)."""
        mine = [d for d in self.deliveries.active.values()
                if d.kind == "incident" and d.subjects == [incident]]
        for d in mine:
            d.again = False
        self.deliveries.drop(lambda d: d in mine and (not started or d.round > 1))
        for key in [k for k, (s, _, _) in self.unheard.items() if s == incident]:
            self.ctx.timers.cancel("notice", key)
            self.unsent.pop(key, None)
            self._heard(key)
        self.ctx.store.submit(records.drop_notices_of(incident))

    def _start(self, alarm_id: str) -> None:
        alarm = self.ctx.alarms.alarms.get(alarm_id)
        if alarm is None:
            return
        self.paged.pop(alarm_id, None)  # a new occurrence
        found = self.ctx.facts.of(alarm)
        window = self.silences.holding(found)
        if window is not None:  # planned work: recorded, announced when the window ends
            self.silences.hold(window, alarm_id)
            return
        for policy in route_facts(self.ctx.cfg, found):
            self._level(alarm_id, policy, 0, 0)

    def _announce(self, alarm_ids: list[str]) -> None:
        """A window ended: what it held back and is still unhandled goes out now."""
        for alarm_id in alarm_ids:
            alarm = self.ctx.alarms.alarms.get(alarm_id)
            if alarm is not None and alarm.active and not alarm.acked:
                self._start(alarm_id)

    def _cancel(self, alarm_id: str) -> None:
        """Stop every pending escalation step and delivery of pages for ``alarm_id``."""
        for name in self.ctx.timers.pending("escalate"):
            if name.split("#")[0] == alarm_id:
                self.ctx.timers.cancel("escalate", name)
        self.deliveries.drop(lambda d: d.kind == "page" and alarm_id in d.subjects
                             and not self._wanted(d))
        self._heard(alarm_id)  # handled: nobody is to be paged

    def _pageable_id(self, alarm_id: str) -> bool:
        alarm = self.ctx.alarms.alarms.get(alarm_id)
        return alarm is not None and _pageable(alarm)

    def _heard_since_raised(self, alarm_id: str) -> bool:
        """Whether a page for this occurrence of the alarm reached someone."""
        alarm = self.ctx.alarms.alarms.get(alarm_id)
        at = self.reached.get(alarm_id)
        return alarm is not None and alarm.raised_at is not None and at is not None \
            and at >= alarm.raised_at

    def _renew(self, d: Delivery) -> dict[str, list[str]] | None:
        """A page said anew for another round: a fresh link, and only the alarms still to
        page for (other messages go as they were)."""
        person = self.ctx.cfg.person(d.person)
        alarms = [a for a in (self.ctx.alarms.alarms.get(i) for i in d.subjects)
                  if a is not None and _pageable(a)]
        if d.kind != "page" or person is None or not alarms:
            return None
        return _texts(self._alarm_text(alarms), person)

    def _wanted(self, d: Delivery) -> bool:
        """A page matters while one of its alarms is active, unacknowledged and neither
        shelved nor suppressed; other messages until they are delivered."""
        return d.kind != "page" or any(self._pageable_id(i) for i in d.subjects)

    def _due(self, name: str) -> None:
        alarm_id, policy_name, round_, level = name.rsplit("#", 3)
        policy = next((p for p in self.ctx.cfg.notify.policies if p.name == policy_name), None)
        if policy is not None and int(level) < len(policy.levels):
            self._level(alarm_id, policy, int(round_), int(level))

    def _level(self, alarm_id: str, policy: Policy, round_: int, level: int) -> None:
        """Notify one level, having first stored when the next one is due (a restart then
        neither repeats this level nor forgets the next)."""
        alarm = self.ctx.alarms.alarms.get(alarm_id)
        if alarm is None or not _pageable(alarm):
            return
        step = policy.levels[level]
        if level + 1 < len(policy.levels):
            nxt: tuple[int, int] | None = (round_, level + 1)
        else:
            nxt = (round_ + 1, 0) if round_ < policy.repeat else None
        if nxt is not None:
            self.ctx.timers.arm("escalate", f"{alarm_id}#{policy.name}#{nxt[0]}#{nxt[1]}",
                                time.time() + step.wait)
        who = people(self.ctx.cfg, step.notify, datetime.now().astimezone())
        log.info("alarm %s: notifying level %d of %s: %s", alarm_id, level + 1, policy.name,
                 ", ".join(p.name for p in who) or "nobody")
        for person in who:
            self._page(alarm, person)

    # -- pacing: a storm becomes one message per person and group (monitor.notify.pacing) ---
    def _page(self, alarm: Alarm, person: Person) -> None:
        """A critical alarm is paged as ``urgent``: never held by the person limit."""
        cfg = self.ctx.cfg.notify
        found = self.ctx.facts.of(alarm)
        kind = URGENT if alarm.severity == Severity.CRITICAL else "page"
        self.pacer.pace(kind, person.name, "|".join(found[k] for k in cfg.group_by),
                        alarm.id, cfg.group_interval)

    def _notice(self, person: Person, event: AlarmEvent) -> None:
        """Tell a person paged for an alarm what became of it (grouped as pages are)."""
        self.pacer.pace("notice", person.name, "", asdict(event),
                        self.ctx.cfg.notify.group_interval)

    def _send(self, kind: str, name: str, items: list[Any]) -> bool:
        """One message to ``name`` of what the pacer held; False when none of it matters
        any more (every alarm to page for was handled meanwhile)."""
        person = self.ctx.cfg.person(name)
        if person is None:
            return False
        if kind in ("page", URGENT):
            alarms = [a for a in (self.ctx.alarms.alarms.get(i) for i in dict.fromkeys(items))
                      if a is not None and _pageable(a)]
            if not alarms:
                return False
            self._deliver("page", [a.id for a in alarms], [person], self._alarm_text(alarms),
                          urgent=any(a.severity == Severity.CRITICAL for a in alarms))
            return True
        events = [AlarmEvent(**item) for item in items]

        def compose(person: Person, form: str) -> tuple[str, str]:
            if len(events) == 1:
                return render("handled", person.language, form, message=events[0].message,
                              what=_handled(events[0], person.language))
            return render("handled_group", person.language, form, events=[
                {"message": e.message, "what": _handled(e, person.language)} for e in events])
        self._deliver("note", list(dict.fromkeys(e.alarm for e in events)), [person], compose)
        return True

    def _area(self, alarm: Alarm) -> str:
        """The label of the alarm's area ("" for none)."""
        name = self.ctx.facts.of(alarm)["area"]
        return next((a.label or a.name for a in self.ctx.cfg.areas if a.name == name), name)

    def _advice(self, alarm: Alarm, language: str) -> str:
        """What to do: the alarm's own advice, else to go and look."""
        defn = self.ctx.alarms.defs.get(alarm.id)
        return defn.advice if defn is not None and defn.advice else ADVICE[language]

    def ack_url(self, subject: str, person: str, occurrence: float | None = None) -> str:
        """A signed, expiring, single-use link that answers as ``person``: acknowledges an
        alarm (its id; ``occurrence``: when it was raised, the only occurrence it answers
        for), takes on an incident (``incident:ID``) or says they are safe in its roll call
        (``safe:ID``)."""
        cfg = self.ctx.cfg
        token = sign(self.key, subject, person, cfg.notify.link_lifetime,
                     occurrence=occurrence)
        return f"{public_base(cfg)}/ack/{token}"

    # -- messages ---------------------------------------------------------------------------
    def _alarm_text(self, alarms: list[Alarm]) -> Compose:
        """The page for one alarm (with the person's own link) or a group of them."""
        cfg = self.ctx.cfg
        first = alarms[0]
        area = self._area(first)
        dev = alarm_device(cfg, first)
        base = public_base(cfg)

        areas = Counter(self._area(a) for a in alarms)

        def compose(person: Person, form: str) -> tuple[str, str]:
            words = SEVERITY.get(person.language, SEVERITY["zh-CN"])
            if len(alarms) > 1:
                order = list(words)
                top = min((a.severity for a in alarms),
                          key=lambda s: order.index(s) if s in order else len(order))
                return render("group", person.language, form, severity=words.get(top, top),
                              area=area if len(areas) == 1 else "",
                              areas=areas.most_common() if len(areas) > 1 else [],
                              console=f"{base}/", alarms=[
                                  {"message": a.message, "raised": _local(a.raised_at)[11:]}
                                  for a in alarms])
            return render("alarm", person.language, form,
                          severity=words.get(first.severity, first.severity),
                          message=first.message, site=cfg.site.label or cfg.site.name,
                          area=area, device=(dev.label or dev.name) if dev else "",
                          raised=_local(first.raised_at),
                          since=spoken_duration(time.time() - (first.raised_at or time.time()),
                                                person.language),
                          advice=self._advice(first, person.language),
                          link=self.ack_url(first.id, person.name, first.raised_at))
        return compose

    async def _tell_paged(self, event: AlarmEvent) -> None:
        """Everyone paged for this alarm hears that it was acknowledged (or ended)."""
        if not self.ctx.cfg.notify.routes:
            return  # no route: nobody was paged, no need to look
        alarm = self.ctx.alarms.alarms.get(event.alarm)
        since = alarm.raised_at if alarm and alarm.raised_at else 0.0
        names = set(self.paged.get(event.alarm, ()))
        try:
            await self.ctx.store.committed()  # the pages sent so far are committed
            names |= set(await self.ctx.store.read(lambda c: journal.paged(c, event.alarm,
                                                                            since)))
        except StoreUnavailable:
            pass  # the disk refuses writes: this run's pages are known all the same
        for person in (self.ctx.cfg.person(n) for n in sorted(names)):
            if person is not None:
                self._notice(person, event)

    # -- delivery ---------------------------------------------------------------------------
    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        self.ctx.supervisor.run_once(self.name, coro)

    def _deliver(self, kind: str, subjects: list[str], who: list[Person], compose: Compose,
                 *, urgent: bool = False, drill: bool = False, batch: str | None = None,
                 step: str = "", also: Callable[[sqlite3.Connection], Any] | None = None
                 ) -> None:
        """One message to each person (who has contacts) on all their channels, in their
        language and each channel's form: deliveries that go on until they get through
        (``monitor.notify.delivery``). SMS gets the short form, as one text."""
        batch = batch or secrets.token_hex(8)
        self.deliveries.start([Delivery(batch, p.name, kind, subjects, _texts(compose, p),
                                        urgent=urgent,
                                        again=kind != "note", drill=drill, step=step)
                               for p in who if p.contacts], also)

    def _outcome(self, d: Delivery, what: str) -> None:
        """A delivery got through, or is failing: ``notify:failed`` holds while a page (for
        an alarm) or an incident message has reached nobody."""
        if d.kind == "note":
            return
        keys = d.subjects if d.kind == "page" else [d.batch]
        if what == "reached":
            for key in keys:
                alarm = self.ctx.alarms.alarms.get(key)
                if d.kind == "page" and alarm is not None and alarm.raised_at is not None:
                    self.reached[key] = alarm.raised_at
                self._heard(key)
        elif what == "dropped" and not self.deliveries.batch(d.batch):
            for key in keys:  # nothing is left to try: it no longer waits to be heard
                if d.kind != "page" or not self._pageable_id(key):
                    self._heard(key)
        elif what == "failing" and self.deliveries.silent(d.batch):
            for key in keys:
                if d.kind == "page" and self._heard_since_raised(key):
                    continue  # someone else got a page for this occurrence
                if d.kind == "page":
                    why = f"告警 {key} 的通知全部发送失败, 无人收到"
                else:
                    why = f"应急事件 {d.texts['long'][0]} 的通知无人收到"[:200]
                self._unheard(key, d.subjects[0], why, d.drill)

    def _unheard(self, key: str, subject: str, why: str, drill: bool) -> None:
        self.unheard[key] = (subject, why, drill)
        self.ctx.store.submit(lambda c: c.execute(
            "INSERT OR REPLACE INTO unheard VALUES (?, ?, ?, ?)", (key, subject, why, drill)))
        self._judge_failed()

    def _heard(self, key: str) -> None:
        if self.unheard.pop(key, None) is not None:
            self.ctx.store.submit(lambda c: c.execute("DELETE FROM unheard WHERE key = ?",
                                                      (key,)))
            self._judge_failed()

    def _judge_failed(self) -> None:
        """``notify:failed`` holds while any page or incident message has reached nobody;
        ``notify:drill_failed`` while a drill's message has."""
        for alarm_id, drill in ((FAILED, False), (FAILED_DRILL, True)):
            whys = [w for _, w, d in self.unheard.values() if d == drill]
            first = (whys[0] + (f" (另有 {len(whys) - 1} 条)" if len(whys) > 1 else "")
                     ) if whys else None
            self.ctx.alarms.set_condition(
                alarm_id, bool(whys), None, None,
                (f"【演练】{first}" if drill and first else first))

    def _record(self, d: Delivery, contact: Contact, ok: bool, detail: str, text: str) -> None:
        if d.kind == "page":
            for alarm_id in d.subjects:
                self.paged.setdefault(alarm_id, set()).add(d.person)
        self._record_row(d.subjects, d.person, contact.channel, ok, detail, text,
                         d.kind == "page", d.step)

    def _record_row(self, alarm_ids: list[str], person: str, channel: str, ok: bool,
                    detail: str, text: str, paging: bool, step: str = "") -> None:
        """One row per alarm the message was about (a grouped one is about several)."""
        now = time.time()
        if not ok:
            log.warning("alarm %s: %s via %s failed: %s", ", ".join(alarm_ids), person,
                        channel, detail)
        for alarm_id in alarm_ids:
            self.ctx.bus.publish(Notified(alarm_id, person, channel, ok, detail, now))
        self.ctx.store.submit(journal.Attempt(now, alarm_ids, person, channel, ok, detail, text,
                                              paging, step).write)

    async def close(self) -> None:
        await self.deliveries.close()
        await self.ctx.supervisor.finish(self.name, within=5)


def _texts(compose: Compose, person: Person) -> dict[str, list[str]]:
    """A message in each form for ``person``: long (title, body), and short as one text (SMS
    has no title)."""
    return {"long": list(compose(person, "long")),
            "short": ["", "\n".join(x for x in compose(person, "short") if x)]}


def _pageable(alarm: Alarm) -> bool:
    """Whether an alarm is still one to page for."""
    return alarm.active and not alarm.acked and alarm.shelved_until is None \
        and alarm.suppressed_by is None
