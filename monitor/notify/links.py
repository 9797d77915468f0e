"""Acknowledgement links: signed, expiring, single-use. The link is the credential of the
person it was sent to, so each names its alarm and person, carries an expiry and a nonce, and
is signed with HMAC-SHA256 under a key of the daemon's (``DATA_DIR/link-key``, 0600). A link
for an alarm also names the occurrence it was sent for (when the alarm was raised): once the
alarm is raised anew, the old link no longer answers for it. Only the canonical base64 of
the signed bytes is accepted, so no two spellings open one link."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from monitor.core.schema import declare
from monitor.core.store import Store

TABLES = declare(__name__, """
CREATE TABLE IF NOT EXISTS ack_links (nonce TEXT PRIMARY KEY, used REAL NOT NULL,
                                      alarm TEXT, person TEXT);
""")
"""The answer links used."""


class LinkError(Exception):
    """A link that is forged, altered, expired or unreadable (said in plain words)."""


@dataclass(frozen=True)
class AckLink:
    alarm: str
    person: str
    expires: float
    nonce: str
    occurrence: float | None = None
    """When the alarm was raised that the link was sent for (None: not an alarm's)."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    """The bytes of unpadded URL-safe base64, only in its one canonical spelling."""
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:
        raise ValueError("not canonical base64")
    return data


def link_key(data_dir: Path) -> bytes:
    """The signing key, made once (32 random bytes) and readable by this user only."""
    path = data_dir / "link-key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
    return path.read_bytes()


def sign(key: bytes, alarm: str, person: str, lifetime: float, now: float | None = None,
         occurrence: float | None = None) -> str:
    payload: dict[str, object] = {"a": alarm, "p": person,
                                  "e": round((now or time.time()) + lifetime),
                                  "n": secrets.token_urlsafe(9)}
    if occurrence is not None:
        payload["o"] = round(occurrence, 3)
    body = _b64(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())
    mac = hmac.new(key, body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


EXPIRED = "this link has expired"
EARLIER = "this link was sent for an earlier occurrence of the alarm"


def same_occurrence(link: AckLink, raised_at: float | None) -> bool:
    """Whether the alarm, raised at ``raised_at``, is still the occurrence ``link`` was for."""
    return link.occurrence is None or raised_at is None \
        or abs(raised_at - link.occurrence) < 0.01


def verify(key: bytes, token: str, now: float | None = None, *,
           expired_too: bool = False) -> AckLink:
    """The link's content, or LinkError saying what is wrong with it (``expired_too``: an
    expired link is still read, for a sign-in with the person's password)."""
    body, _, mac = token.partition(".")
    try:
        try:
            given = _unb64(mac)
        except ValueError as err:
            raise LinkError("this link is not one Vigil signed (altered or forged)") from err
        expected = hmac.new(key, body.encode(), hashlib.sha256).digest()
        if not body or not hmac.compare_digest(given, expected):
            raise LinkError("this link is not one Vigil signed (altered or forged)")
        data = json.loads(_unb64(body))
        link = AckLink(str(data["a"]), str(data["p"]), float(data["e"]), str(data["n"]),
                       float(data["o"]) if "o" in data else None)
    except LinkError:
        raise
    except (ValueError, KeyError, TypeError) as err:
        raise LinkError("this link is damaged") from err
    if not expired_too and link.expires < (now or time.time()):
        raise LinkError(EXPIRED)
    return link


class UsedLinks:
    """The links (and a link's answers, ``NONCE:do``) already used: kept in memory and in
    ``ack_links``, so a database made anew gets them again and a used link never works
    twice."""

    def __init__(self, store: Store):
        self.store = store
        self.used: dict[str, tuple[float, str, str]] = {}
        """Nonce -> (when, subject, person)."""

    async def load(self) -> None:
        rows = await self.store.read(lambda c: c.execute(
            "SELECT nonce, used, alarm, person FROM ack_links").fetchall())
        self.used = {nonce: (used, subject, person) for nonce, used, subject, person in rows}

    def __contains__(self, nonce: str) -> bool:
        return nonce in self.used

    async def use(self, nonce: str, subject: str, person: str) -> bool:
        """Mark ``nonce`` used, committed (StoreUnavailable otherwise); False when it was
        already (another answer got there first)."""
        if nonce in self.used:
            return False
        now = time.time()
        self.used[nonce] = (now, subject, person)
        try:
            await self.store.call(lambda c: c.execute(
                "INSERT OR REPLACE INTO ack_links VALUES (?, ?, ?, ?)",
                (nonce, now, subject, person)))
        except BaseException:
            del self.used[nonce]
            raise
        return True

    def persist_all(self, conn: sqlite3.Connection) -> None:
        """Writer op: every used link again (into a database made anew)."""
        conn.executemany("INSERT OR REPLACE INTO ack_links VALUES (?, ?, ?, ?)",
                         [(n, *row) for n, row in self.used.items()])
