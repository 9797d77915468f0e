"""The notifier: alarms reach people. It runs the stages, as Alertmanager does: routing
(``routing``), the escalation machine (``escalation``), incident messages (``incidents``),
composition (``compose``), pacing (``pacing``) and delivery with retry and fallback
(``delivery``); here they are wired together, and what reached nobody is judged:
``notify:failed`` holds while a page or an incident message has reached nobody.

It attaches through the runtime context: alarm transitions come from the bus, every wait is
a durable timer, and every delivery attempt is recorded (``journal``, ``Notified`` on the bus).
An acknowledgement, a clear, shelving or suppression stops every pending step at once, and
whoever was paged is told who acknowledged and when.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
import time
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass
from typing import Any

from monitor.alarms.model import Alarm, AlarmDef
from monitor.config.directory import Contact, Person
from monitor.config.model import Severity
from monitor.core.bus import AlarmEvent, IncidentMilestone, IncidentNotice
from monitor.core.context import Context
from monitor.core.part import Part
from monitor.core.schema import declare
from monitor.core.store import StoreUnavailable
from monitor.notify import journal
from monitor.notify.compose import Compose, Composer, texts
from monitor.notify.delivery import Deliveries, Delivery
from monitor.notify.escalation import Escalation, pageable
from monitor.notify.incidents import IncidentMessages
from monitor.notify.links import UsedLinks
from monitor.notify.pacing import URGENT, Pacer
from monitor.notify.silences import Silences
from monitor.playbooks import records
from monitor.words.alarms import said

log = logging.getLogger(__name__)

TABLES = declare(__name__, """
CREATE TABLE IF NOT EXISTS unheard (key TEXT PRIMARY KEY, subject TEXT NOT NULL,
                                    why TEXT NOT NULL, drill INTEGER NOT NULL);
