"""SNMP trap received to event recorded: an upsTrapOnBattery sent over UDP to the receiver,
timed to the moment the ONBATT event is handed to the store, and to its commit in SQLite."""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from monitor.config import load_config_text
from monitor.core.bus import DeviceEvent
from monitor.daemon import Daemon
from tests import peers
from tests.conftest import site_yaml
from tests.util import recorded

ON_BATTERY = "1.3.6.1.2.1.33.2.1"


def trap_bytes(oid: str) -> bytes:
    """What net-snmp's snmptrap sends, caught once, to replay."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        subprocess.run(["snmptrap", "-v", "2c", "-c", "bench", f"127.0.0.1:{s.getsockname()[1]}",
                        "", oid], check=True, env={"MIBS": "", "PATH": "/usr/bin:/bin"})
        return s.recv(65535)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--traps", type=int, default=200)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp())
    os.environ["VIGIL_BENCH_COMMUNITY"] = "bench"
    port = peers.free_port()
    cfg = load_config_text(site_yaml(work, [{
        "name": "ups1", "area": "machine_room", "class": "ups", "type": "snmp",
        "interval": 3600, "timeout": 1, "profile": "ups-mib",
        "connection": {"host": "127.0.0.1", "port": peers.free_port()}}],
        traps={"listen": "127.0.0.1", "port": port,
               "communities": [{"env": "VIGIL_BENCH_COMMUNITY"}]}))
    daemon = Daemon(cfg)
    await daemon.start()
    handed: list[float] = []
    arrived = asyncio.Event()

    def timed(event: DeviceEvent) -> None:  # a subscriber, as the notifier will be
        if event.kind == "ONBATT":
            handed.append(time.perf_counter())
            arrived.set()
    subscription = daemon.ctx.bus.subscribe("bench", timed, kinds=(DeviceEvent,))
    task = asyncio.create_task(subscription.run())
    packet = trap_bytes(ON_BATTERY)
    to_handover, to_commit = [], []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _ in range(args.traps):
            arrived.clear()
            sent = time.perf_counter()
            s.sendto(packet, ("127.0.0.1", port))
            await arrived.wait()
            await recorded(daemon)                   # the event row is committed
            to_handover.append(handed[-1] - sent)
            to_commit.append(time.perf_counter() - sent)
            await asyncio.sleep(0.01)
    task.cancel()
    await daemon.stop()

    def pct(values: list[float]) -> str:
        q = statistics.quantiles(values, n=100, method="inclusive")
        return f"p50 {q[49] * 1000:6.2f} ms   p99 {q[98] * 1000:6.2f} ms"
    print(f"{args.traps} upsTrapOnBattery traps (SNMPv2c) on loopback")
    print(f"trap sent -> ONBATT event recorded:     {pct(to_handover)}")
    print(f"trap sent -> event committed to SQLite: {pct(to_commit)}   (goal: p99 <= 50 ms)")


if __name__ == "__main__":
    asyncio.run(main())
