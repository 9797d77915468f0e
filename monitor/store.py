"""The embedded SQLite store: history, alarms, timers, events and the durable outbox.

One writer thread owns the write connection and commits what the event loop hands it in
batches; a reading counts as accepted once that batch is committed, and its line protocol
sits in the outbox in the same transaction, so history and outbox never disagree.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

from monitor.model import Reading

log = logging.getLogger(__name__)
T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS history (point TEXT NOT NULL, ts REAL NOT NULL, value,
                                    quality TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS history_point_ts ON history (point, ts);
CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY, created REAL NOT NULL,
                                   lines INTEGER NOT NULL, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS dead_letter (id INTEGER PRIMARY KEY, created REAL, failed REAL,
                                        reason TEXT, lines INTEGER, body BLOB);
CREATE TABLE IF NOT EXISTS alarms (id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS alarm_log (seq INTEGER PRIMARY KEY, alarm TEXT NOT NULL,
                                      ts REAL NOT NULL, action TEXT NOT NULL, state TEXT,
                                      who TEXT, note TEXT, value);
CREATE INDEX IF NOT EXISTS alarm_log_alarm ON alarm_log (alarm, ts);
CREATE TABLE IF NOT EXISTS timers (key TEXT PRIMARY KEY, due REAL NOT NULL);
CREATE TABLE IF NOT EXISTS events (seq INTEGER PRIMARY KEY, ts REAL NOT NULL,
                                   device TEXT NOT NULL, kind TEXT NOT NULL, detail TEXT);
"""