""")
"""What reached nobody: the alarm or incident message ``notify:failed`` holds for."""

STOPS = ("acknowledged", "cleared", "shelved", "suppressed", "retired")
FAILED = "notify:failed"
FAILED_DRILL = "notify:drill_failed"
"""A drill's message reached nobody: the drill's finding, labelled, ended with the drill."""


@dataclass(frozen=True)
class Notified:
    """One delivery attempt to one person over one channel."""

    alarm: str
    person: str
    channel: str
    ok: bool
    detail: str
    ts: float


class Notifier(Part):
    name = "notifier"

    def __init__(self, ctx: Context, clock: Callable[[], float] = time.time):
        self.ctx, self.clock = ctx, clock
        self.composer = Composer(ctx, clock)
        self.pacer = Pacer(ctx, self._send)
        self.deliveries = Deliveries(ctx, self._record, self._outcome, self._wanted,
                                     self._renew)
        self.silences = Silences(ctx, lambda alarm_ids: self.escalation.announce(alarm_ids))
        self.escalation = Escalation(ctx, self.silences, self._page, clock)
        self.incident_messages = IncidentMessages(ctx, self.composer, self.deliveries, self,
                                                  self._deliver, self._nobody, self._spawn,
                                                  clock)
        self.links = UsedLinks(ctx.store)
        self.reached: dict[str, float] = {}
        """Alarm id -> when the occurrence was raised that a page for it reached someone."""
        self.paged: dict[str, set[str]] = {}
        """Alarm id -> who was paged for its occurrence in this run (the journal says it
        too, once committed: a full disk may hold that back)."""
        self.failures: dict[str, tuple[str, str, bool]] = {}
        """Alarm id or incident message key -> (subject, why ``notify:failed`` holds for it,
        whether it is a drill's); kept in ``unheard``."""
        lang = ctx.cfg.site.language
        ctx.alarms.define(AlarmDef(FAILED, Severity.CRITICAL, said(FAILED, lang)))
        ctx.alarms.define(AlarmDef(FAILED_DRILL, Severity.MINOR, said(FAILED_DRILL, lang)))
        self.subscription = ctx.bus.subscribe("notifier", self.on_event,
                                              kinds=(AlarmEvent, IncidentNotice,
                                                     IncidentMilestone))

    async def load(self) -> None:
        """Take back the maintenance windows, the used links, what was held back for pacing,
        the deliveries under way and the messages that reached nobody."""
        await self.silences.load()
        await self.links.load()
        await self.pacer.load()
        await self.deliveries.load()
        for name in self.ctx.timers.pending("resend"):  # an earlier version's resends: the
            self.ctx.timers.cancel("resend", name)     # deliveries' rounds do this now
        rows = await self.ctx.store.read(lambda c: c.execute(
            "SELECT key, subject, why, drill FROM unheard").fetchall())
        self.failures = {key: (subject, why, bool(drill)) for key, subject, why, drill in rows}
        raised = {a.id: a.raised_at for a in self.ctx.alarms.alarms.values()
                  if a.active and a.raised_at is not None}
        reached = await self.ctx.store.read(lambda c: {  # this occurrence's
            alarm: journal.last_reached(c, alarm, since) for alarm, since in raised.items()})
        self.reached = {alarm: at for alarm, at in reached.items() if at is not None}
        closed = await self.ctx.store.read(records.closed_drills)
        drills = {d.subjects[0] for d in self.deliveries.active.values()
                  if d.kind == "incident"} | {s for s, _, drill in self.failures.values()
                                              if drill}
        for incident in drills & set(closed):  # closed before its end reached the notifier
            self.incident_messages.drill_over(incident, started=False)
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
                         [(k, s, w, int(d)) for k, (s, w, d) in self.failures.items()])

    # -- what happens to alarms and incidents ----------------------------------------------
    def on_event(self, event: AlarmEvent | IncidentNotice | IncidentMilestone) -> None:
        if isinstance(event, IncidentNotice):
            self.incident_messages.tell(event)
            return
        if isinstance(event, IncidentMilestone):
            if event.kind == "closed" and event.drill:
                self.incident_messages.drill_over(event.incident)
            return
        if event.alarm in (FAILED, FAILED_DRILL):
            return  # said on the console and /health; a page about paging reaches no one
        if (event.action == "raised" and event.state == "active_unacknowledged") or (
                event.action == "unsuppressed" and event.active and not event.acked):
            self.paged.pop(event.alarm, None)  # a new occurrence
            self.escalation.start(event.alarm)
        elif event.action in STOPS:
            self.escalation.stop(event.alarm)
            self.deliveries.drop(lambda d: d.kind == "page" and event.alarm in d.subjects
                                 and not self._wanted(d))
            self.heard(event.alarm)  # handled: nobody is to be paged
            self._spawn(self._tell_paged(event))

    def _pageable_id(self, alarm_id: str) -> bool:
        alarm = self.ctx.alarms.alarms.get(alarm_id)
        return alarm is not None and pageable(alarm)

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
                  if a is not None and pageable(a)]
        if d.kind != "page" or person is None or not alarms:
            return None
        return texts(self.composer.alarms(alarms), person)

    def _wanted(self, d: Delivery) -> bool:
        """A page matters while one of its alarms is active, unacknowledged and neither
        shelved nor suppressed; other messages until they are delivered."""
        return d.kind != "page" or any(self._pageable_id(i) for i in d.subjects)

    # -- pacing: a storm becomes one message per person and group (monitor.notify.pacing) ---
    def _page(self, alarm: Alarm, person: Person) -> None:
        """A critical alarm is paged as ``urgent``: never held by the person limit."""
        cfg = self.ctx.cfg.notify
        found = self.ctx.facts.of(alarm)
        kind = URGENT if alarm.severity == Severity.CRITICAL else "page"
        self.pacer.pace(kind, person.name, "|".join(found[k] for k in cfg.group_by),
                        alarm.id, cfg.group_interval)

    def _send(self, kind: str, name: str, items: list[Any]) -> bool:
        """One message to ``name`` of what the pacer held; False when none of it matters
        any more (every alarm to page for was handled meanwhile)."""
        person = self.ctx.cfg.person(name)
        if person is None:
            return False
        if kind in ("page", URGENT):
            alarms = [a for a in (self.ctx.alarms.alarms.get(i) for i in dict.fromkeys(items))
                      if a is not None and pageable(a)]
            if not alarms:
                return False
            self._deliver("page", [a.id for a in alarms], [person], self.composer.alarms(alarms),
                          urgent=any(a.severity == Severity.CRITICAL for a in alarms))
            return True
        events = [AlarmEvent(**item) for item in items]
        self._deliver("note", list(dict.fromkeys(e.alarm for e in events)), [person],
                      self.composer.handled(events))
        return True

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
                self.pacer.pace("notice", person.name, "", asdict(event),
                                self.ctx.cfg.notify.group_interval)

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
        self.deliveries.start([Delivery(batch, p.name, kind, subjects, texts(compose, p),
                                        urgent=urgent,
                                        again=kind != "note", drill=drill, step=step)
                               for p in who if p.contacts], also)

    def _nobody(self, event: IncidentNotice) -> None:
        """An incident message found nobody holding its roles: on record so."""
        roles = ", ".join(event.roles) or ", ".join(event.people)
        self._record_row([event.incident], "", "none", False,
                         said("notify.no_one_holds", self.ctx.cfg.site.language, roles=roles),
                         event.text, False, event.step_id)

    # -- what reached nobody ------------------------------------------------------------
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
                self.heard(key)
        elif what == "dropped" and not self.deliveries.batch(d.batch):
            for key in keys:  # nothing is left to try: it no longer waits to be heard
                if d.kind != "page" or not self._pageable_id(key):
                    self.heard(key)
        elif what == "failing" and self.deliveries.silent(d.batch):
            for key in keys:
                if d.kind == "page" and self._heard_since_raised(key):
                    continue  # someone else got a page for this occurrence
                lang = self.ctx.cfg.site.language
                why = said("notify.page_failed", lang, alarm=key) if d.kind == "page" else \
                    said("notify.incident_failed", lang, title=d.texts["long"][0])[:200]
                self.unheard(key, d.subjects[0], why, d.drill)

    def unheard(self, key: str, subject: str, why: str, drill: bool) -> None:
        """``key`` (an alarm, or an incident message) reached nobody."""
        self.failures[key] = (subject, why, drill)
        self.ctx.store.submit(lambda c: c.execute(
            "INSERT OR REPLACE INTO unheard VALUES (?, ?, ?, ?)", (key, subject, why, drill)))
        self._judge_failed()

    def heard(self, key: str) -> None:
        if self.failures.pop(key, None) is not None:
            self.ctx.store.submit(lambda c: c.execute("DELETE FROM unheard WHERE key = ?",
                                                      (key,)))
            self._judge_failed()

    def keys_of(self, subject: str) -> list[str]:
        """The failures of one alarm or incident."""
        return [k for k, (s, _, _) in self.failures.items() if s == subject]

    def _judge_failed(self) -> None:
        """``notify:failed`` holds while any page or incident message has reached nobody;
        ``notify:drill_failed`` while a drill's message has."""
        for alarm_id, drill in ((FAILED, False), (FAILED_DRILL, True)):
            lang = self.ctx.cfg.site.language
            whys = [w for _, w, d in self.failures.values() if d == drill]
            first = (whys[0] + (said("notify.more", lang, n=len(whys) - 1)
                                if len(whys) > 1 else "")) if whys else None
            self.ctx.alarms.set_condition(
                alarm_id, bool(whys), None, None,
                (said("notify.drill", lang, text=first) if drill and first else first))

    def _record(self, d: Delivery, contact: Contact, ok: bool, detail: str, text: str) -> None:
        if d.kind == "page":
            for alarm_id in d.subjects:
                self.paged.setdefault(alarm_id, set()).add(d.person)
        self._record_row(d.subjects, d.person, contact.channel, ok, detail, text,
                         d.kind == "page", d.step)

    def _record_row(self, alarm_ids: list[str], person: str, channel: str, ok: bool,
                    detail: str, text: str, paging: bool, step: str = "") -> None:
        """One row per alarm the message was about (a grouped one is about several)."""
        now = self.clock()
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
