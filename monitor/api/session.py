"""Console sessions. A person of the directory signs in with name and password (in the demo,
with a one-time link) and gets a session cookie: HttpOnly, SameSite=Strict, Secure behind
TLS. Every request that changes something also carries the session's CSRF token in the
``X-CSRF-Token`` header (the guard checks both). Sessions are kept by the hash of their id
(``sessions`` table), so a restart signs nobody out and a copy of the database signs nobody
in. A session remembers a fingerprint of the password it was opened with: once the person's
password changes (at a reload), their sessions end. Failed sign-ins are rate-limited per
address and per person, and recorded as events."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import html
import ipaddress
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from monitor.core.bus import DeviceEvent
from monitor.core.context import Context
from monitor.core.credentials import Throttle, check_password
from monitor.core.schema import declare
from monitor.core.store import Store

TABLES = declare(__name__, """
CREATE TABLE IF NOT EXISTS sessions (key TEXT PRIMARY KEY, person TEXT NOT NULL,
                                     csrf TEXT NOT NULL, expires REAL NOT NULL,
                                     credential TEXT NOT NULL DEFAULT '');
""", (('sessions', 'credential', "TEXT NOT NULL DEFAULT ''"),))
"""The console sessions."""

COOKIE = "vigil_session"
LIFETIME = 12 * 3600.0
"""A shift: signed in for 12 hours."""
ONCE_LIFETIME = 600.0
SLOW_DOWN = 2.0
"""Seconds each answer for a name that failed 5 times waits."""


class SignIns:
    """Every sign-in by password (the form, HTTP Basic) in one place: 10 failures from an
    address within 10 minutes block that address for the rest of them; failures for one name
    slow its answers (2 s) but never lock its owner out, so nobody can keep the on-call
    person from signing in. Each failure is recorded (name and address, never the
    password)."""

    def __init__(self, record: Callable[[str], None]):
        self.record = record
        self.by_address, self.by_person = Throttle(), Throttle(failures=5)

    async def check(self, name: str, password: str, stored: str | None,
                    source: str) -> str | None:
        """None when the password is right; else ``busy`` or ``wrong``."""
        if self.by_address.blocked(source):
            self.record(f"too many failed sign-ins: {name[:64]!r}, from {source}")
            return "busy"
        if self.by_person.blocked(name):
            await asyncio.sleep(SLOW_DOWN)
        if stored is not None and await asyncio.to_thread(check_password, stored, password):
            return None
        self.by_address.failed(source)
        self.by_person.failed(name)
        self.record(f"wrong name or password: {name[:64]!r}, from {source}")
        return "wrong"


@dataclass(frozen=True)
class Session:
    person: str
    csrf: str
    expires: float
    credential: str = ""
    """A fingerprint of the password hash it was opened with ("" for none)."""

    def signed_with(self, stored: str | None) -> bool:
        """Whether the person's password is still the one this session was opened with."""
        return hmac.compare_digest(self.credential, fingerprint(stored))


def fingerprint(stored: str | None) -> str:
    """What a session keeps of a password hash: enough to tell it changed, nothing more."""
    return hashlib.sha256((stored or "").encode()).hexdigest()[:32] if stored else ""


