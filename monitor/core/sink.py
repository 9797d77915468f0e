"""Forward the outbox to InfluxDB in order, in batches; wait out outages, lose nothing."""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from monitor.config.model import SinkConfig
from monitor.core.bus import Bus, StoreCommitted
from monitor.core.store import Store, StoreUnavailable
from monitor.core.supervisor import wait_event

log = logging.getLogger(__name__)


class SinkUnavailable(Exception):
    """The server cannot take the batch now (down, slow, 5xx): keep it and retry."""


class SinkRejected(Exception):
    """The server refused the batch for a reason retrying will not fix (4xx)."""

    def __init__(self, status: int, reason: str):
        super().__init__(_reason(status, reason))
        self.status = status

    @property
    def poison(self) -> bool:
        """The data itself is bad (not auth or addressing): set the batch aside."""
        return self.status in (400, 422)


def _reason(status: int, text: str) -> str:
    return f"HTTP {status}: {text.strip()[:300]}"


def _classify(status: int, text: str) -> Exception:
    if status >= 500 or status in (408, 429):
        return SinkUnavailable(_reason(status, text))
    return SinkRejected(status, text.strip()[:300])


class V2Writer:
    """InfluxDB v2 write API through influxdb-client (InfluxDB 2.x/3.x, VictoriaMetrics, ...)."""

    def __init__(self, cfg: SinkConfig):
        from influxdb_client import InfluxDBClient
        from influxdb_client.client.write_api import SYNCHRONOUS

        token = cfg.token.resolve().get_secret_value() if cfg.token is not None else ""
        self.cfg = cfg
        self.client = InfluxDBClient(url=cfg.url, token=token, org=cfg.org,
                                     timeout=int(cfg.timeout * 1000), enable_gzip=False)
        self.api = self.client.write_api(write_options=SYNCHRONOUS)

    def _post(self, body: bytes) -> None:
        from influxdb_client import WritePrecision
        from influxdb_client.rest import ApiException
        from urllib3.exceptions import HTTPError

        try:
            self.api.write(self.cfg.bucket, self.cfg.org, record=body,
                           write_precision=WritePrecision.NS)  # type: ignore[arg-type]
        except ApiException as err:
            raise _classify(err.status or 0, str(err.body or err.reason)) from err
        except (HTTPError, OSError) as err:
            raise SinkUnavailable(f"{type(err).__name__}: {err}") from err

    async def write(self, body: bytes) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._post, body)

    async def close(self) -> None:
        self.client.close()


class V1Writer:
    """InfluxDB 1.x ``/write`` (the API InfluxDB 1.x has; 2.x and 3.x keep it too)."""

    def __init__(self, cfg: SinkConfig):
        params: dict[str, str] = {"db": cfg.database, "precision": "ns"}
        if cfg.username:
            params["u"] = cfg.username
        if cfg.password is not None:
            params["p"] = cfg.password.resolve().get_secret_value()
        self.url = cfg.url.rstrip("/") + "/write"
        self.client = httpx.AsyncClient(params=params, timeout=cfg.timeout)

    async def write(self, body: bytes) -> None:
        try:
            resp = await self.client.post(self.url, content=body)
        except httpx.HTTPError as err:
            raise SinkUnavailable(f"{type(err).__name__}: {err}") from err
        if resp.status_code >= 300:
            raise _classify(resp.status_code, resp.text or resp.reason_phrase)

    async def close(self) -> None:
        await self.client.aclose()


@dataclass
class SinkStatus:
    ok: bool = False
    """False until the first delivery (clears alarms left from before a restart)."""
    last_error: str | None = None
    last_success: float | None = None
    written_lines: int = 0
    oldest_pending: float | None = None


def _take(conn: sqlite3.Connection, max_lines: int) -> list[tuple[int, float, int, bytes]]:
    rows: list[tuple[int, float, int, bytes]] = []
    total = 0
    for row in conn.execute("SELECT id, created, lines, body FROM outbox ORDER BY id LIMIT 1000"):
        if rows and total + row[2] > max_lines:
            break
        rows.append(row)
        total += row[2]
    return rows


class Sink:
    """The outbox forwarder; reports trouble through ``on_problem(kind, message or None)``."""

    def __init__(self, cfg: SinkConfig, store: Store,
                 on_problem: Callable[[str, str | None], None], bus: Bus):
        self.cfg, self.store, self.on_problem = cfg, store, on_problem
        self.writer: V1Writer | V2Writer = (V2Writer(cfg) if cfg.type == "influxdb_v2"
                                            else V1Writer(cfg))
        self.status = SinkStatus()
        self.wake = asyncio.Event()
        self.running = True
        self.subscription = bus.subscribe("sink", lambda _: self.wake.set(),
                                          kinds=(StoreCommitted,))

    def stop(self) -> None:
        """End the loop (see DevicePoller.stop for why a cancel alone is not enough)."""
        self.running = False
        self.wake.set()

    async def run(self) -> None:
        delay = self.cfg.flush_interval
        while self.running:
            try:
                rows = await self.store.read(lambda c: _take(c, self.cfg.batch_size))
            except StoreUnavailable:  # the store alarms; wait for it
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.cfg.retry_max)
                continue
            if not rows:
                self.status.oldest_pending = None
                self.wake.clear()
                await wait_event(self.wake, self.cfg.flush_interval)
                continue
            self.status.oldest_pending = rows[0][1]
            body = b"\n".join(r[3] for r in rows)
            ids = [r[0] for r in rows]
            try:
                await self._send(body, ids)
            except StoreUnavailable as err:  # delivered, but not yet marked: sent again later
                log.warning("sink: cannot mark a delivered batch (%s); it will be sent again "
                            "(the same points, so no duplicates in InfluxDB)", err)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.cfg.retry_max)
                continue
            except SinkUnavailable:
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.cfg.retry_max)
                continue
            except SinkRejected as err:
                if not err.poison:  # auth or addressing: an operator must fix it; retry slowly
                    await asyncio.sleep(self.cfg.retry_max)
                continue
            self.status.written_lines += sum(r[2] for r in rows)
            self.status.last_success = time.time()
            if not self.status.ok:
                if self.status.last_error is not None:
                    log.warning("sink: %s accepts writes again", self.cfg.url)
                self.status.ok = True
                self.status.last_error = None
                self.on_problem("unavailable", None)
                self.on_problem("rejected", None)
            delay = self.cfg.flush_interval

    async def _send(self, body: bytes, ids: list[int]) -> None:
        """Write one batch, then take it out of the outbox (or set it aside when the server
        refuses its data)."""
        try:
            await self.writer.write(body)
        except SinkUnavailable as err:
            self._trouble("unavailable", str(err))
            raise
        except SinkRejected as err:
            self._trouble("rejected", str(err))
            if err.poison:
                await self.store.call(functools.partial(self.store.remove_outbox, ids=ids,
                                                        dead_reason=str(err)))
            raise
        await self.store.call(functools.partial(self.store.remove_outbox, ids=ids))

    def _trouble(self, kind: str, message: str) -> None:
        if self.status.ok or self.status.last_error != message:
            log.warning("sink: %s: %s (keeping data in the outbox)", self.cfg.url, message)
        self.status.ok = False
        self.status.last_error = message
        self.on_problem(kind, message)

    async def close(self) -> None:
        await self.writer.close()

