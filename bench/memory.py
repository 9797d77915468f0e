"""Daemon resident memory with 1,000 points polled every second (goal: <= 150 MB).

`vigil run` in its own process (API on, embedded store, sink to a VictoriaMetrics) polls 10
devices of 100 registers each from a libmodbus server once a second; RSS is sampled from /proc.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from tests import peers


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=60)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp())
    port = peers.free_port()
    server = peers.libmodbus_server(work, port).start()
    vm = peers.victoria_metrics(work).start()
    devices = [{"name": f"d{i}", "area": "a", "class": "environment", "type": "modbus",
                "interval": 1, "timeout": 0.5, "connection": {"host": "127.0.0.1", "port": port},
                "points": [{"key": f"p{r}", "table": "holding", "address": i * 100 + r,
                            "scale": 0.1} for r in range(100)]} for i in range(10)]
    cfg = work / "site.yaml"
    cfg.write_text(yaml.safe_dump({
        "site": {"name": "mem"}, "data_dir": str(work / "data"), "areas": [{"name": "a"}],
        "devices": devices,
        "rules": [{"name": f"r{i}", "point": f"d{i}.p0", "kind": "threshold", "high": 1e6}
                  for i in range(10)],
        "sink": {"type": "influxdb_v2", "url": f"http://127.0.0.1:{peers.VM_PORT}"},
        "api": {"port": peers.free_port()}}))
    proc = subprocess.Popen([sys.executable, "-m", "monitor.cli", "run", str(cfg)],
                            env={**os.environ, "VIGIL_API_TOKEN": "bench-token-0123456789"},
                            stderr=subprocess.DEVNULL)
    samples = []
    try:
        for _ in range(args.seconds):
            time.sleep(1)
            samples.append(rss_mb(proc.pid))
    finally:
        proc.terminate()
        proc.wait(10)
        vm.stop()
        server.stop()
    print(f"1,000 points at 1 s for {args.seconds} s (API on, sink to VictoriaMetrics)")
    print(f"daemon RSS: after 10 s {samples[9]:.0f} MB, at the end {samples[-1]:.0f} MB, "
          f"max {max(samples):.0f} MB (goal <= 150 MB)")


if __name__ == "__main__":
    main()
