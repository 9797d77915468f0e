"""The acknowledgement page a link in a message opens: small, for a phone, in Chinese. The
signed single-use link is its credential; once it has expired, the person's password (when
they have one) still acknowledges with it. Every refused link or password is recorded."""

from __future__ import annotations

import asyncio
import html
import logging
import sqlite3
import time
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from monitor.alarms import SEVERITY_TEXT, AlarmError
from monitor.bus import DeviceEvent
from monitor.context import Context
from monitor.credentials import Throttle, check_password
from monitor.facts import alarm_device
from monitor.notify.links import EXPIRED, AckLink, LinkError, link_key, verify
from monitor.text import spoken_duration

log = logging.getLogger(__name__)

PAGE = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Vigil 告警确认</title>
<style>body{{font-family:system-ui,"Noto Sans CJK SC",sans-serif;margin:1em auto;padding:0 1em;
max-width:36em;font-size:18px}}
.box{{border-radius:8px;padding:1em;background:{bg}}}textarea,input{{width:100%;box-sizing:border-box;font-size:16px}}
button{{font-size:20px;padding:.5em 1.5em;margin-top:.8em}}</style></head>
<body><h1>Vigil 告警确认</h1><div class="box">{content}</div></body></html>"""


SAID = {"this link is not one Vigil signed (altered or forged)":
        "此链接不是 Vigil 签发的 (已被改动或伪造)",
        EXPIRED: "此链接已过期, 请用最新消息中的链接或在控制台确认",
        "wrong password": "密码不正确",
        "too many wrong passwords": "密码错误次数过多, 请稍后再试或在控制台确认",
        "this link is damaged": "此链接已损坏",
        "this link was already used": "此链接已使用过",
        "the alarm or the person is no longer known": "告警或确认人已不存在"}
"""What the page says (the audit record keeps the English reason)."""


def _page(content: str, status: int = 200, bg: str = "#f4f4f4") -> HTMLResponse:
    return HTMLResponse(PAGE.format(content=content, bg=bg), status_code=status)


def ack_router(ctx: Context) -> APIRouter:
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
                     "#fde0e0")

    async def checked(request: Request, token: str) -> AckLink | HTMLResponse:
        try:
            link = verify(key, token, expired_too=True)
        except LinkError as err:
            return refused(request, str(err))
        if expired(link) and hashed(link) is None:
            return refused(request, EXPIRED, link)
        used = await ctx.store.read(lambda c: c.execute(
            "SELECT used FROM ack_links WHERE nonce = ?", (link.nonce,)).fetchone())
        if used is not None:
            return refused(request, "this link was already used", link)
        if link.alarm not in ctx.alarms.alarms or ctx.cfg.person(link.person) is None:
            return refused(request, "the alarm or the person is no longer known", link)
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

    def describe(link: AckLink) -> str:
        alarm = ctx.alarms.alarms[link.alarm]
        person = ctx.cfg.person(link.person)
        name = person.label or person.name if person else link.person
        severity = SEVERITY_TEXT.get(alarm.severity, alarm.severity)
        dev = alarm_device(ctx.cfg, alarm)
        area = next((a.label or a.name for a in ctx.cfg.areas if dev and a.name == dev.area), "")
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
        try:
            await ctx.store.call(lambda c: c.execute(
                "INSERT INTO ack_links VALUES (?, ?, ?, ?)",
                (link.nonce, time.time(), link.alarm, link.person)))
        except sqlite3.IntegrityError:
            return refused(request, "this link was already used", link)
        person = ctx.cfg.person(link.person)
        who = (person.label or person.name) if person else link.person
        try:
            await ctx.alarms.acknowledge(link.alarm, who, note)
        except AlarmError:
            alarm = ctx.alarms.alarms[link.alarm]
            return _page(describe(link) + f"<p>已由 {html.escape(alarm.acked_by or '')} 先行确认,"
                         f" 无需再处理。</p>")
        return _page(describe(link) + "<p><b>已确认。</b>所有收到通知的人都会收到确认消息。</p>",
                     bg="#e2f5e6")

    return router