class StoreError(Exception):
    """The store cannot be used (directory missing or not writable, disk full, corrupt)."""


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def check_data_dir(data_dir: Path) -> None:
    """Fail early, in plain words, when the data directory cannot hold the store."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise StoreError(f"cannot create data directory {data_dir}: {err.strerror}") from err
    if not os.access(data_dir, os.W_OK | os.X_OK):
        raise StoreError(f"data directory {data_dir} is not writable by this user "
                         f"(uid {os.getuid()})")


class Store:
    """SQLite in WAL mode with a single batching writer thread."""

    def __init__(self, data_dir: Path, flush_interval: float = 0.2,
                 outbox_max_bytes: int = 2**40, outbox_max_age: float = 365 * 86400.0):
        check_data_dir(data_dir)
        self.path = data_dir / "vigil.db"
        self.flush_interval = flush_interval
        try:
            self._db = _connect(self.path)
            self._db.executescript(SCHEMA)
        except sqlite3.Error as err:
            raise StoreError(f"cannot open {self.path}: {err}") from err
        self._readings: list[tuple[str, float, Any, str]] = []
        self._outbox: list[tuple[float, int, bytes]] = []
        self._ops: list[tuple[Callable[[sqlite3.Connection], Any], Future[Any] | None]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = False
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-read")
        self._read_db: sqlite3.Connection | None = None
        self.outbox_bytes, self.outbox_lines = self._db.execute(
            "SELECT COALESCE(SUM(LENGTH(body)), 0), COALESCE(SUM(lines), 0) FROM outbox"
        ).fetchone()
        self.outbox_max_bytes, self.outbox_max_age = outbox_max_bytes, outbox_max_age
        self.dropped_lines = 0
        self.on_commit: Callable[[], None] | None = None
        self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
        self._thread.start()

    # -- writing -------------------------------------------------------------------------
    def add(self, readings: Iterable[Reading], body: bytes | None, lines: int) -> None:
        """Queue readings for history and their line protocol for the outbox."""
        rows = [(r.point, r.ts, _sql_value(r.value), r.quality.value) for r in readings]
        now = time.time()
        with self._lock:
            self._readings.extend(rows)
            if body:
                self._outbox.append((now, lines, body))
                self.outbox_bytes += len(body)
                self.outbox_lines += lines

    def submit(self, fn: Callable[[sqlite3.Connection], Any]) -> None:
        """Run ``fn(conn)`` in the writer's next transaction, in order."""
        with self._lock:
            self._ops.append((fn, None))
        self._wake.set()

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` in the writer's next transaction and return its result."""
        fut: Future[T] = Future()
        with self._lock:
            self._ops.append((fn, fut))
        self._wake.set()
        return await asyncio.wrap_future(fut)

    def _run(self) -> None:
        while True:
            self._wake.wait(self.flush_interval)
            self._wake.clear()
            stop = self._stop
            self._flush()
            if stop:
                return

    def _flush(self) -> None:
        with self._lock:
            readings, self._readings = self._readings, []
            outbox, self._outbox = self._outbox, []
            ops, self._ops = self._ops, []
        if not (readings or outbox or ops):
            return
        results: list[tuple[Future[Any], Any, BaseException | None]] = []
        try:
            self._db.execute("BEGIN")
            if readings:
                self._db.executemany("INSERT INTO history VALUES (?, ?, ?, ?)", readings)
            if outbox:
                self._db.executemany("INSERT INTO outbox (created, lines, body) VALUES (?, ?, ?)",
                                     outbox)
            if outbox:
                self._bound_outbox()
            for fn, fut in ops:
                try:
                    res = fn(self._db)
                    if fut is not None:
                        results.append((fut, res, None))
                except sqlite3.Error:
                    raise
                except Exception as err:  # an op's own error goes back to its caller
                    if fut is None:
                        log.exception("store operation failed")
                    else:
                        results.append((fut, None, err))
            self._db.execute("COMMIT")
        except sqlite3.Error as err:
            log.error("store write failed, retrying: %s", err)
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            with self._lock:  # put everything back in front, in order
                self._readings[:0] = readings
                self._outbox[:0] = outbox
                self._ops[:0] = ops
            time.sleep(1)
            return
        for fut, res, exc in results:
            if fut.set_running_or_notify_cancel():  # the caller may have given up waiting
                if exc is None:
                    fut.set_result(res)
                else:
                    fut.set_exception(exc)
        if self.on_commit is not None:
            self.on_commit()

    def _bound_outbox(self) -> None:
        """Drop the oldest batches beyond the size or age bound (runs in the writer)."""
        oldest = self._db.execute("SELECT created FROM outbox ORDER BY id LIMIT 1").fetchone()
        too_old = oldest is not None and oldest[0] < time.time() - self.outbox_max_age
        if self.outbox_bytes <= self.outbox_max_bytes and not too_old:
            return
        cutoff = time.time() - self.outbox_max_age
        rows = self._db.execute("SELECT id, created, lines, LENGTH(body) FROM outbox "
                                "ORDER BY id").fetchall()
        size, lines, last_id = self.outbox_bytes, 0, None
        for row_id, created, row_lines, row_bytes in rows:
            if size <= self.outbox_max_bytes and created >= cutoff:
                break
            size -= row_bytes
            lines += row_lines
            last_id = row_id
        if last_id is None:
            return
        self._db.execute("DELETE FROM outbox WHERE id <= ?", (last_id,))
        self._forget(self.outbox_bytes - size, lines)
        self.dropped_lines += lines

    def _forget(self, size: int, lines: int) -> None:
        with self._lock:
            self.outbox_bytes -= size
            self.outbox_lines -= lines

    def remove_outbox(self, conn: sqlite3.Connection, ids: list[int],
                      dead_reason: str | None = None) -> None:
        """Writer op: delete delivered batches (or set them aside with ``dead_reason``)."""
        marks = ",".join("?" * len(ids))
        size, lines = conn.execute(f"SELECT COALESCE(SUM(LENGTH(body)), 0), "
                                   f"COALESCE(SUM(lines), 0) FROM outbox WHERE id IN ({marks})",
                                   ids).fetchone()
        if dead_reason is not None:
            conn.execute(f"INSERT INTO dead_letter (created, failed, reason, lines, body) "
                         f"SELECT created, ?, ?, lines, body FROM outbox WHERE id IN ({marks})",
                         (time.time(), dead_reason, *ids))
        conn.execute(f"DELETE FROM outbox WHERE id IN ({marks})", ids)
        self._forget(size, lines)

    # -- reading -------------------------------------------------------------------------
    async def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` on a read connection off the event loop."""
        def run() -> T:
            if self._read_db is None:
                self._read_db = _connect(self.path)
            return fn(self._read_db)
        return await asyncio.get_running_loop().run_in_executor(self._reader, run)

    def close(self) -> None:
        """Commit everything queued, then close."""
        self._stop = True
        self._wake.set()
        self._thread.join()
        self._reader.shutdown(wait=True)
        self._db.close()
        if self._read_db is not None:
            self._read_db.close()


def _sql_value(value: Any) -> Any:
    return int(value) if isinstance(value, bool) else value


def history_rows(conn: sqlite3.Connection, point: str, since: float, until: float,
                 limit: int) -> list[tuple[float, Any, str]]:
    cur = conn.execute("SELECT ts, value, quality FROM history WHERE point = ? AND ts >= ? "
                       "AND ts <= ? ORDER BY ts DESC LIMIT ?", (point, since, until, limit))
    return list(cur.fetchall())


def prune_history(conn: sqlite3.Connection, before: float, limit: int = 20000) -> int:
    """Delete old history in small steps (no stall): among the ``limit`` oldest rows (rowids
    grow with time, so no index on ts is needed), those older than ``before``."""
    cur = conn.execute("DELETE FROM history WHERE rowid IN (SELECT rowid FROM history "
                       "ORDER BY rowid LIMIT ?) AND ts < ?", (limit, before))
    return cur.rowcount




def recent_events(conn: sqlite3.Connection, device: str | None, since: float,
                  limit: int) -> list[dict[str, Any]]:
    sql = "SELECT ts, device, kind, detail FROM events WHERE ts >= ?"
    args: list[Any] = [since]
    if device:
        sql += " AND device = ?"
        args.append(device)
    rows = conn.execute(sql + " ORDER BY seq DESC LIMIT ?", (*args, limit)).fetchall()
    return [{"ts": ts, "device": dev, "kind": kind, "message": detail}
            for ts, dev, kind, detail in rows]
