"""The notifier: alarms reach people. It attaches through the runtime context: alarm
transitions come from the bus, every wait between escalation levels is a durable timer, and
every delivery attempt is recorded (``notifications`` table, ``Notified`` on the bus).

A raised alarm is routed to policies; each level notifies its targets (the on-call holder of a
role, a person, a group) on all their channels, then waits for an acknowledgement. An
acknowledgement, a clear, shelving or suppression stops every pending step at once, and whoever
was paged is told who acknowledged and when.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from monitor.alarms import Alarm, AlarmDef
from monitor.bus import AlarmEvent, IncidentNotice
from monitor.config.directory import Contact, Person
from monitor.config.model import Severity, SiteConfig
from monitor.config.notify import Policy, Target
from monitor.context import Context
from monitor.facts import alarm_device
from monitor.notify import channels
from monitor.notify.limits import RateLimiter
from monitor.notify.links import link_key, sign
from monitor.notify.pacing import Pacer
from monitor.notify.silences import Silences
from monitor.notify.templates import SEVERITY, render
from monitor.oncall import covers, on_call
from monitor.text import spoken_duration

log = logging.getLogger(__name__)

ADVICE = {"zh-CN": "请到现场查看并处理, 处理后点链接确认", "en": "check on site, then acknowledge"}
"""What to do, for an alarm that says nothing more."""
RESEND_MAX = 600.0
"""The longest wait between pages to someone no channel reached."""
STOPS = ("acknowledged", "cleared", "shelved", "suppressed", "retired")
FAILED = "notify:failed"


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


class Notifier:
    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.tasks: set[asyncio.Task[None]] = set()
        self.key = link_key(ctx.cfg.data_dir)
        self.limiter = RateLimiter()
        self.pacer = Pacer(ctx, self._send)
        ctx.timers.on("escalate", self._due)
        ctx.timers.on("resend", self._resend_due)
        ctx.timers.on("notice", self._notice_due)
        self.unsent: dict[str, int] = {}
        """Incident message key -> times it reached nobody in a row."""
        self.unheard: dict[str, str] = {}
        """Alarm id or incident message key -> why ``notify:failed`` holds for it."""
        self.unreached: dict[str, int] = {}
        """``alarm#person`` -> pages in a row that reached that person on no channel."""
        ctx.alarms.define(AlarmDef(FAILED, Severity.CRITICAL, "通知发送全部失败, 无人收到告警"))
        self.subscription = ctx.bus.subscribe("notifier", self.on_event,
                                              kinds=(AlarmEvent, IncidentNotice))
        self.silences = Silences(ctx, self._announce)

    async def load(self) -> None:
        """Take back the maintenance windows and what was held back for pacing."""
        await self.silences.load()
        await self.pacer.load()

    # -- what happens to alarms -----------------------------------------------------------
    def on_event(self, event: AlarmEvent | IncidentNotice) -> None:
        if isinstance(event, IncidentNotice):
            self._incident_notice(event)
            return
        if event.alarm == FAILED:
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
        safe. In a drill every message says so."""
        cfg = self.ctx.cfg
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
        self._spawn(self._told(event, who, compose))

    async def _told(self, event: IncidentNotice, who: list[Person], compose: Compose) -> None:
        """Deliver; a message that reached nobody (or found nobody holding its roles) is
        recorded so, raises ``notify:failed``, and goes again later, until it gets through
        (its ``notices`` row stays until then)."""
        missed: list[str] = []
        if who:
            got = await self._deliver([event.incident], who, compose, paging=False)
            reached = any(got)
            missed = [p.name for p, ok in zip(who, got, strict=True) if not ok and p.contacts]
        else:
            reached = False
            roles = ", ".join(event.roles) or ", ".join(event.people)
            self._record([event.incident], "", "none", False, f"无人可通知 (角色: {roles})",
                         event.text, False)
        key = event.key or event.incident
        if reached:
            self.unheard.pop(key, None)
        else:
            self.unheard[key] = f"应急事件 {event.playbook} 的通知无人收到: {event.text}"[:200]
        self._judge_failed()
        if not event.key:
            return
        if reached:
            self.unsent.pop(event.key, None)
            self.ctx.store.submit(lambda c: c.execute("DELETE FROM notices WHERE key = ?",
                                                      (event.key,)))
            if missed:  # the others heard it: those it missed get it again, as for a page
                self._again(replace(event, roles=(), people=tuple(missed),
                                    key=secrets.token_hex(8)))
            return
        self._again(event)

    def _again(self, event: IncidentNotice) -> None:
        """``event`` (stored in ``notices``) goes again later, each time later up to
        ``RESEND_MAX``."""
        if event.key not in self.unsent:
            row = (event.key, json.dumps(asdict(event), ensure_ascii=False))
            self.ctx.store.submit(lambda c: c.execute(
                "INSERT OR IGNORE INTO notices VALUES (?, ?)", row))
        n = self.unsent[event.key] = self.unsent.get(event.key, 0) + 1
        self.ctx.timers.arm("notice", event.key, self._again_at(n))

    def _notice_due(self, key: str) -> None:
        """An incident message that reached nobody goes again (if it is still undelivered)."""
        async def again() -> None:
            row = await self.ctx.store.read(lambda c: c.execute(
                "SELECT data FROM notices WHERE key = ?", (key,)).fetchone())
            if row is not None:
                self._incident_notice(IncidentNotice.from_json(row[0]))
        self._spawn(again())

    def _start(self, alarm_id: str) -> None:
        alarm = self.ctx.alarms.alarms.get(alarm_id)
        if alarm is None:
            return
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
        """Stop every pending escalation step and resend of ``alarm_id``."""
        for kind in ("escalate", "resend"):
            for name in self.ctx.timers.pending(kind):
                if name.split("#")[0] == alarm_id:
                    self.ctx.timers.cancel(kind, name)
                    self.unreached.pop(name, None)
        if self.unheard.pop(alarm_id, None) is not None:  # handled: nobody is to be paged
            self._judge_failed()

    def _keep_trying(self, alarm_ids: list[str], person: Person, reached: bool) -> None:
        """A page that reached its person on no channel goes again later (a durable timer),
        until it gets through or the alarm is handled."""
        for alarm_id in alarm_ids:
            key = f"{alarm_id}#{person.name}"
            if reached:
                self.unreached.pop(key, None)
                continue
            n = self.unreached[key] = self.unreached.get(key, 0) + 1
            self.ctx.timers.arm("resend", key, self._again_at(n))

    def _again_at(self, misses: int) -> float:
        """When a message that reached nobody ``misses`` times in a row goes again: after
        ``notify.resend``, doubling each time, at most every ``RESEND_MAX``."""
        return time.time() + min(self.ctx.cfg.notify.resend * 2 ** (misses - 1), RESEND_MAX)

    def _resend_due(self, key: str) -> None:
        alarm_id, _, name = key.rpartition("#")
        alarm = self.ctx.alarms.alarms.get(alarm_id)
        person = self.ctx.cfg.person(name)
        if alarm is not None and person is not None and alarm.active and not alarm.acked \
                and alarm.shelved_until is None and alarm.suppressed_by is None:
            self._page(alarm, person)

    def _due(self, name: str) -> None:
        alarm_id, policy_name, round_, level = name.rsplit("#", 3)
        policy = next((p for p in self.ctx.cfg.notify.policies if p.name == policy_name), None)
        if policy is not None and int(level) < len(policy.levels):
            self._level(alarm_id, policy, int(round_), int(level))

    def _level(self, alarm_id: str, policy: Policy, round_: int, level: int) -> None:
        """Notify one level, having first stored when the next one is due (a restart then
        neither repeats this level nor forgets the next)."""
        alarm = self.ctx.alarms.alarms.get(alarm_id)
        if alarm is None or not alarm.active or alarm.acked or alarm.shelved_until is not None \
                or alarm.suppressed_by is not None:
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
        cfg = self.ctx.cfg.notify
        found = self.ctx.facts.of(alarm)
        self.pacer.pace("page", person.name, "|".join(found[k] for k in cfg.group_by),
                        alarm.id, cfg.group_interval)

    def _notice(self, person: Person, event: AlarmEvent) -> None:
        """Tell a person paged for an alarm what became of it."""
        self.pacer.pace("notice", person.name, "", asdict(event), 0.0)

    def _send(self, kind: str, name: str, items: list[Any]) -> bool:
        """One message to ``name`` of what the pacer held; False when none of it matters
        any more (every alarm to page for was handled meanwhile)."""
        person = self.ctx.cfg.person(name)
        if person is None:
            return False
        if kind == "page":
            alarms = [a for a in (self.ctx.alarms.alarms.get(i) for i in dict.fromkeys(items))
                      if a is not None and a.active and not a.acked]
            if not alarms:
                return False
            self._spawn(self._deliver([a.id for a in alarms], [person],
                                      self._alarm_text(alarms), paging=True))
            return True
        events = [AlarmEvent(**item) for item in items]

        def compose(person: Person, form: str) -> tuple[str, str]:
            if len(events) == 1:
                return render("handled", person.language, form, message=events[0].message,
                              what=_handled(events[0], person.language))
            return render("handled_group", person.language, form, events=[
                {"message": e.message, "what": _handled(e, person.language)} for e in events])
        self._spawn(self._deliver(list(dict.fromkeys(e.alarm for e in events)), [person],
                                  compose, paging=False))
        return True

    def _advice(self, alarm: Alarm, language: str) -> str:
        """What to do: the alarm's own advice, else to go and look."""
        defn = self.ctx.alarms.defs.get(alarm.id)
        return defn.advice if defn is not None and defn.advice else ADVICE[language]

    def ack_url(self, subject: str, person: str) -> str:
        """A signed, expiring, single-use link that answers as ``person``: acknowledges an
        alarm (its id), takes on an incident (``incident:ID``) or says they are safe in its
        roll call (``safe:ID``)."""
        cfg = self.ctx.cfg
        token = sign(self.key, subject, person, cfg.notify.link_lifetime)
        return f"{public_base(cfg)}/ack/{token}"

    # -- messages ---------------------------------------------------------------------------
    def _alarm_text(self, alarms: list[Alarm]) -> Compose:
        """The page for one alarm (with the person's own link) or a group of them."""
        cfg = self.ctx.cfg
        first = alarms[0]
        found = self.ctx.facts.of(first)
        area = next((a.label or a.name for a in cfg.areas if a.name == found["area"]), "")
        dev = alarm_device(cfg, first)
        base = public_base(cfg)

        def compose(person: Person, form: str) -> tuple[str, str]:
            words = SEVERITY.get(person.language, SEVERITY["zh-CN"])
            if len(alarms) > 1:
                order = list(words)
                top = min((a.severity for a in alarms),
                          key=lambda s: order.index(s) if s in order else len(order))
                return render("group", person.language, form, severity=words.get(top, top),
                              area=area, console=f"{base}/", alarms=[
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
                          link=self.ack_url(first.id, person.name))
        return compose

    async def _tell_paged(self, event: AlarmEvent) -> None:
        """Everyone paged for this alarm hears that it was acknowledged (or ended)."""
        if not self.ctx.cfg.notify.routes:
            return  # no route: nobody was paged, no need to look
        alarm = self.ctx.alarms.alarms.get(event.alarm)
        since = alarm.raised_at if alarm and alarm.raised_at else 0.0
        await self.ctx.store.call(lambda c: None)  # the pages sent so far are committed
        names = await self.ctx.store.read(lambda c: [n for (n,) in c.execute(
            "SELECT DISTINCT person FROM notifications WHERE alarm = ? AND ts >= ? AND paging",
            (event.alarm, since))])
        for person in (self.ctx.cfg.person(n) for n in names):
            if person is not None:
                self._notice(person, event)

    # -- delivery ---------------------------------------------------------------------------
    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _deliver(self, alarm_ids: list[str], who: list[Person], compose: Compose, *,
                       paging: bool) -> list[bool]:
        """Each person on all their channels (their fallback ones when every other failed),
        in their language and the channel's form; ``notify:failed`` when a page reached
        nobody. Whether each person was reached."""
        reached = await asyncio.gather(*(self._to_person(alarm_ids, p, compose, paging)
                                         for p in who))
        if paging and any(p.contacts for p in who):
            for alarm_id in alarm_ids:
                if any(reached):
                    self.unheard.pop(alarm_id, None)
                else:
                    self.unheard[alarm_id] = f"告警 {alarm_id} 的通知全部发送失败, 无人收到"
            self._judge_failed()
            for person, got in zip(who, reached, strict=True):
                if person.contacts:
                    self._keep_trying(alarm_ids, person, got)
        return reached

    def _judge_failed(self) -> None:
        """``notify:failed`` holds while any page or incident message has reached nobody."""
        first = next(iter(self.unheard.items()), None)
        self.ctx.alarms.set_condition(
            FAILED, first is not None, first[0] if first else None, None,
            (first[1] + (f" (另有 {len(self.unheard) - 1} 条)" if len(self.unheard) > 1
                         else "")) if first else None)

    async def _to_person(self, alarm_ids: list[str], person: Person, compose: Compose,
                         paging: bool) -> bool:
        for contacts in ([c for c in person.contacts if not c.fallback],
                         [c for c in person.contacts if c.fallback]):
            if contacts and any(await asyncio.gather(*(
                    self._attempts(alarm_ids, person, c, compose, paging)
                    for c in contacts))):
                return True
        return False

    async def _attempts(self, alarm_ids: list[str], person: Person, contact: Contact,
                        compose: Compose, paging: bool) -> bool:
        """Send with retries and backoff, within the channel's rate limit; each attempt
        recorded. SMS gets the short form."""
        cfg = self.ctx.cfg.notify
        url = contact.resolved()
        if contact.channel == "sms":  # one text, no title: what a phone shows
            title, body = "", "\n".join(x for x in compose(person, "short") if x)
        else:
            title, body = compose(person, "long")
        delay = cfg.retry_delay
        for attempt in range(1, cfg.retries + 2):
            await self.limiter.turn(url, channels.scheme(url))
            sent = await channels.send(url, title, body, cfg.timeout)
            detail = sent.detail if attempt == 1 else f"{sent.detail} (attempt {attempt})"
            self._record(alarm_ids, person.name, contact.channel, sent.ok, detail,
                         f"{title}\n{body}", paging)
            if sent.ok:
                return True
            if attempt <= cfg.retries:
                await asyncio.sleep(delay)
                delay *= 2
        return False

    def _record(self, alarm_ids: list[str], person: str, channel: str, ok: bool, detail: str,
                text: str, paging: bool) -> None:
        """One row per alarm the message was about (a grouped one is about several)."""
        now = time.time()
        if not ok:
            log.warning("alarm %s: %s via %s failed: %s", ", ".join(alarm_ids), person,
                        channel, detail)
        for alarm_id in alarm_ids:
            self.ctx.bus.publish(Notified(alarm_id, person, channel, ok, detail, now))
        self.ctx.store.submit(lambda c: c.executemany(
            "INSERT INTO notifications (ts, alarm, person, channel, ok, detail, text, paging) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(now, a, person, channel, ok, detail, text, paging) for a in alarm_ids]))

    async def close(self) -> None:
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=5)
