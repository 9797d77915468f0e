"""Modbus polling: points/s the daemon stores on one core, beside a bare pymodbus loop.

Peer: a libmodbus server (tests/servers/libmodbus_server.c, 10,000 holding registers), so the
server is not the limit. DEVICES devices of 120 int16 registers each (one request per device
per poll, every address inside the server's map) are polled every INTERVAL:

- by bare pymodbus: one client per device, each polling on the same interval (the same
  concurrency and schedule as the daemon), reading and decoding only;
- by the daemon: poll -> state -> rules -> SQLite history. A point counts once committed
  with quality good; invalid readings and failed polls are printed, never counted.

The unpaced single-client loop is printed as the ceiling of one connection.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import struct
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from pymodbus.client import AsyncModbusTcpClient

from monitor.config import load_config_text
from monitor.daemon import Daemon
from tests import peers

REGS = 120


SERVER_REGISTERS = 10_000


def address(device: int) -> int:
    """Where a device's block starts: inside the server's map, whatever the device count."""
    return device % (SERVER_REGISTERS // REGS) * REGS


async def _client_loop(port: int, device: int, interval: float | None, end: float,
                       counts: list[int]) -> None:
    """Read and decode one device's block, on ``interval`` (None: as fast as it answers)."""
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
    await client.connect()
    fmt = struct.Struct(f">{REGS}h")
    pack = struct.Struct(f">{REGS}H").pack
    next_poll = time.perf_counter()
    while time.perf_counter() < end:
        reply = await client.read_holding_registers(address(device), count=REGS, device_id=1)
        if reply.isError():
            counts[1] += 1
        else:
            counts[0] += len([v * 0.1 for v in fmt.unpack(pack(*reply.registers))])
        if interval is not None:
            next_poll += interval
            await asyncio.sleep(max(0.0, next_poll - time.perf_counter()))
    client.close()


async def bare_loop(port: int, devices: int, interval: float | None,
                    seconds: float) -> tuple[float, int]:
    """Values/s decoded by ``devices`` concurrent clients; and the error replies."""
    counts = [0, 0]
    start = time.perf_counter()
    await asyncio.gather(*(_client_loop(port, d, interval, start + seconds, counts)
                           for d in range(devices)))
    return counts[0] / (time.perf_counter() - start), counts[1]


def site(port: int, devices: int, interval: float, data_dir: Path) -> str:
    devs = [{"name": f"d{i}", "area": "a", "class": "environment", "type": "modbus",
             "interval": interval, "timeout": interval * 0.9,
             "connection": {"host": "127.0.0.1", "port": port,
                            "device_id": 1 + i // (SERVER_REGISTERS // REGS)},
             "points": [{"key": f"p{r}", "table": "holding", "address": address(i) + r,
                         "data_type": "int16", "scale": 0.1} for r in range(REGS)]}
            for i in range(devices)]
    return yaml.safe_dump({"site": {"name": "bench"}, "data_dir": str(data_dir),
                           "areas": [{"name": "a"}], "devices": devs,
                           "api": {"enabled": False}})


async def daemon_run(port: int, devices: int, interval: float,
                     seconds: float) -> tuple[float, dict[str, float]]:
    with tempfile.TemporaryDirectory() as tmp:
        daemon = Daemon(load_config_text(site(port, devices, interval, Path(tmp))))
        await daemon.start()
        await asyncio.sleep(1.0)  # warm up
        def count(c: Any) -> tuple[int, int]:
            return c.execute("SELECT COALESCE(SUM(quality = 'good'), 0), "
                             "COALESCE(SUM(quality != 'good'), 0) FROM history").fetchone()
        failed = daemon.ctx.metrics.poll_failures
        await daemon.store.committed()
        before, failed0 = await daemon.store.read(count), _total(failed)
        cpu0, t0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        await daemon.store.committed()
        after = await daemon.store.read(count)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        info = {"cpu_share": cpu / elapsed, "failures": _total(failed) - failed0,
                "not_good": after[1] - before[1]}
        await daemon.stop()
    return (after[0] - before[0]) / elapsed, info


def _total(counter: Any) -> float:
    return sum(s.value for m in counter.collect() for s in m.samples
               if s.name.endswith("_total"))


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--devices", type=int, default=100)
    ap.add_argument("--interval", type=float, default=0.1)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp())
    port = peers.free_port()
    server = peers.libmodbus_server(work, port).start()
    os.sched_setaffinity(0, {0})  # the daemon gets one core; the server runs on the other
    if server.proc:
        os.sched_setaffinity(server.proc.pid, {1})
    try:
        ceiling, _ = await bare_loop(port, 1, None, args.seconds)
        bare, bare_errors = await bare_loop(port, args.devices, args.interval, args.seconds)
        stored, info = await daemon_run(port, args.devices, args.interval, args.seconds)
    finally:
        server.stop()
    demand = args.devices * REGS / args.interval
    print(f"peer: libmodbus server; {REGS} int16 registers per request; {args.seconds:g} s each; "
          f"{args.devices} devices every {args.interval:g} s ask {demand:,.0f} values/s")
    print(f"bare pymodbus, 1 client unpaced (ceiling): {ceiling:12,.0f} values/s")
    print(f"bare pymodbus, {args.devices} clients paced:      {bare:12,.0f} values/s decoded, "
          f"{bare_errors} error replies")
    print(f"vigil daemon, {args.devices} devices paced:       {stored:12,.0f} points/s stored "
          f"good (poll -> rules -> SQLite), {info['cpu_share']:.0%} of one core, "
          f"{info['not_good']:.0f} readings not good, {info['failures']:.0f} failed polls")
    print(f"ratio daemon / bare at the same concurrency and interval: {stored / bare:.1%}   "
          f"goal: >= 50,000 points/s")


if __name__ == "__main__":
    asyncio.run(main())
