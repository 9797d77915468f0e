"""An ASGI guard in front of the app: the bearer token, a person's name and password (HTTP
Basic), or a console session (cookie, and for changes the CSRF token from the same site) is
checked, and the body size limited, before any request body is read. What a person may do
follows their access: a viewer reads, an operator also acts on alarms, silences and
incidents, an admin does everything the token does. The person's name goes to the app in
``scope["state"]["person"]``. A request naming a host that is not one of the site's (a page
of another site whose name was pointed at this address: DNS rebinding) is refused first.
Every answer, the guard's own refusals too, carries the security headers and a
Content-Security-Policy."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import CookieError, SimpleCookie
from typing import Any

from monitor.api.session import COOKIE, Sessions, SignIns

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY = 2**20
OPEN_PATHS = ("/", "/health", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json",
              "/login")
OPEN_PREFIXES = ("/static-offline-docs/", "/ack/", "/login/", "/web/")
"""/ack/ pages check their own credential: a signed, single-use link (/login/once/ too).
/web/ holds the console's scripts and styles, which hold no data."""
PERSON_ACTIONS = re.compile(r"/api/v1/(alarms/[^/]+/(acknowledge|shelve|unshelve|note)|silences"
                            r"|silences/\d+/expire|incidents"
                            r"|incidents/[^/]+/(acknowledge|confirm|decide|resolve|note|link|safe))")
"""What a person signed in with a password may POST (besides reading)."""

