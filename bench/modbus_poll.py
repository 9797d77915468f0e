"""Modbus polling: points/s the daemon stores on one core, beside a bare pymodbus loop.

Peer: a libmodbus server (tests/servers/libmodbus_server.c), so the server is not the limit.
The daemon polls DEVICES devices of 120 int16 registers each (one request per device per
poll) as fast as it can; a point counts once its reading is committed to SQLite history.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import struct
import tempfile
import time
from pathlib import Path

import yaml
from pymodbus.client import AsyncModbusTcpClient

from monitor.config import load_config_text
from monitor.daemon import Daemon
from tests import peers

REGS = 120


async def bare_loop(port: int, seconds: float) -> tuple[float, float]:
    """Read REGS registers and decode them as int16 with scale, in a tight loop."""
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=0)
    await client.connect()
    fmt = struct.Struct(f">{REGS}h")
    pack = struct.Struct(f">{REGS}H").pack
    n = 0
    end = time.perf_counter() + seconds
    start = time.perf_counter()
    while time.perf_counter() < end:
        reply = await client.read_holding_registers(0, count=REGS, device_id=1)
        values = [v * 0.1 for v in fmt.unpack(pack(*reply.registers))]
        n += len(values)
    elapsed = time.perf_counter() - start
    client.close()
    return n / elapsed, n / REGS / elapsed


def site(port: int, devices: int, interval: float, data_dir: Path) -> str:
    devs = [{"name": f"d{i}", "area": "a", "class": "environment", "type": "modbus",
             "interval": interval, "timeout": interval * 0.9,
             "connection": {"host": "127.0.0.1", "port": port},
             "points": [{"key": f"p{r}", "table": "holding", "address": i * REGS + r,
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
        count = lambda c: c.execute("SELECT COUNT(*) FROM history").fetchone()[0]  # noqa: E731
        await daemon.store.call(lambda c: None)
        before = await daemon.store.read(count)
        cpu0, t0 = time.process_time(), time.perf_counter()
        await asyncio.sleep(seconds)
        await daemon.store.call(lambda c: None)
        after = await daemon.store.read(count)
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        failures = sum(d.failures for d in daemon.state.devices.values())
        await daemon.stop()
    return (after - before) / elapsed, {"cpu_share": cpu / elapsed, "failures": failures}


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
        bare_values, bare_requests = await bare_loop(port, args.seconds)
        stored, info = await daemon_run(port, args.devices, args.interval, args.seconds)
    finally:
        server.stop()
    print(f"peer: libmodbus server; {REGS} int16 registers per request; {args.seconds:g} s each")
    print(f"bare pymodbus loop (read + decode): {bare_values:12,.0f} values/s "
          f"({bare_requests:,.0f} requests/s)")
    demand = args.devices * REGS / args.interval
    print(f"vigil daemon, {args.devices} devices at {args.interval:g} s (asks {demand:,.0f}/s): "
          f"{stored:12,.0f} points/s stored (poll -> rules -> SQLite), "
          f"{info['cpu_share']:.0%} of one core, {info['failures']:.0f} failed polls")
    print(f"ratio daemon / bare loop: {stored / bare_values:.1%}   goal: >= 50,000 points/s")


if __name__ == "__main__":
    asyncio.run(main())
