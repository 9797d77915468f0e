"""The push sources (listeners): the one place that starts, stops and reloads them, counts
what they heard, keeps the ids of what they took (so a resend is dropped, also after a
restart), and judges liveness: a source not heard from within its expected period raises
``push:NAME``; a device that only pushes and stays silent for longer than it reports loses
its availability as a polled device does (``comm:DEVICE``)."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections import OrderedDict

from drivers.base import Feed, PushSource, driver_class, source_class
from monitor.config.model import DeviceConfig, SiteConfig
from monitor.core.context import Context
from monitor.core.model import DeviceState, Reading
from monitor.core.part import Part
from monitor.core.schema import declare
from monitor.core.store import StoreUnavailable
from monitor.devices.intake import Core

log = logging.getLogger(__name__)

TABLES = declare(__name__, """
CREATE TABLE IF NOT EXISTS push_seen (source TEXT NOT NULL, id TEXT NOT NULL, ts REAL NOT NULL,
                                      PRIMARY KEY (source, id));
""")
"""The ids of the messages each source took."""

KEEP_IDS = 10_000
"""Message ids kept per source (the newest), to know a resend."""
KEEP_FOR = 2 * 86400.0
"""Seconds an id is kept in the store."""
TAKING_WAIT = 60.0
"""Seconds a resend waits for its first copy's commit."""


