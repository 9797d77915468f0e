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

from monitor.core.hook import Hook
from monitor.core.model import Reading
from monitor.core.schema import DECLARED, declare

log = logging.getLogger(__name__)
T = TypeVar("T")

TABLES = declare(__name__, """
CREATE TABLE IF NOT EXISTS history (point TEXT NOT NULL, ts REAL NOT NULL, value,
                                    quality TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS history_point_ts ON history (point, ts);
CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY, created REAL NOT NULL,
                                   lines INTEGER NOT NULL, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS dead_letter (id INTEGER PRIMARY KEY, created REAL, failed REAL,
                                        reason TEXT, lines INTEGER, body BLOB);
CREATE TABLE IF NOT EXISTS flags (key TEXT PRIMARY KEY, value TEXT);
""")
"""The store's own: readings' history, the outbox to InfluxDB and what it refused, flags."""


class StoreError(Exception):
    """The store cannot be used (directory missing or not writable, disk full, corrupt)."""


class StoreUnavailable(StoreError):
    """A write could not be committed (disk full, I/O error); nothing of it was kept."""


SQLITE_CORRUPT, SQLITE_NOTADB = 11, 26
_STORAGE_FAULTS = {3, 5, 6, 7, 8, 10, 11, 13, 14, 15, 22, 26}
"""SQLite result codes that say the storage is at fault, not the statement: PERM, BUSY,
LOCKED, NOMEM, READONLY, IOERR, CORRUPT, FULL, CANTOPEN, PROTOCOL, NOLFS, NOTADB."""


def _code(err: sqlite3.Error) -> int | None:
    code = getattr(err, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


def is_corrupt(err: BaseException) -> bool:
    return isinstance(err, sqlite3.Error) and _code(err) in (SQLITE_CORRUPT, SQLITE_NOTADB)


def is_storage_fault(err: BaseException) -> bool:
    return isinstance(err, sqlite3.Error) and _code(err) in _STORAGE_FAULTS


def _connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def check_data_dir(data_dir: Path) -> None:
    """Fail early, in plain words, when the data directory cannot hold the store; make it
    private (0700) when it is ours."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as err:
        raise StoreError(f"cannot create data directory {data_dir}: {err.strerror}") from err
    if not os.access(data_dir, os.W_OK | os.X_OK):
        raise StoreError(f"data directory {data_dir} is not writable by this user "
                         f"(uid {os.getuid()})")
    if data_dir.stat().st_uid == os.getuid():
        data_dir.chmod(0o700)



Op = tuple["Callable[[sqlite3.Connection], Any] | None", "Future[Any] | None"]
"""An operation and the future of its caller; no operation: a caller waiting for the commit
of everything before it."""


class Fault:
    """What a fault says: a key of Vigil's alarm words (monitor/words/alarms.py) and the
    values it names, said in the site's language by whoever reports it."""

    def __init__(self, key: str, **values: object):
        self.key, self.values = key, values

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Fault) and (self.key, self.values) == (other.key, other.values)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Fault({self.key!r}, {self.values!r})"