SAFE = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"same-origin")]
"""On every answer: no guessing of types, no framing by another site, and no address (an
answer link holds its token) sent on to another site."""
CSP = (b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       b"object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
"""Scripts, styles and everything else from this site only, nothing inline: the console,
the sign-in and answer pages keep their scripts and styles in files."""
DOCS_CSP = (b"default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' "
            b"'unsafe-inline'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
            b"frame-ancestors 'none'")
"""The OpenAPI pages (served offline) start their viewer with an inline script."""
DOCS = ("/docs", "/redoc")

Credentials = Callable[[str], "str | None"]
"""Person name -> the hash of their password (None: no such person, or no password)."""
Access = Callable[[str], "str | None"]
"""Person name -> viewer, operator or admin (None: no longer in the directory)."""
Refusal = tuple[int, str, list[tuple[bytes, bytes]]]
Hosts = Callable[[str], bool]
"""Whether a request's Host (name or address, with its port) is one of this site's."""


class Guard:
    def __init__(self, app: App, token: str, credentials: Credentials | None = None,
                 max_body: int = MAX_BODY, *, sessions: Sessions | None = None,
                 sign_ins: SignIns | None = None, access: Access = lambda name: "operator",
                 origins: tuple[str, ...] = (), hosts: Hosts = lambda host: True):
        self.app, self.max_body, self.credentials, self.hosts = app, max_body, credentials, hosts
        self.sessions, self.access = sessions, access
        self.origins = tuple(o.encode() for o in origins if o)
        self.sign_ins = sign_ins or SignIns(lambda said: None)
        self._expected = token.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":  # none served yet: refuse, rather than pass unchecked
            await send({"type": "websocket.close", "code": 1008})
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        headers = dict(scope.get("headers") or [])
        host = headers.get(b"host")
        if host is not None and not self.hosts(host.decode("latin-1")):
            await _reply(send, 421, "this name is not one of this site's (api.hosts)")
            return
        if path not in OPEN_PATHS and not path.startswith(OPEN_PREFIXES):
            scheme, _, given = headers.get(b"authorization", b"").partition(b" ")
            refused: Refusal | None = None
            if scheme.lower() == b"basic" and self.credentials is not None:
                refused = await self._person(scope, given.strip())
            elif not scheme and self.sessions is not None and _cookie(headers) is not None:
                refused = await self._session(scope, headers)
            elif scheme.lower() != b"bearer" or not hmac.compare_digest(given.strip(),
                                                                        self._expected):
                refused = (401, "a valid bearer token is required (or sign in)",
                           [(b"www-authenticate", b"Bearer")])
            if refused is None and "person" in scope.get("state", {}):
                refused = self._permitted(scope)
            if refused is not None:
                await _reply(send, *refused)
                return
        length = headers.get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_body):
            await _reply(send, 413, f"request body over {self.max_body} bytes")
            return
        await self._limited(scope, receive, send)

    async def _person(self, scope: Scope, given: bytes
                      ) -> tuple[int, str, list[tuple[bytes, bytes]]] | None:
        """Sign a person in by name and password; what to answer when that fails."""
        assert self.credentials is not None
        source = str((scope.get("client") or ("?",))[0])
        try:
            name, _, password = base64.b64decode(given, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            name = password = ""
        failed = await self.sign_ins.check(name, password,
                                           self.credentials(name) if name else None, source)
        if failed == "busy":
            return 429, "too many failed sign-ins from this address; try again later", []
        if failed is not None:
            return 401, "wrong name or password", [(b"www-authenticate", b"Basic")]
        scope.setdefault("state", {})["person"] = name
        return None

    async def _session(self, scope: Scope, headers: dict[bytes, bytes]) -> Refusal | None:
        """A console session: its cookie, and for a change, a request from this site that
        carries the session's CSRF token."""
        assert self.sessions is not None
        sid = _cookie(headers) or ""
        session = await self.sessions.find(sid)
        if session is None:
            return 401, "the session has ended: sign in again", []
        if self.access(session.person) is None:
            return 401, "this person is no longer in the directory", []
        if self.credentials is not None and not session.signed_with(
                self.credentials(session.person)):
            await self.sessions.close(sid)
            return 401, "the password changed since this sign-in: sign in again", []
        if scope["method"] not in ("GET", "HEAD"):
            origin = headers.get(b"origin")
            here = f"{scope.get('scheme', 'http')}://".encode() + headers.get(b"host", b"")
            if origin is not None and origin != here and origin not in self.origins:
                return 403, "a request from another site", []
            if not hmac.compare_digest(headers.get(b"x-csrf-token", b""),
                                       session.csrf.encode()):
                return 403, "the CSRF token is missing or wrong: reload the page", []
        state = scope.setdefault("state", {})
        state["person"], state["session"] = session.person, session
        return None

    def _permitted(self, scope: Scope) -> Refusal | None:
        """What the person's access allows: viewers read; operators also act on alarms,
        silences and incidents; admins do everything."""
        method, path = scope["method"], scope["path"]
        access = self.access(scope["state"]["person"])
        if method in ("GET", "HEAD") or path == "/logout" or access == "admin":
            return None
        if access in ("viewer", None):
            return 403, "a viewer may look, not act", []
        if not PERSON_ACTIONS.fullmatch(path):
            return 403, "this needs an administrator (or the API token)", []
        return None

    async def _limited(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A body sent in chunks (no Content-Length) is cut off at the limit too: the guard
        answers 413, the app sees the client gone, and whatever it answers is dropped."""
        seen = 0
        answered = False

        async def limited_receive() -> Message:
            nonlocal seen, answered
            if answered:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body:
                    answered = True
                    await _reply(send, 413, f"request body over {self.max_body} bytes")
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": _safe(message.get("headers", []),
                                                       scope["path"])}
            if not answered:
                await send(message)
        await self.app(scope, limited_receive, guarded_send)


def _safe(headers: list[tuple[bytes, bytes]], path: str) -> list[tuple[bytes, bytes]]:
    """The security headers added; a policy the answer brings (a report's) is kept."""
    out = [*headers, *SAFE]
    if not any(name.lower() == b"content-security-policy" for name, _ in headers):
        out.append((b"content-security-policy", DOCS_CSP if path in DOCS else CSP))
    return out


def _cookie(headers: dict[bytes, bytes]) -> str | None:
    """The session cookie's value, if the request has one."""
    try:
        jar = SimpleCookie(headers.get(b"cookie", b"").decode("latin-1"))
    except CookieError:
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None else None


async def _reply(send: Send, status: int, detail: str,
                 headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": _safe([(b"content-type", b"application/json"),
                                  (b"content-length", str(len(body)).encode()),
                                  *(headers or [])], "")})
    await send({"type": "http.response.body", "body": body})
