"""A slow bus subscriber changes nothing for polling: poll cadence p99 beside a run without
it, and no event lost.

DEVICES Modbus devices (a pymodbus server process) are polled every INTERVAL for SECONDS,
twice: alone, then with a subscriber to every poll's readings that takes 1 s per event
(an awaited sleep: a slow consumer such as a chat robot, not a blocked loop). The cadence is
the gap between successive stored readings of a device; its deviation from the interval is
compared at p99."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import tempfile
from pathlib import Path
from typing import Any

from bench.stats import ms
from monitor.config import load_config_text
from monitor.core.bus import Readings
from monitor.daemon import Daemon
from tests import peers
from tests.conftest import modbus_device, site_yaml


async def run(port: int, args: Any, slow: bool) -> tuple[list[float], int, int, int]:
    work = Path(tempfile.mkdtemp())
    cfg = load_config_text(site_yaml(work, [
        modbus_device(f"env{i}", port, [{"key": "t", "table": "holding", "address": i}],
                      interval=args.interval, timeout=args.interval * 0.8)
        for i in range(args.devices)]))
    daemon = Daemon(cfg)
    await daemon.start()
    handled = 0
    task = None
    sub = None
    sent = 0

    def count(_: Readings) -> None:
        nonlocal sent
        sent += 1
    counter = asyncio.create_task(daemon.ctx.bus.subscribe("count", count,
                                                           kinds=(Readings,)).run())
    if slow:
        async def sleepy(_: Readings) -> None:
            nonlocal handled
            handled += 1  # taken (the one in hand counts)
            await asyncio.sleep(1.0)
        sub = daemon.ctx.bus.subscribe("slow", sleepy, kinds=(Readings,), maxsize=100_000)
        task = asyncio.create_task(sub.run())
    await asyncio.sleep(args.seconds)
    await daemon.store.committed()
    rows = await daemon.store.read(lambda c: c.execute(
        "SELECT point, ts FROM history ORDER BY point, ts").fetchall())
    deviations = [abs(b[1] - a[1] - args.interval)
                  for _, group in itertools.groupby(rows, key=lambda r: r[0])
                  for a, b in itertools.pairwise(list(group)[2:])]
    queued = len(sub.queue) if sub else 0
    dropped = sub.dropped if sub else 0
    counter.cancel()
    if task:
        task.cancel()
    await daemon.stop()
    return deviations, handled + queued, dropped, sent


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--devices", type=int, default=20)
    ap.add_argument("--interval", type=float, default=0.1)
    ap.add_argument("--seconds", type=float, default=20)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp())
    port = peers.free_port()
    server, _ = peers.modbus_peer(work, port)
    server.start()
    try:
        alone, _, _, _ = await run(port, args, slow=False)
        slowed, kept, dropped, sent = await run(port, args, slow=True)
    finally:
        server.stop()

    print(f"{args.devices} Modbus devices every {args.interval:g} s for {args.seconds:g} s "
          f"(pymodbus server process)")
    print(f"  poll cadence deviation p99 without the slow subscriber: {ms(alone, 99):6.1f} ms "
          f"({len(alone)} gaps)")
    print(f"  poll cadence deviation p99 with a 1 s/event subscriber: {ms(slowed, 99):6.1f} ms "
          f"({len(slowed)} gaps)   difference {ms(slowed, 99) - ms(alone, 99):+.1f} ms   "
          f"goal: within 5 ms")
    print(f"  the slow subscriber: {kept:,} of {sent:,} poll events taken or still queued, "
          f"{dropped} dropped   goal: none lost")


if __name__ == "__main__":
    asyncio.run(main())
