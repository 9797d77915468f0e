"""Small helpers shared by the tests."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any


async def eventually(cond: Callable[[], bool], within: float = 10.0) -> None:
    """Wait until ``cond()`` holds; fail after ``within`` seconds."""
    end = time.monotonic() + within
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(0.01)


async def until(cond: Callable[[], Awaitable[Any]], within: float = 10.0) -> Any:
    """Wait until the awaited ``cond()`` is truthy (a read of the store, an API call) and give
    it; fail after ``within`` seconds."""
    end = time.monotonic() + within
    while not (value := await cond()):
        if time.monotonic() > end:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(0.05)
    return value


async def recorded(daemon: Any) -> None:
    """Wait until what was published on the bus is handled and committed to the store."""
    end = time.monotonic() + 10
    while any(s.queue for s in daemon.ctx.bus.subscriptions):
        if time.monotonic() > end:
            raise AssertionError("the bus subscribers did not catch up within 10 s")
        await asyncio.sleep(0.01)
    await asyncio.sleep(0)  # the handler that took the last event returns
    await daemon.store.committed()


def corrupt(path: Path, offset: int, size: int) -> None:
    """Overwrite ``size`` bytes of ``path`` from ``offset`` with noise."""
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(os.urandom(size))


async def checkpointed(daemon: Any) -> Path:
    """The running daemon's database file, with all of it committed and in the file itself
    (not in the WAL): damage done to the file reaches what the store reads."""
    db = Path(daemon.cfg.data_dir) / "vigil.db"
    await daemon.store.committed()
    with contextlib.closing(sqlite3.connect(db, timeout=5)) as own:
        for _ in range(50):
            if own.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0:
                break
            await asyncio.sleep(0.1)          # a read under way holds it a moment
        else:
            raise AssertionError("the WAL could not be checkpointed into the file")
    return db


async def damage(daemon: Any, db: Path | None = None) -> None:
    """Corrupt the running daemon's database (every page but the header; ``db``: the one
    ``checkpointed`` gave), and read it: the store finds out."""
    db = db or await checkpointed(daemon)
    corrupt(db, 4096, db.stat().st_size - 4096)
    with contextlib.suppress(Exception):
        await daemon.store.read(lambda c: c.execute("SELECT COUNT(*) FROM history").fetchone())


async def made_anew(daemon: Any) -> None:
    """Damage the running daemon's database and wait until it has set the file aside, made a
    new one and written what it holds into it again."""
    await damage(daemon)
    await eventually(lambda: daemon.alarms.is_active("store:recreated"), 5)
    await daemon.store.committed()


@contextlib.contextmanager
def registered(table: dict[str, Any], name: str, part: Any) -> Iterator[None]:
    """``part`` in a registry (drivers, push sources, device classes) while the block runs."""
    table[name] = part
    try:
        yield
    finally:
        del table[name]