class Sources(Part):
    name = "sources"

    def __init__(self, ctx: Context, core: Core):
        self.ctx, self.core = ctx, core
        self.running: dict[str, PushSource] = {}
        self.seen: dict[str, OrderedDict[str, float]] = {}
        """Source -> the ids of the messages it took, oldest first."""
        self.taking: dict[tuple[str, str], tuple[float, asyncio.Future[None]]] = {}
        """(source, id) taken and being handed over: when, and done once its mark is
        committed with what it brought (or that commit failed)."""
        self.marked: set[tuple[str, str]] = set()
        """(source, id) whose mark is queued, and not known to be committed (it failed)."""
        self.since = time.time()
        self.feed = _Feed(self)

    # -- the part ----------------------------------------------------------------------
    async def load(self) -> None:
        rows = await self.ctx.store.read(lambda c: c.execute(
            "SELECT source, id, ts FROM push_seen WHERE ts > ? ORDER BY ts",
            (time.time() - KEEP_FOR,)).fetchall())
        for source, message, ts in rows:
            self._keep(source, message, ts)
        self.prune(time.time())

    def prune(self, now: float) -> None:
        before = now - KEEP_FOR
        for ids in self.seen.values():
            while ids and next(iter(ids.values())) <= before:
                ids.popitem(last=False)
        for key, (ts, done) in list(self.taking.items()):
            if ts < now - TAKING_WAIT:   # its source never said it was committed
                del self.taking[key]
                done.set_result(None)
        self.marked = {(s, m) for s, m in self.marked if m in self.seen.get(s, ())}
        self.ctx.store.submit(lambda c: c.execute("DELETE FROM push_seen WHERE ts <= ?",
                                                  (before,)))

    def persist_all(self, conn: sqlite3.Connection) -> None:
        conn.executemany("INSERT OR REPLACE INTO push_seen VALUES (?, ?, ?)",
                         [(s, m, ts) for s, ids in self.seen.items() for m, ts in ids.items()])

    # -- running them --------------------------------------------------------------------
    async def start(self, cfg: SiteConfig) -> None:
        """Start the listeners of ``cfg``; OSError when one cannot listen (those started
        before it run)."""
        self.since = time.time()
        for listener in cfg.listening():
            cls = source_class(listener.type)
            assert cls is not None  # the config loader checked it
            source = cls(listener.name, listener.spec, [d for d in cfg.devices if cls.serves(d)])
            await source.start(self.feed)
            self.running[listener.name] = source

    async def stop(self) -> None:
        for source in self.running.values():
            await source.stop()
        self.running.clear()

    def counts(self) -> dict[str, dict[str, int]]:
        """Source -> its messages by outcome."""
        return {name: source.counts() for name, source in self.running.items()}

    # -- liveness ----------------------------------------------------------------------
    def tick(self, now: float) -> None:
        """Sources not heard from within their period; devices that push, silent too long."""
        self.core.tick_sources({n: s.expected_period for n, s in self.running.items()
                                if s.expected_period is not None})
        for dev in self.ctx.cfg.devices:
            if dev.enabled and pushes_only(dev):
                self._judge(dev, now)

    def _judge(self, dev: DeviceConfig, now: float) -> None:
        status = self.ctx.state.devices.get(dev.name)
        if status is None or status.state is DeviceState.UNAVAILABLE:
            return
        silent = now - max(status.last_ok or 0.0, self.since)
        allowed = dev.interval * dev.failures_before_unavailable
        if silent > allowed:
            self.core.on_failure(dev, f"no message for {silent:.0f} s (it reports every "
                                      f"{dev.interval:g} s)", unavailable=True)

    # -- ids of what was taken ---------------------------------------------------------------
    async def first(self, source: str, message: str) -> bool:
        """See Feed.first. A resend of one still being handed over waits for its commit; of
        one whose commit failed, for the next (StoreUnavailable: still not committed)."""
        key = (source, message)
        if message not in self.seen.get(source, ()):
            self._keep(source, message, time.time())
            self.taking[key] = (time.time(), asyncio.get_running_loop().create_future())
            return True
        if key in self.taking:
            try:
                await asyncio.wait_for(asyncio.shield(self.taking[key][1]), TAKING_WAIT)
            except TimeoutError as err:
                raise StoreUnavailable(f"{source} {message}: its first copy is still being "
                                       "committed") from err
        elif key in self.marked:
            await self.committed()
        return False

    async def committed(self, source: str | None = None, message: str | None = None) -> None:
        """See Feed.committed: the mark of ``message`` goes with what was handed over."""
        key = (source or "", message or "")
        taken = self.taking.pop(key, None)
        if taken is not None:
            self.marked.add(key)
            self.ctx.store.submit(lambda c: c.execute(
                "INSERT OR REPLACE INTO push_seen VALUES (?, ?, ?)", (*key, taken[0])))
        waiting = set(self.marked)
        try:
            await self.ctx.store.committed()
        except StoreUnavailable as err:
            if taken is not None:
                taken[1].set_exception(err)
                taken[1].exception()  # told to whoever waits; none may
            raise
        self.marked -= waiting
        if taken is not None:
            taken[1].set_result(None)

    def _keep(self, source: str, message: str, ts: float) -> None:
        ids = self.seen.setdefault(source, OrderedDict())
        ids[message] = ts
        while len(ids) > KEEP_IDS:
            ids.popitem(last=False)


def pushes_only(dev: DeviceConfig) -> bool:
    """A device no driver polls: a listener hears it."""
    return driver_class(dev.type) is None


class _Feed(Feed):
    """What the listeners hand over goes to the core model; commits and ids are the
    store's and the sources'."""

    def __init__(self, sources: Sources):
        self.sources, self.core = sources, sources.core

    def readings(self, device: str, readings: list[Reading]) -> None:
        self.core.readings(device, readings)

    @property
    def language(self) -> str:
        return self.sources.ctx.cfg.site.language

    async def committed(self, source: str | None = None, message: str | None = None) -> None:
        await self.sources.committed(source, message)

    async def first(self, source: str, message: str) -> bool:
        return await self.sources.first(source, message)

    def event(self, device: str, kind: str, message: str) -> None:
        self.core.event(device, kind, message)

    def announce(self, device: str, event: str) -> None:
        self.core.announce(device, event)

    def poll_now(self, device: str) -> bool:
        return self.core.poll_now(device)

    def alive(self, source: str, ok: bool = True, reason: str = "") -> None:
        self.core.alive(source, ok, reason)