class Store:
    """SQLite in WAL mode with a single batching writer thread.

    ``add`` and ``submit`` queue work that is retried until committed (kept in memory up to
    ``max_pending`` while the disk refuses it); ``call`` commits or raises StoreUnavailable.
    A database found corrupt (at start or while running) or deleted is set aside and made
    anew, and every fault is reported through ``on_fault``.
    """

    def __init__(self, data_dir: Path, flush_interval: float = 0.2,
                 outbox_max_bytes: int = 2**40, outbox_max_age: float = 365 * 86400.0,
                 max_pending: int = 1_000_000):
        check_data_dir(data_dir)
        self.path = data_dir / "vigil.db"
        self.flush_interval = flush_interval
        self.faults: dict[str, Fault] = {}
        self.on_fault: Hook[[str, Fault | None]] = Hook("the store's faults")
        """(kind, fault): ``write_failed``, ``recreated``, ``dropped``, and what it says;
        (kind, None) when that fault is over. Called from the writer thread, or from the
        thread that queues (``dropped``)."""
        self.on_recreated: Hook[[]] = Hook("the store's database made anew")
        self.on_commit: Hook[[]] = Hook("the store's commits")
        self._read_lock = threading.RLock()
        """Held by a read, and while the file is replaced: no read meets a half-made one."""
        self._lock = threading.Lock()
        self._read_db: sqlite3.Connection | None = None
        self._rewrite = False
        """The database was made anew: what memory holds is written again once it opens."""
        self._made_anew: Fault | None = None
        """What to say of the file made anew (or replaced), once it is open; the first
        such thing is said (a later one, before it opens, is in the log)."""
        self.generation = 0
        """Counts the files opened: a fault seen in an older one is not this one's."""
        self.last_run: float | None = None
        """When the daemon that ran before this one last committed (None: a new database):
        how long Vigil was down, for the timelines."""
        self._db: sqlite3.Connection | None = self._open()
        self._readings: list[tuple[str, float, Any, str]] = []
        self._outbox: list[tuple[float, int, bytes]] = []
        self._ops: list[Op] = []
        self._next_commit: Future[None] | None = None
        """The mark in the batch not yet taken that ``committed`` waiters share."""
        self._wake = threading.Event()
        self._stop = False
        self._stop_by = 0.0
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="store-read")
        self.outbox_max_bytes, self.outbox_max_age = outbox_max_bytes, outbox_max_age
        self.max_pending = max_pending
        self.dropped_lines = 0
        self.dropped_pending = 0
        self.uncommitted = 0
        self._failing = False
        self._corrupt_seen: tuple[int, str] | None = None
        """(generation, error) a read met; one from an older file is ignored."""
        self._forgotten = [0, 0, 0]
        """Outbox bytes, lines and dropped lines the open transaction removes."""
        self._checked = time.monotonic()
        self.file_check_interval = 10.0
        """Seconds between checks that the database file is still there."""
        self._thread = threading.Thread(target=self._run, name="store-writer", daemon=True)
        self._thread.start()

    # -- the database file ----------------------------------------------------------------
    def _open(self) -> sqlite3.Connection:
        """Open (or make) the database; one that is corrupt is set aside and made anew."""
        try:
            return self._open_file()
        except sqlite3.DatabaseError as err:
            if not is_corrupt(err):
                raise StoreError(f"cannot open {self.path}: {err}") from err
            self._aside(str(err))
            try:
                db = self._open_file()
            except sqlite3.Error as err2:
                raise StoreError(f"cannot open {self.path}: {err2}") from err2
            self._say_made_anew()
            return db

    def _open_file(self) -> sqlite3.Connection:
        if not self.path.exists():
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        for suffix in ("", "-wal", "-shm"):  # SQLite gives -wal and -shm the db's mode
            f = Path(f"{self.path}{suffix}")
            if f.exists() and f.stat().st_uid == os.getuid():
                f.chmod(0o600)
        db = _connect(self.path)
        try:
            for tables in DECLARED.values():
                db.executescript(tables.ddl)
                for table, column, declared in tables.added:
                    if column not in {r[1] for r in db.execute(f"PRAGMA table_info({table})")}:
                        db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declared}")
            size, lines = db.execute(
                "SELECT COALESCE(SUM(LENGTH(body)), 0), COALESCE(SUM(lines), 0) FROM outbox"
            ).fetchone()
            with self._lock:
                queued = getattr(self, "_outbox", [])  # what waits in memory counts too
                self.outbox_bytes = size + sum(len(body) for _, _, body in queued)
                self.outbox_lines = lines + sum(n for _, n, _ in queued)
        except sqlite3.Error:
            db.close()
            raise
        if self.generation == 0:
            row = db.execute("SELECT value FROM flags WHERE key = 'last_commit'").fetchone()
            self.last_run = float(row[0]) if row else None
        self._inode = self.path.stat().st_ino
        return db

    def _aside(self, why: str) -> None:
        """A corrupt database: set it aside, and say so once the new one is open (a critical
        alarm names the file)."""
        aside = self._set_aside()
        self._made_anew = self._made_anew or Fault("store.corrupt", why=why, aside=aside.name)

    def _set_aside(self) -> Path:
        """Rename the database (and its -wal, -shm) to ``vigil.db.corrupt-TIME``."""
        aside = self.path.with_name(f"{self.path.name}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}")
        n = 1
        while any(Path(f"{aside}{s}").exists() for s in ("", "-wal", "-shm")):
            n += 1  # never over an earlier one
            aside = aside.with_name(f"{aside.name.split('~')[0]}~{n}")
        for suffix in ("", "-wal", "-shm"):
            src = Path(f"{self.path}{suffix}")
            if src.exists():
                src.rename(f"{aside}{suffix}")
        log.critical("store: %s set aside as %s; a new database is made", self.path, aside)
        return aside

    def _close_connections(self) -> None:
        with self._read_lock:
            if self._read_db is not None:
                _quiet_close(self._read_db)
                self._read_db = None
        if self._db is not None:
            _quiet_close(self._db)
            self._db = None

    def _reopen(self) -> bool:
        """Writer: open the database file again; one that is not a database is set aside.
        Until it opens, writes fail (and are kept) and it is tried again."""
        try:
            with self._read_lock:  # readers wait until the schema is there
                try:
                    self._db = self._open_file()
                except sqlite3.DatabaseError as err:
                    if not is_corrupt(err):
                        raise
                    self._aside(str(err))
                    self._db = self._open_file()
        except (sqlite3.Error, OSError) as err:
            self._db = None
            self._fault("write_failed", Fault("store.cannot_open", error=str(err)))
            return False
        self.generation += 1
        if self._rewrite:
            self._rewrite = False
            self.on_recreated()
        self._say_made_anew()
        return True

    def _say_made_anew(self) -> None:
        """Report the file made anew (or replaced) once it is open and what memory holds is
        on its way into it: whoever sees the alarm sees that done."""
        if self._made_anew is not None:
            fault, self._made_anew = self._made_anew, None
            self._fault("recreated", fault, always=True)

    def _recreate(self, why: str) -> None:
        """Writer: the database went bad while running; set it aside and start a new one
        (no read runs meanwhile)."""
        with self._read_lock:
            self._corrupt_seen = None
            self._close_connections()
            self._aside(why)
            self._rewrite = True
            self._reopen()

    def _check_file(self) -> None:
        """Writer: a database file deleted or replaced under us is noticed."""
        now = time.monotonic()
        if self._db is None or now - self._checked < self.file_check_interval:
            return   # none open (it is being opened again): nothing to compare
        self._checked = now
        try:
            if self.path.stat().st_ino == self._inode:
                return
            replaced = True
        except FileNotFoundError:
            replaced = False
        with self._read_lock:  # no read runs while the file is put right
            if replaced:
                self._replaced()
            else:
                self._deleted()

    def _replaced(self) -> None:
        log.critical("store: %s was replaced while running; using the new file", self.path)
        self._close_connections()
        self._made_anew = self._made_anew or Fault("store.replaced", file=self.path.name)
        self._rewrite = True
        self._reopen()

    def _deleted(self) -> None:
        log.critical("store: %s was deleted while running", self.path)
        rescue = self.path.with_name(self.path.name + ".rescue")
        try:  # the open connection still reaches the deleted file: copy it out
            rescue.unlink(missing_ok=True)
            if self._db is None:
                raise sqlite3.OperationalError("no open connection")
            self._db.execute("VACUUM INTO ?", (str(rescue),))
            saved = True
        except (sqlite3.Error, OSError) as err:
            log.error("store: cannot copy the deleted database out: %s", err)
            saved = False
        self._close_connections()
        for suffix in ("-wal", "-shm"):
            Path(f"{self.path}{suffix}").unlink(missing_ok=True)
        if saved and not self.path.exists():
            rescue.rename(self.path)
        self._made_anew = self._made_anew or Fault(
            "store.deleted_saved" if saved else "store.deleted_lost", file=self.path.name)
        self._rewrite = not saved
        self._reopen()

    def _fault(self, kind: str, message: Fault | None, *, always: bool = False) -> None:
        """Report a fault (None: over). The same message again is reported only ``always``
        (a second deletion is a second event)."""
        if message is None:
            if self.faults.pop(kind, None) is None:
                return
        elif self.faults.get(kind) == message and not always:
            return
        else:
            self.faults[kind] = message
        self.on_fault(kind, message)

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
            if len(self._readings) > self.max_pending:
                self._drop_pending()

    def queued(self) -> tuple[int, int]:
        """(readings, operations) waiting in memory for a commit (many: the disk refuses)."""
        with self._lock:
            return len(self._readings), len(self._ops)

    def _drop_pending(self) -> None:
        """(Under the lock) the disk refuses writes and memory is at its bound: the oldest
        readings and outbox lines go."""
        excess = len(self._readings) - self.max_pending // 2
        del self._readings[:excess]
        lines = sum(n for _, n, _ in self._outbox[:len(self._outbox) // 2])
        self.outbox_bytes -= sum(len(b) for _, _, b in self._outbox[:len(self._outbox) // 2])
        self.outbox_lines -= lines
        del self._outbox[:len(self._outbox) // 2]
        self._dropped("readings", excess + lines)

    def submit(self, fn: Callable[[sqlite3.Connection], Any]) -> None:
        """Run ``fn(conn)`` in the writer's next transaction, in order (retried until it
        commits; one that fails by itself is logged and dropped)."""
        with self._lock:
            self._ops.append((fn, None))
            if len(self._ops) > self.max_pending:
                self._drop_ops()
        self._wake.set()

    def _drop_ops(self) -> None:
        """(Under the lock) the oldest queued operations go (calls stay: they fail on their
        own); like readings, only while the disk refuses and memory is at its bound."""
        excess = len(self._ops) - self.max_pending // 2
        dropped = [op for op in self._ops[:excess] if op[1] is None]
        self._ops = [op for op in self._ops[:excess] if op[1] is not None] + \
            self._ops[excess:]
        self._dropped("operations", len(dropped))

    def _dropped(self, what: str, count: int) -> None:
        self.dropped_pending += count
        log.error("store: cannot commit and %d %s wait in memory: dropped the oldest %d "
                  "(%d so far)", self.max_pending, what, count, self.dropped_pending)
        self._fault("dropped", Fault("store.dropped_n", n=self.dropped_pending))

    async def call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` in the writer's next transaction and return its result once
        committed; raise StoreUnavailable when that transaction cannot be committed."""
        fut: Future[T] = Future()
        with self._lock:
            self._ops.append((fn, fut))
        self._wake.set()
        return await asyncio.wrap_future(fut)

    async def committed(self) -> None:
        """Wait until everything queued before this call is committed; StoreUnavailable when
        that transaction cannot be. Waiters for the same transaction share one mark in it
        (many listeners confirming at once cost one)."""
        with self._lock:
            fut = self._next_commit
            if fut is None:
                fut = self._next_commit = Future()
                self._ops.append((None, fut))
        self._wake.set()
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[None] = loop.create_future()
        fut.add_done_callback(lambda done: loop.call_soon_threadsafe(_told, done, waiter))
        await waiter

    def _run(self) -> None:
        delay = self.flush_interval
        while True:
            self._wake.wait(delay)
            self._wake.clear()
            stop = self._stop
            try:
                if self._corrupt_seen is not None:
                    (seen_in, why), self._corrupt_seen = self._corrupt_seen, None
                    if seen_in == self.generation:
                        self._recreate(why)
                self._check_file()
                ok = self._flush()
            except Exception:  # the writer thread must never die
                log.exception("store writer: unexpected error")
                ok = False
            delay = self.flush_interval if ok else min(max(delay * 2, 0.5), 5.0)
            if stop and (ok or time.monotonic() > self._stop_by):
                with self._lock:
                    self.uncommitted = (len(self._readings) + len(self._outbox) +
                                        len(self._ops))
                return

    def _flush(self) -> bool:
        """Commit what is queued; False when the storage refused it (it is kept)."""
        if self._db is None and not self._reopen():
            return False
        with self._lock:
            readings, self._readings = self._readings, []
            outbox, self._outbox = self._outbox, []
            ops, self._ops = self._ops, []
            self._next_commit = None   # who waits from now on waits for the next batch
        if not (readings or outbox or ops):
            return True
        results: list[tuple[Future[Any], Any, BaseException | None]] = []
        db = self._db
        assert db is not None
        try:
            db.execute("BEGIN")
            if readings:
                self._insert(db, "INSERT INTO history VALUES (?, ?, ?, ?)", readings)
            if outbox:
                self._insert(db, "INSERT INTO outbox (created, lines, body) VALUES (?, ?, ?)",
                             outbox)
                self._bound_outbox(db)
            for fn, fut in ops:
                if fut is not None and not fut.set_running_or_notify_cancel():
                    continue  # the caller gave up waiting: it was told nothing was kept
                res, exc = self._op(db, fn) if fn is not None else (None, None)
                if fut is not None:
                    results.append((fut, res, exc))
            db.execute("INSERT OR REPLACE INTO flags VALUES ('last_commit', ?)",
                       (repr(time.time()),))
            db.execute("COMMIT")
        except Exception as err:  # storage refused it (or a bug): keep it all and retry
            if not isinstance(err, sqlite3.Error):
                log.exception("store: unexpected error while writing")
            self._failed(err, readings, outbox, ops)
            return False
        size, lines, dropped = self._forgotten
        self._forgotten = [0, 0, 0]
        with self._lock:
            self.outbox_bytes -= size
            self.outbox_lines -= lines
        self.dropped_lines += dropped
        self._fault("write_failed", None)
        self._failing = False
        for fut, res, exc in results:
            if exc is None:
                fut.set_result(res)
            else:
                fut.set_exception(exc)
        self.on_commit()
        return True

    def _op(self, db: sqlite3.Connection, fn: Callable[[sqlite3.Connection], Any]
            ) -> tuple[Any, BaseException | None]:
        """One operation in its own savepoint: if it fails by itself it is undone, logged
        and dropped, and the rest of the batch commits."""
        db.execute("SAVEPOINT op")
        try:
            res = fn(db)
            if isinstance(res, sqlite3.Cursor):  # an open statement would block the release
                res = res.fetchall()
        except sqlite3.Error as err:
            if is_storage_fault(err):
                raise
            db.execute("ROLLBACK TO op")
            db.execute("RELEASE op")
            log.error("store: dropped an operation that failed by itself: %s", err)
            return None, err
        except Exception as err:
            db.execute("ROLLBACK TO op")
            db.execute("RELEASE op")
            log.exception("store: dropped an operation that failed by itself")
            return None, err
        db.execute("RELEASE op")
        return res, None

    @staticmethod
    def _insert(db: sqlite3.Connection, sql: str, rows: list[Any]) -> None:
        """executemany; when one row cannot be bound, the others are kept."""
        db.execute("SAVEPOINT rows")
        try:
            db.executemany(sql, rows)
        except (sqlite3.Error, OverflowError, ValueError, TypeError) as err:
            if is_storage_fault(err):
                raise
            db.execute("ROLLBACK TO rows")
            bad = 0
            for row in rows:
                try:
                    db.execute(sql, row)
                except (sqlite3.Error, OverflowError, ValueError, TypeError) as err2:
                    if is_storage_fault(err2):
                        raise
                    bad += 1
            log.error("store: dropped %d rows that cannot be stored: %s", bad, err)
        db.execute("RELEASE rows")

    def _failed(self, err: Exception, readings: list[Any], outbox: list[Any],
                ops: list[Op]) -> None:
        """The batch was refused: calls fail now, everything else goes back to the front."""
        self._forgotten = [0, 0, 0]
        try:
            if self._db is not None and self._db.in_transaction:
                self._db.execute("ROLLBACK")
        except sqlite3.Error:
            pass
        kept: list[Op] = []
        for fn, fut in ops:
            if fut is None:
                kept.append((fn, fut))
            elif fut.running() or fut.set_running_or_notify_cancel():
                fut.set_exception(StoreUnavailable(f"not committed: {err}"))
        with self._lock:
            self._readings[:0] = readings
            self._outbox[:0] = outbox
            self._ops[:0] = kept
            if len(self._readings) > self.max_pending:
                self._drop_pending()
            if len(self._ops) > self.max_pending:
                self._drop_ops()
        if is_corrupt(err):
            self._recreate(str(err))
            self._wake.set()
            return
        if not self._failing:
            log.error("store: write failed, keeping %d readings in memory and retrying: %s",
                      len(readings), err)
        self._failing = True
        self._fault("write_failed", Fault("store.write_failed", error=str(err)))

    def _bound_outbox(self, db: sqlite3.Connection) -> None:
        """Drop the oldest batches beyond the size or age bound (runs in the writer)."""
        oldest = db.execute("SELECT created FROM outbox ORDER BY id LIMIT 1").fetchone()
        too_old = oldest is not None and oldest[0] < time.time() - self.outbox_max_age
        if self.outbox_bytes <= self.outbox_max_bytes and not too_old:
            return
        cutoff = time.time() - self.outbox_max_age
        rows = db.execute("SELECT id, created, lines, LENGTH(body) FROM outbox "
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
        db.execute("DELETE FROM outbox WHERE id <= ?", (last_id,))
        self._forget(self.outbox_bytes - size, lines, dropped=lines)

    def _forget(self, size: int, lines: int, dropped: int = 0) -> None:
        """What the open transaction removes from the outbox (counted once committed)."""
        self._forgotten[0] += size
        self._forgotten[1] += lines
        self._forgotten[2] += dropped

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
        """Run ``fn(conn)`` on a read connection off the event loop. A read that finds the
        database corrupt has the writer set it aside."""
        def run() -> T:
            with self._read_lock:
                try:
                    if self._read_db is None:  # never creates the file: mode=rw
                        self._read_db = _connect_uri(f"file:{self.path}?mode=rw")
                    return fn(self._read_db)
                except sqlite3.DatabaseError as err:
                    if is_corrupt(err):
                        self._corrupt_seen = (self.generation, str(err))
                        self._wake.set()
                    if is_storage_fault(err):
                        raise StoreUnavailable(f"cannot read the database: {err}") from err
                    raise
        return await asyncio.get_running_loop().run_in_executor(self._reader, run)

    def close(self) -> int:
        """Commit everything queued (trying for up to 5 s while the disk refuses), then
        close. Returns how many queued items could not be committed."""
        self._stop = True
        self._stop_by = time.monotonic() + 5
        self._wake.set()
        self._thread.join()
        self._reader.shutdown(wait=True)
        self._close_connections()
        return self.uncommitted


def _told(done: Future[None], waiter: asyncio.Future[None]) -> None:
    """(In the loop) a shared commit's outcome, to one waiter that still waits."""
    if waiter.done():
        return
    err = done.exception()
    if err is None:
        waiter.set_result(None)
    else:
        waiter.set_exception(err)


def _quiet_close(conn: sqlite3.Connection) -> None:
    try:
        conn.close()
    except sqlite3.Error as err:
        log.warning("store: closing a connection: %s", err)


def _connect_uri(uri: str) -> sqlite3.Connection:
    conn = sqlite3.connect(uri, uri=True, timeout=30, isolation_level=None,
                           check_same_thread=False)
    conn.execute("PRAGMA busy_timeout=30000")
    return conn


def _sql_value(value: Any) -> Any:
    """SQLite keeps 64-bit integers: a bigger one (a uint64 counter) is kept as a float."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int) and not -2**63 <= value < 2**63:
        return float(value)
    return value


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


def set_flags(values: dict[str, str | None]) -> Callable[[sqlite3.Connection], None]:
    """A writer op keeping small named values (None: forget one), for parts that need a few
    facts across a restart and no table of their own."""
    def write(conn: sqlite3.Connection) -> None:
        conn.executemany("INSERT OR REPLACE INTO flags VALUES (?, ?)",
                         [(k, v) for k, v in values.items() if v is not None])
        conn.executemany("DELETE FROM flags WHERE key = ?",
                         [(k,) for k, v in values.items() if v is None])
    return write


def flags(conn: sqlite3.Connection, prefix: str) -> dict[str, str]:
    """The named values whose names begin with ``prefix``."""
    return dict(conn.execute("SELECT key, value FROM flags WHERE substr(key, 1, ?) = ?",
                             (len(prefix), prefix)).fetchall())
