"""Composition: each person's text of a page, a group of pages, a note of what became of an
alarm, or an incident's message, in their language and in each channel's form (long, or short
for SMS), with their own signed answer link. ``clock`` gives the time said ("3 分钟前")."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from datetime import datetime

from monitor.alarms.facts import alarm_device
from monitor.alarms.model import Alarm
from monitor.config.directory import Person
from monitor.config.model import SiteConfig
from monitor.core.bus import AlarmEvent, IncidentNotice
from monitor.core.context import Context
from monitor.notify.links import link_key, sign
from monitor.notify.templates import SEVERITY, render
from monitor.words.text import spoken_duration

Compose = Callable[[Person, str], tuple[str, str]]
"""(person, form) -> (title, body): each person's text in their language and form."""

ADVICE = {"zh-CN": "请到现场查看并处理, 处理后点链接确认", "en": "check on site, then acknowledge"}
"""What to do, for an alarm that says nothing more."""


def public_base(cfg: SiteConfig) -> str:
    """How phones reach Vigil: ``notify.public_url``, else the API's address."""
    return (cfg.notify.public_url or f"http://{cfg.api.listen}:{cfg.api.port}").rstrip("/")


def local(ts: float | None) -> str:
    return datetime.fromtimestamp(ts or time.time()).strftime("%Y-%m-%d %H:%M:%S")


def handled(event: AlarmEvent, language: str) -> str:
    """What happened to an alarm, said to whoever was paged for it."""
    if language == "en":
        return {"acknowledged": f"acknowledged by {event.who} at {local(event.ts)}"
                                + (f", note: {event.note}" if event.note else ""),
                "cleared": "cleared", "shelved": f"shelved by {event.who}",
                "suppressed": f"suppressed ({event.note})",
                "retired": "withdrawn (its device or rule left the configuration)"
                }.get(event.action, event.action)
    return {"acknowledged": f"已由 {event.who} 于 {local(event.ts)} 确认"
                            + (f", 备注: {event.note}" if event.note else ""),
            "cleared": "已恢复", "shelved": f"已由 {event.who} 搁置",
            "suppressed": f"已抑制 ({event.note})",
            "retired": "已撤销 (设备或规则已从配置中移除)"}.get(event.action, event.action)


def texts(compose: Compose, person: Person) -> dict[str, list[str]]:
    """A message in each form for ``person``: long (title, body), and short as one text (SMS
    has no title)."""
    return {"long": list(compose(person, "long")),
            "short": ["", "\n".join(x for x in compose(person, "short") if x)]}


class Composer:
    def __init__(self, ctx: Context, clock: Callable[[], float] = time.time):
        self.ctx, self.clock = ctx, clock
        self.key = link_key(ctx.cfg.data_dir)

    def ack_url(self, subject: str, person: str, occurrence: float | None = None) -> str:
        """A signed, expiring, single-use link that answers as ``person``: acknowledges an
        alarm (its id; ``occurrence``: when it was raised, the only occurrence it answers
        for), takes on an incident (``incident:ID``) or says they are safe in its roll call
        (``safe:ID``)."""
        cfg = self.ctx.cfg
        token = sign(self.key, subject, person, cfg.notify.link_lifetime,
                     now=self.clock(), occurrence=occurrence)
        return f"{public_base(cfg)}/ack/{token}"

    def area(self, alarm: Alarm) -> str:
        """The label of the alarm's area ("" for none)."""
        name = self.ctx.facts.of(alarm)["area"]
        return next((a.label or a.name for a in self.ctx.cfg.areas if a.name == name), name)

    def advice(self, alarm: Alarm, language: str) -> str:
        """What to do: the alarm's own advice, else to go and look."""
        defn = self.ctx.alarms.defs.get(alarm.id)
        return defn.advice if defn is not None and defn.advice else ADVICE[language]

    def alarms(self, alarms: list[Alarm]) -> Compose:
        """The page for one alarm (with the person's own link) or a group of them."""
        cfg = self.ctx.cfg
        first = alarms[0]
        area = self.area(first)
        dev = alarm_device(cfg, first)
        base = public_base(cfg)
        areas = Counter(self.area(a) for a in alarms)

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
                                  {"message": a.message, "raised": local(a.raised_at)[11:]}
                                  for a in alarms])
            now = self.clock()
            return render("alarm", person.language, form,
                          severity=words.get(first.severity, first.severity),
                          message=first.message, site=cfg.site.label or cfg.site.name,
                          area=area, device=(dev.label or dev.name) if dev else "",
                          raised=local(first.raised_at),
                          since=spoken_duration(now - (first.raised_at or now),
                                                person.language),
                          advice=self.advice(first, person.language),
                          link=self.ack_url(first.id, person.name, first.raised_at))
        return compose

    @staticmethod
    def handled(events: list[AlarmEvent]) -> Compose:
        """What became of the alarms a person was paged for (one note for several)."""
        def compose(person: Person, form: str) -> tuple[str, str]:
            if len(events) == 1:
                return render("handled", person.language, form, message=events[0].message,
                              what=handled(events[0], person.language))
            return render("handled_group", person.language, form, events=[
                {"message": e.message, "what": handled(e, person.language)} for e in events])
        return compose

    def incident(self, event: IncidentNotice, subject: str) -> Compose:
        """A playbook step's message, with the person's link to take the incident on (or, in
        a roll call, to say they are safe); a drill's says so."""
        console = f"{public_base(self.ctx.cfg)}/"

        def compose(person: Person, form: str) -> tuple[str, str]:
            return render("incident", person.language, form, drill=event.drill,
                          playbook=event.playbook, step=event.step, text=event.text,
                          cause=event.cause, incident=event.incident, console=console,
                          rollcall=event.rollcall, link=self.ack_url(subject, person.name))
        return compose
