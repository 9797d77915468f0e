"""Sink throughput into VictoriaMetrics (InfluxDB v2 write API): the daemon's outbox drained
by the sink through influxdb-client, beside raw HTTP POSTs of the same line protocol."""

from __future__ import annotations

import argparse
import asyncio
import http.client
import tempfile
import time
from pathlib import Path

from monitor.config.model import SinkConfig
from monitor.core.bus import Bus
from monitor.core.sink import Sink
from monitor.core.store import Store
from tests import peers
from tests.util import eventually

BATCH = 5000


def bodies(n_lines: int, tag: str) -> list[bytes]:
    t0 = time.time_ns() - 3600 * 10**9
    out = []
    for b in range(0, n_lines, BATCH):
        out.append("\n".join(
            f"environment,site={tag},area=machine_room,device=d{i % 100} "
            f"temperature={20 + (i % 50) / 10},humidity={40 + (i % 30) / 10} {t0 + i * 1000}"
            for i in range(b, min(b + BATCH, n_lines))).encode())
    return out


def raw_post(url: str, payloads: list[bytes]) -> float:
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port))
    start = time.perf_counter()
    for body in payloads:
        conn.request("POST", "/api/v2/write?org=vigil&bucket=vigil&precision=ns", body)
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 204, resp.status
    return time.perf_counter() - start


async def sink_drain(url: str, payloads: list[bytes], work: Path) -> float:
    store = Store(work, flush_interval=0.05)
    for body in payloads:                    # fill the outbox first, sink not yet running
        store.add([], body, body.count(b"\n") + 1)
    await store.committed()
    sink = Sink(SinkConfig(type="influxdb_v2", url=url, batch_size=BATCH), store,
                lambda kind, msg: None, Bus())
    start = time.perf_counter()
    task = asyncio.create_task(sink.run())
    await eventually(lambda: store.outbox_lines == 0, within=600)
    elapsed = time.perf_counter() - start
    task.cancel()
    await sink.close()
    store.close()
    return elapsed


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=500_000)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp())
    vm = peers.victoria_metrics(work).start()
    url = f"http://127.0.0.1:{peers.VM_PORT}"
    try:
        raw = raw_post(url, bodies(args.lines, "raw"))
        ours = await sink_drain(url, bodies(args.lines, "sink"), work)
    finally:
        vm.stop()
    points = args.lines * 2  # two fields per line
    print(f"peer: VictoriaMetrics /api/v2/write; {args.lines:,} lines of 2 fields, "
          f"batches of {BATCH}")
    print(f"raw HTTP POST:              {points / raw:12,.0f} points/s")
    print(f"vigil sink from the outbox: {points / ours:12,.0f} points/s "
          f"({raw / ours:.0%} of raw; goal >= 50%)")


if __name__ == "__main__":
    asyncio.run(main())
