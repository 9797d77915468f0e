"""Acknowledgement links: signed, expiring, single-use. The link is the credential of the
person it was sent to, so each names its alarm and person, carries an expiry and a nonce, and
is signed with HMAC-SHA256 under a key of the daemon's (``DATA_DIR/link-key``, 0600)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path


class LinkError(Exception):
    """A link that is forged, altered, expired or unreadable (said in plain words)."""


@dataclass(frozen=True)
class AckLink:
    alarm: str
    person: str
    expires: float
    nonce: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def link_key(data_dir: Path) -> bytes:
    """The signing key, made once (32 random bytes) and readable by this user only."""
    path = data_dir / "link-key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
    return path.read_bytes()


def sign(key: bytes, alarm: str, person: str, lifetime: float, now: float | None = None) -> str:
    payload = {"a": alarm, "p": person, "e": round((now or time.time()) + lifetime),
               "n": secrets.token_urlsafe(9)}
    body = _b64(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())
    mac = hmac.new(key, body.encode(), hashlib.sha256).digest()
    return f"{body}.{_b64(mac)}"


EXPIRED = "this link has expired"


def verify(key: bytes, token: str, now: float | None = None, *,
           expired_too: bool = False) -> AckLink:
    """The link's content, or LinkError saying what is wrong with it (``expired_too``: an
    expired link is still read, for a sign-in with the person's password)."""
    body, _, mac = token.partition(".")
    try:
        given = _unb64(mac)
        expected = hmac.new(key, body.encode(), hashlib.sha256).digest()
        if not body or not hmac.compare_digest(given, expected):
            raise LinkError("this link is not one Vigil signed (altered or forged)")
        data = json.loads(_unb64(body))
        link = AckLink(str(data["a"]), str(data["p"]), float(data["e"]), str(data["n"]))
    except LinkError:
        raise
    except (ValueError, KeyError, TypeError) as err:
        raise LinkError("this link is damaged") from err
    if not expired_too and link.expires < (now or time.time()):
        raise LinkError(EXPIRED)
    return link
