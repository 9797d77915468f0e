"""The page a link in a message opens: small, for a phone, in Chinese. It acknowledges an
alarm, takes on an incident (``incident:ID``), or answers a roll call (``safe:ID``). The
signed single-use link is its credential; once it has expired, the person's password (when
they have one) still answers with it. Every refused link or password is recorded."""

from __future__ import annotations

import asyncio
import html
import logging
import time
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from monitor.alarms.facts import alarm_device
from monitor.alarms.manager import AlarmError
from monitor.alarms.model import SEVERITY_TEXT
from monitor.core.bus import DeviceEvent
from monitor.core.context import Context
from monitor.core.credentials import Throttle, check_password
from monitor.notify.links import (
    EARLIER,
    EXPIRED,
    AckLink,
    LinkError,
    UsedLinks,
    link_key,
    same_occurrence,
    verify,
)
from monitor.playbooks.engine import (
    Ack,
    Confirm,
    Decide,
    Incident,
    Input,
    Safe,
    open_items,
    pending_approval,
)
from monitor.playbooks.model import RollCallStep
from monitor.playbooks.runtime import IncidentError, Incidents
from monitor.words.text import spoken_duration

log = logging.getLogger(__name__)

PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Vigil {title}</title>
<link rel="stylesheet" href="/web/pages.css"></head>
<body class="answer"><h1>Vigil {title}</h1><div class="box {tone}">{content}</div></body></html>"""
TITLES = {"alarm": "告警确认", "incident": "应急事件", "safe": "安全点名"}


SAID = {"this link is not one Vigil signed (altered or forged)":
        "此链接不是 Vigil 签发的 (已被改动或伪造)",
        EXPIRED: "此链接已过期, 请用最新消息中的链接或在控制台确认",
        "wrong password": "密码不正确",
        "too many wrong passwords": "密码错误次数过多, 请稍后再试或在控制台确认",
        "this link is damaged": "此链接已损坏",
        "this link was already used": "此链接已使用过",
        EARLIER: "此链接是该告警上一次发生时发出的; 告警已再次发生, "
                 "请用最新消息中的链接或在控制台确认",
        "the alarm or the person is no longer known": "告警或确认人已不存在"}
"""What the page says (the audit record keeps the English reason)."""


def _page(content: str, status: int = 200, tone: str = "", kind: str = "alarm"
          ) -> HTMLResponse:
    """``tone``: ``done`` (green), ``refused`` (red), or plain."""
    return HTMLResponse(PAGE.format(content=content, tone=tone, title=TITLES[kind]),
                        status_code=status)


def _subject(link: AckLink) -> tuple[str, str]:
    """(alarm | incident | safe, the alarm or incident id) the link answers."""
    kind, _, target = link.alarm.partition(":")
    return (kind, target) if kind in ("incident", "safe") else ("alarm", link.alarm)


def ack_router(ctx: Context, incidents: Incidents, used: UsedLinks) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    key = link_key(ctx.cfg.data_dir)
    throttle = Throttle(failures=5)
    """Wrong passwords per person on this page."""

    def refused(request: Request, why: str, link: AckLink | None = None) -> HTMLResponse:
        who = f" ({link.person}, 告警 {link.alarm})" if link else ""
        source = request.client.host if request.client else "?"
        ctx.bus.publish(DeviceEvent("vigil", "ACK_LINK_REFUSED", f"{why}{who}, from {source}",
                                    time.time()))
        return _page(f"<p><b>无法确认:</b> {html.escape(SAID.get(why, why))}</p>", 403,
                     "refused")

    async def checked(request: Request, token: str) -> AckLink | HTMLResponse:
        try:
            link = verify(key, token, expired_too=True)
        except LinkError as err:
            return refused(request, str(err))
        if expired(link) and hashed(link) is None:
            return refused(request, EXPIRED, link)
        if link.nonce in used:
            return refused(request, "this link was already used", link)
        kind, target = _subject(link)
        known = target in ctx.alarms.alarms if kind == "alarm" \
            else target in incidents.running
        if not known or ctx.cfg.person(link.person) is None:
            return refused(request, "the alarm or the person is no longer known", link)
        if kind == "alarm" and not same_occurrence(link, ctx.alarms.alarms[target].raised_at):
            return refused(request, EARLIER, link)
        return link

    def expired(link: AckLink) -> bool:
        return link.expires < time.time()

    def hashed(link: AckLink) -> str | None:
        person = ctx.cfg.person(link.person)
        return person.password_hash() if person is not None else None

    async def signed_in(request: Request, link: AckLink, password: str) -> HTMLResponse | None:
        """An expired link acknowledges only with its person's password."""
        if throttle.blocked(link.person):
            return refused(request, "too many wrong passwords", link)
        stored = hashed(link)
        if stored is None or not await asyncio.to_thread(check_password, stored, password):
            throttle.failed(link.person)
            return refused(request, "wrong password", link)
        return None

    def name_of(link: AckLink) -> str:
        person = ctx.cfg.person(link.person)
        return (person.label or person.name) if person else link.person

    def describe_incident(inc: Incident, name: str) -> str:
        pb = incidents.versions.get(inc.version)
        label = pb.label if pb else inc.playbook
        step = pb.step(inc.step) if pb and inc.step else None
        lines = [f"<p><b>{'【演练】' if inc.drill else ''}【{html.escape(label)}】</b></p>",
                 f"<p>开始: {time.strftime('%m-%d %H:%M', time.localtime(inc.started))}"
                 f" ({spoken_duration(time.time() - inc.started)}前)</p>"]
        if isinstance(step, RollCallStep):
            lines.append(f"<p><b>{html.escape(step.text)}</b></p>")
        elif step is not None:
            lines.append(f"<p>当前步骤: {html.escape(step.alias or step.id)}</p>")
        return "".join(lines) + f"<p>答复人: {html.escape(name)}</p>"

    def asks(link: AckLink, inc: Incident) -> dict[str, str]:
        """What the incident asks of this link's person now: ``do`` -> button text (take it
        on; confirm the items of their roles; decide an approval of their role; say they
        are safe)."""
        person = ctx.cfg.person(link.person)
        pb = incidents.versions.get(inc.version)
        if person is None or pb is None:
            return {}
        if _subject(link)[0] == "safe":
            asked = any(people.get(link.person, 0) is None for people in inc.rollcall.values())
            return {"safe": "我已安全"} if asked else {}
        out = {} if inc.acked is not None else {"ack": "确认收到并接手"}
        out |= {f"confirm:{i.id}": f"确认: {i.text}" for i in open_items(inc, pb)
                if i.role in person.roles}
        step = pending_approval(inc, pb)
        if step is not None and step.role in person.roles:
            out |= {f"approve:{step.id}": f"批准: {step.text}", f"reject:{step.id}": "不批准"}
        return out

    def incident_form(link: AckLink) -> HTMLResponse:
        kind, target = _subject(link)
        inc = incidents.running[target]
        head = describe_incident(inc, name_of(link))
        asked = asks(link, inc)
        if not asked:
            done = "您已确认安全" if kind == "safe" else (
                f"已由 {html.escape(inc.acked[0])} 接手, 没有需要您处理的事项"
                if inc.acked else "没有需要您处理的事项")
            return _page(head + f"<p>{done}。</p>", kind=kind)
        sign_in = ('<p>链接已过期。输入您的 Vigil 密码仍可答复:</p><input type="password" '
                   'name="password" autocomplete="current-password" required>'
                   if expired(link) else "")
        forms = "".join(f'<form method="post">{sign_in}<input type="hidden" name="do" '
                        f'value="{html.escape(do)}"><button type="submit">'
                        f'{html.escape(text)}</button></form>' for do, text in asked.items())
        return _page(head + forms, kind=kind)

    async def answer_incident(request: Request, link: AckLink, do: str) -> HTMLResponse:
        """Carry out one of the things asked (each once per link)."""
        kind, target = _subject(link)
        name = name_of(link)
        inc = incidents.running.get(target)
        if inc is None:
            return _page("<p>此事件已结束, 无需再答复。</p>", kind=kind)
        if f"{link.nonce}:{do}" in used:
            return refused(request, "this link was already used", link)
        if do not in asks(link, inc):
            return _page(describe_incident(inc, name) + "<p>这一项已经处理过, 或不需要您处理。"
                         "</p>", kind=kind)
        if not await used.use(f"{link.nonce}:{do}", link.alarm, link.person):
            return refused(request, "this link was already used", link)
        what, _, which = do.partition(":")
        inp: Input = Safe(link.person, name) if what == "safe" else Ack(name) \
            if what == "ack" else Confirm(which, name) if what == "confirm" \
            else Decide(which, name, what == "approve")
        try:
            inc = await incidents.act(target, inp)
        except IncidentError:
            return _page("<p>此事件已结束, 无需再答复。</p>", kind=kind)
        said = {"safe": "已记录: 您已安全", "ack": "已确认接手", "confirm": "已确认",
                "approve": "已批准", "reject": "已记录: 不批准"}[what]
        return _page(describe_incident(inc, name) + f"<p><b>{said}。</b></p>", tone="done",
                     kind=kind)

    def describe(link: AckLink) -> str:
        alarm = ctx.alarms.alarms[link.alarm]
        name = name_of(link)
        severity = SEVERITY_TEXT.get(alarm.severity, alarm.severity)
        dev = alarm_device(ctx.cfg, alarm)
        where = ctx.facts.of(alarm)["area"]
        area = next((a.label or a.name for a in ctx.cfg.areas if a.name == where), "")
        where = " / ".join(x for x in (area, (dev.label or dev.name) if dev else "") if x)
        defn = ctx.alarms.defs.get(alarm.id)
        lines = [f"<p><b>【{html.escape(severity)}】{html.escape(alarm.message)}</b></p>"]
        if where:
            lines.append(f"<p>位置: {html.escape(where)}</p>")
        if alarm.raised_at:
            since = spoken_duration(time.time() - alarm.raised_at)
            lines.append(f"<p>开始: {time.strftime('%m-%d %H:%M', time.localtime(alarm.raised_at))}"
                         f" ({since}前)</p>")
        if defn is not None and defn.advice:
            lines.append(f"<p>处置: {html.escape(defn.advice)}</p>")
        return "".join(lines) + f"<p>确认人: {html.escape(name)}</p>"

    @router.get("/ack/{token}", response_class=HTMLResponse)
    async def form(request: Request, token: str) -> HTMLResponse:
        link = await checked(request, token)
        if isinstance(link, HTMLResponse):
            return link
        if _subject(link)[0] != "alarm":
            return incident_form(link)
        alarm = ctx.alarms.alarms[link.alarm]
        if alarm.acked:
            return _page(describe(link) + f"<p>已由 {html.escape(alarm.acked_by or '')} "
                         f"确认, 无需再处理。</p>")
        sign_in = ('<p>链接已过期。输入您的 Vigil 密码仍可确认:</p><input type="password" '
                   'name="password" autocomplete="current-password" required>'
                   if expired(link) else "")
        return _page(describe(link) + f'<form method="post">{sign_in}<p>备注 (可选):</p>'
                     '<textarea name="note" rows="3" maxlength="1000"></textarea>'
                     '<button type="submit">确认告警</button></form>')

    @router.post("/ack/{token}", response_class=HTMLResponse)
    async def acknowledge(request: Request, token: str) -> HTMLResponse:
        link = await checked(request, token)
        if isinstance(link, HTMLResponse):
            return link
        fields = parse_qs((await request.body()).decode("utf-8", "replace"))
        if expired(link):
            wrong = await signed_in(request, link, fields.get("password", [""])[0])
            if wrong is not None:
                return wrong
        note = fields.get("note", [""])[0]
        note = "".join(ch for ch in note if ch.isprintable() or ch == "\n")[:1000]
        if _subject(link)[0] != "alarm":
            return await answer_incident(request, link, fields.get("do", [""])[0])
        if not await used.use(link.nonce, link.alarm, link.person):
            return refused(request, "this link was already used", link)
        who = name_of(link)
        try:
            await ctx.alarms.acknowledge(link.alarm, who, note)
        except AlarmError:
            alarm = ctx.alarms.alarms[link.alarm]
            return _page(describe(link) + f"<p>已由 {html.escape(alarm.acked_by or '')} 先行确认,"
                         f" 无需再处理。</p>")
        return _page(describe(link) + "<p><b>已确认。</b>所有收到通知的人都会收到确认消息。</p>",
                     tone="done")

    return router