def _key(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


class Sessions:
    def __init__(self, store: Store, lifetime: float = LIFETIME):
        self.store, self.lifetime = store, lifetime
        self.cache: dict[str, Session] = {}
        self.once: dict[str, tuple[str, float]] = {}

    async def open(self, person: str, stored: str | None) -> tuple[str, Session]:
        """A new session for ``person`` (``stored``: their password hash now), committed
        before it is handed out."""
        sid = secrets.token_urlsafe(32)
        session = Session(person, secrets.token_urlsafe(24), time.time() + self.lifetime,
                          fingerprint(stored))
        await self.store.call(lambda c: c.execute(
            "INSERT INTO sessions (key, person, csrf, expires, credential) "
            "VALUES (?, ?, ?, ?, ?)",
            (_key(sid), session.person, session.csrf, session.expires, session.credential)))
        self.cache[_key(sid)] = session
        return sid, session

    async def find(self, sid: str) -> Session | None:
        """The live session of a cookie, or None (unknown, ended or expired)."""
        key = _key(sid)
        session = self.cache.get(key)
        if session is None:  # unknown ids are not kept: made-up cookies fill no memory
            row = await self.store.read(lambda c: c.execute(
                "SELECT person, csrf, expires, credential FROM sessions WHERE key = ?",
                (key,)).fetchone())
            if row is None:
                return None
            session = self.cache[key] = Session(*row)
        if session.expires <= time.time():  # ended: forget it
            del self.cache[key]
            self.store.submit(lambda c: c.execute("DELETE FROM sessions WHERE key = ?", (key,)))
            return None
        return session

    async def close(self, sid: str) -> None:
        key = _key(sid)
        self.cache.pop(key, None)
        await self.store.call(lambda c: c.execute("DELETE FROM sessions WHERE key = ?", (key,)))

    def one_time(self, person: str) -> str:
        """A link's token that signs ``person`` in once, within 10 minutes (the demo)."""
        token = secrets.token_urlsafe(24)
        self.once[token] = (person, time.time() + ONCE_LIFETIME)
        return token

    def redeem(self, token: str) -> str | None:
        person, expires = self.once.pop(token, ("", 0.0))
        return person if expires > time.time() else None


PAGE = """<!doctype html><html lang="{lang}"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Vigil {title}</title>
<link rel="stylesheet" href="/web/pages.css"></head>
<body class="login"><h1>Vigil {title}</h1>{error}<form method="post" action="/login">
<label>{name}<input name="name" autocomplete="username" required></label>
<label>{password}<input type="password" name="password" autocomplete="current-password"
required></label><button type="submit">{title}</button></form></body></html>"""
WORDS = {"zh-CN": {"title": "登录", "name": "姓名 (通讯录中的名字)", "password": "密码",
                   "busy": "登录失败次数过多, 请 10 分钟后再试", "wrong": "姓名或密码不正确",
                   "used": "此登录链接无效或已使用, 请用姓名和密码登录",
                   "elsewhere": "请从本站的登录页登录"},
         "en": {"title": "Sign in", "name": "Name (as in the directory)", "password": "Password",
                "busy": "Too many failed sign-ins: try again in 10 minutes",
                "wrong": "Wrong name or password",
                "used": "This sign-in link is unknown or used: sign in with name and password",
                "elsewhere": "Sign in from this site's sign-in page"}}
"""The page's words: English for a browser that prefers it, else Chinese."""


def _page(request: Request, error: str = "", status: int = 200) -> HTMLResponse:
    lang = "en" if request.headers.get("accept-language", "").lower().startswith("en") \
        else "zh-CN"
    words = WORDS[lang]
    shown = f'<p class="err">{html.escape(words[error])}</p>' if error else ""
    return HTMLResponse(PAGE.format(lang=lang, error=shown, **{k: words[k] for k in (
        "title", "name", "password")}), status_code=status)


def public_origin(ctx: Context) -> str:
    """The origin people reach Vigil at through a proxy (``notify.public_url``), if any."""
    url = (ctx.cfg.notify.public_url or "").rstrip("/")
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/')[0]}" if rest else ""


def own_host(ctx: Context, host: str) -> bool:
    """Whether ``host`` (a Host header: name or address, maybe a port) is one of this site's
    names: an IP address, localhost, the API's listen name, ``notify.public_url``'s host, or
    one of ``api.hosts``, or this server's own host name. Another name pointed at this address
    (DNS rebinding) is not, nor an empty one."""
    name = host.strip().lower()
    if name.startswith("["):
        name = name[1:].partition("]")[0]
    elif name.count(":") == 1:
        name = name.partition(":")[0]
    name = name.rstrip(".")
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        pass
    cfg = ctx.cfg
    public = urlsplit(cfg.notify.public_url or "").hostname or ""
    return bool(name) and name in {
        "localhost", cfg.api.listen.lower(), public.lower(), *_own_names(),
        *((urlsplit(f"//{h}").hostname or "").rstrip(".") for h in cfg.api.hosts)}


@functools.cache
def _own_names() -> tuple[str, ...]:
    """This server's host name and fully qualified name."""
    return tuple({n.lower().rstrip(".") for n in (socket.gethostname(), socket.getfqdn()) if n})


def secure(request: Request, public_url: str | None) -> bool:
    """Whether cookies need ``Secure``: the request came over TLS, or the site's public
    address is https (TLS ends at a proxy in front)."""
    return request.url.scheme == "https" or (public_url or "").startswith("https://")


def session_router(ctx: Context, sessions: Sessions, sign_ins: SignIns) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    def signed_in(request: Request, sid: str, session: Session) -> Response:
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(COOKIE, sid, max_age=int(session.expires - time.time()),
                            httponly=True, samesite="strict", path="/",
                            secure=secure(request, ctx.cfg.notify.public_url))
        return response

    def refused(request: Request, name: str, why: str) -> None:
        source = request.client.host if request.client else "?"
        ctx.bus.publish(DeviceEvent("vigil", "LOGIN_FAILED",
                                    f"{why}: {name[:64]!r}, from {source}", time.time()))

    @router.get("/login", response_class=HTMLResponse)
    async def form(request: Request) -> HTMLResponse:
        return _page(request)

    @router.post("/login")
    async def login(request: Request) -> Response:
        origin = request.headers.get("origin")
        if origin is not None and origin not in (
                f"{request.url.scheme}://{request.url.netloc}", public_origin(ctx)):
            refused(request, "", "a sign-in posted from another site")
            return _page(request, "elsewhere", 403)
        fields = parse_qs((await request.body()).decode("utf-8", "replace"))
        name = fields.get("name", [""])[0].strip()
        password = fields.get("password", [""])[0]
        source = request.client.host if request.client else "?"
        person = ctx.cfg.person(name)
        stored = person.password_hash() if person is not None else None
        failed = await sign_ins.check(name, password, stored, source)
        if failed is not None:
            return _page(request, failed, 429 if failed == "busy" else 401)
        sid, session = await sessions.open(name, stored)
        return signed_in(request, sid, session)

    @router.get("/login/once/{token}")
    async def once(request: Request, token: str) -> Response:
        name = sessions.redeem(token)
        person = ctx.cfg.person(name) if name is not None else None
        if name is None or person is None:
            refused(request, name or "", "a one-time link that is unknown, used or expired")
            return _page(request, "used", 403)
        sid, session = await sessions.open(name, person.password_hash())
        return signed_in(request, sid, session)

    @router.post("/logout")
    async def logout(request: Request) -> Response:
        sid = request.cookies.get(COOKIE)
        if sid:
            await sessions.close(sid)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    return router
