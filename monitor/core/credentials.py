"""People's passwords for the console, the API and the acknowledgement page, kept as scrypt
hashes (``vigil passwd`` makes one); a password itself is never stored or logged."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections import deque

MIN_PASSWORD = 8

N, R, P = 2**14, 8, 1
"""scrypt's cost: about 16 MiB and a few tens of milliseconds per check."""

HASH = re.compile(r"^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$")


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=N, r=R, p=P, dklen=32)
    return f"scrypt${N}${R}${P}${_b64(salt)}${_b64(digest)}"


def check_password(stored: str, password: str) -> bool:
    """Whether ``password`` is the one ``stored`` was made from (in constant time)."""
    m = HASH.match(stored)
    if m is None:
        return False
    n, r, p = (int(x) for x in m.group(1, 2, 3))
    if n > 2**20 or r > 32 or p > 16:  # a cost no one chose: refuse, not hang
        return False
    expected = base64.b64decode(m.group(5))
    digest = hashlib.scrypt(password.encode(), salt=base64.b64decode(m.group(4)), n=n, r=r,
                            p=p, dklen=len(expected), maxmem=2**31 - 1)
    return hmac.compare_digest(digest, expected)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Throttle:
    """Failed sign-ins per key (an address, a person): after ``failures`` within ``window``
    seconds, that key waits the window out."""

    def __init__(self, failures: int = 10, window: float = 600.0):
        self.failures, self.window = failures, window
        self._failed: dict[str, deque[float]] = {}

    def blocked(self, key: str) -> bool:
        failed = self._failed.get(key)
        return failed is not None and len(failed) == self.failures \
            and time.monotonic() - failed[0] < self.window

    def failed(self, key: str) -> None:
        self._failed.setdefault(key, deque(maxlen=self.failures)).append(time.monotonic())
