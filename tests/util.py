"""Small helpers shared by the tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def eventually(cond: Callable[[], bool], within: float = 10.0) -> None:
    """Wait until ``cond()`` holds; fail after ``within`` seconds."""
    end = time.monotonic() + within
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(0.01)
