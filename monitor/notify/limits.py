"""Rate limits per channel: chat robots block a sender that goes too fast (DingTalk: 20 a
minute, then 10 minutes of nothing; WeCom 20 a minute; Feishu 100 a minute and 5 a second).
A message over the limit waits its turn instead of getting the robot blocked."""

from __future__ import annotations

import asyncio
import time
from collections import deque

LIMITS: dict[str, tuple[tuple[int, float], ...]] = {
    "dingtalk": ((20, 60.0),),
    "wecombot": ((20, 60.0),),
    "feishu": ((100, 60.0), (5, 1.0)),
}
"""Scheme -> (messages, seconds) windows, a little under what the services allow."""


class RateLimiter:
    def __init__(self, limits: dict[str, tuple[tuple[int, float], ...]] | None = None):
        self.limits = LIMITS if limits is None else limits
        self.sent: dict[str, deque[float]] = {}
        self.locks: dict[str, asyncio.Lock] = {}

    async def turn(self, key: str, scheme: str) -> float:
        """Wait until ``key`` (one robot) may send again; returns the seconds waited."""
        windows = self.limits.get(scheme)
        if not windows:
            return 0.0
        lock = self.locks.setdefault(key, asyncio.Lock())
        waited = 0.0
        async with lock:
            sent = self.sent.setdefault(key, deque(maxlen=max(n for n, _ in windows)))
            while True:
                now = time.monotonic()
                delay = max((sent[-n] + period - now for n, period in windows
                             if len(sent) >= n), default=0.0)
                if delay <= 0:
                    break
                waited += delay
                await asyncio.sleep(delay)
            sent.append(time.monotonic())
        return waited
