"""Small helpers shared by the tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any


async def eventually(cond: Callable[[], bool], within: float = 10.0) -> None:
    """Wait until ``cond()`` holds; fail after ``within`` seconds."""
    end = time.monotonic() + within
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(0.01)


async def recorded(daemon: Any) -> None:
    """Wait until what was published on the bus is handled and committed to the store."""
    end = time.monotonic() + 10
    while any(s.queue for s in daemon.ctx.bus.subscriptions):
        if time.monotonic() > end:
            raise AssertionError("the bus subscribers did not catch up within 10 s")
        await asyncio.sleep(0.01)
    await asyncio.sleep(0)  # the handler that took the last event returns
    await daemon.store.call(lambda c: None)
