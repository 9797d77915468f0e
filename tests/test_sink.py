"""The outbox and the InfluxDB sink: real servers, outages, refusals; nothing lost."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from monitor.config.model import SinkConfig
from monitor.core.bus import Bus
from monitor.core.sink import Sink
from monitor.core.store import Store
from tests import peers
from tests.fixtures import influxql, vm_export
from tests.servers.http_receiver import Receiver
from tests.util import eventually


class Problems:
    def __init__(self) -> None:
        self.now: dict[str, str | None] = {}
        self.seen: list[tuple[str, str | None]] = []

    def __call__(self, kind: str, message: str | None) -> None:
        self.now[kind] = message
        self.seen.append((kind, message))


T0 = time.time_ns() - 3600 * 10**9  # within VictoriaMetrics' retention


def batch(i: int, n: int = 10) -> bytes:
    return "\n".join(f"environment,device=d{i} seq={i * n + k} {T0 + (i * n + k) * 1000}"
                      for k in range(n)).encode()


async def run_sink(store: Store, cfg: SinkConfig, problems: Problems) -> tuple[Sink, Any]:
    sink = Sink(cfg, store, problems, Bus())
    return sink, asyncio.create_task(sink.run())


async def stop_sink(sink: Sink, task: Any) -> None:
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await sink.close()


def sink_cfg(url: str, **kw: Any) -> SinkConfig:
    return SinkConfig(type=kw.pop("type", "influxdb_v2"), url=url, flush_interval=0.05,
                      retry_max=kw.pop("retry_max", 0.2), **kw)


async def outbox_rows(store: Store) -> int:
    await store.committed()
    return int(await store.read(lambda c: c.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]))


@pytest.mark.parametrize("failure", ["refused", "500", "slow"])
async def test_outage_holds_everything_and_replays_in_order(store: Store, failure: str) -> None:
    port = peers.free_port()
    receiver = None if failure == "refused" else Receiver(port=port, mode=failure,
                                                          delay=1.0).start()
    problems = Problems()
    sink, task = await run_sink(store, sink_cfg(f"http://127.0.0.1:{port}", timeout=0.3),
                                problems)
    for i in range(20):
        store.add([], batch(i), 10)
        await asyncio.sleep(0.02)
    await eventually(lambda: problems.now.get("unavailable") is not None)
    assert await outbox_rows(store) == 20
    assert store.outbox_lines == 200
    if receiver is None:
        receiver = Receiver(port=port).start()
    receiver.mode = "ok"
    await eventually(lambda: store.outbox_lines == 0)
    await stop_sink(sink, task)
    receiver.stop()
    seqs = [int(ln.split(b"seq=")[1].split()[0]) for ln in receiver.lines()]
    # a timed-out write may have landed and be sent again (InfluxDB keeps one copy): no gaps,
    # and the first delivery of each point comes in the order it was queued
    first = list(dict.fromkeys(seqs))
    assert first == list(range(200))
    assert problems.now["unavailable"] is None
    assert await outbox_rows(store) == 0


async def test_unauthorized_is_an_alarm_not_a_retry_storm(store: Store) -> None:
    receiver = Receiver(mode="401").start()
    problems = Problems()
    sink, task = await run_sink(store, sink_cfg(receiver.url, retry_max=1.0), problems)
    store.add([], batch(0), 10)
    await eventually(lambda: "rejected" in problems.now, 5)
    assert problems.now["rejected"] == ('HTTP 401: {"code":"unauthorized",'
                                        '"message":"unauthorized access"}')
    await asyncio.sleep(2.0)                 # a window in which a retry storm would show
    assert len(receiver.requests) <= 4
    assert store.outbox_lines == 10          # kept: an operator fixes the token, then it flows
    receiver.mode = "ok"
    await eventually(lambda: store.outbox_lines == 0)
    assert problems.now["rejected"] is None
    await stop_sink(sink, task)
    receiver.stop()


async def test_malformed_batch_is_set_aside_with_reason(store: Store) -> None:
    receiver = Receiver(mode="400").start()
    problems = Problems()
    sink, task = await run_sink(store, sink_cfg(receiver.url), problems)
    store.add([], b"bad line", 1)
    await eventually(lambda: store.outbox_lines == 0)
    receiver.mode = "ok"
    store.add([], batch(1), 10)
    await eventually(lambda: len(receiver.lines()) == 10)
    await stop_sink(sink, task)
    receiver.stop()
    dead = await store.read(lambda c: c.execute("SELECT reason, body FROM dead_letter")
                            .fetchall())
    assert dead == [('HTTP 400: {"error":"unable to parse points"}', b"bad line")]
    assert ("rejected", 'HTTP 400: {"error":"unable to parse points"}') in problems.seen


async def test_token_is_sent_but_never_logged(store: Store, monkeypatch: pytest.MonkeyPatch,
                                              caplog: pytest.LogCaptureFixture) -> None:
    receiver = Receiver(mode="500").start()
    monkeypatch.setenv("VIGIL_TEST_INFLUX_TOKEN", "tok-3141")
    cfg = sink_cfg(receiver.url, token={"env": "VIGIL_TEST_INFLUX_TOKEN"}, org="o", bucket="b")
    problems = Problems()
    sink, task = await run_sink(store, cfg, problems)
    store.add([], batch(0), 10)
    await eventually(lambda: len(receiver.requests) >= 2)
    await stop_sink(sink, task)
    receiver.stop()
    req = receiver.requests[0]
    assert req.headers["Authorization"] == "Token tok-3141"
    assert req.path.startswith("/api/v2/write?") and "bucket=b" in req.path
    assert "tok-3141" not in caplog.text and "tok-3141" not in str(problems.seen)


async def test_writes_reach_victoria_metrics(store: Store, vm: str) -> None:
    tag = f"t{time.time_ns()}"
    problems = Problems()
    sink, task = await run_sink(store, sink_cfg(vm), problems)
    for i in range(5):
        store.add([], batch(i).replace(b"device=", f"run={tag},device=".encode()), 10)
    await eventually(lambda: store.outbox_lines == 0)
    await stop_sink(sink, task)
    series = vm_export(vm, f'environment_seq{{run="{tag}"}}')
    values = sorted(v for s in series for v in s["values"])
    assert values == list(range(50))


async def test_writes_reach_influxdb1(store: Store, influx1: str) -> None:
    influxql(influx1, "CREATE DATABASE sinktest")
    tag = f"t{time.time_ns()}"
    problems = Problems()
    sink, task = await run_sink(store, sink_cfg(influx1, type="influxdb_v1", database="sinktest"),
                                problems)
    for i in range(5):
        store.add([], batch(i).replace(b"device=", f"run={tag},device=".encode()), 10)
    await eventually(lambda: store.outbox_lines == 0)
    await stop_sink(sink, task)
    res = influxql(influx1, f"SELECT count(seq), sum(seq) FROM environment WHERE run='{tag}'",
                   "sinktest")
    assert res["results"][0]["series"][0]["values"][0][1:] == [50, sum(range(50))]
