"""Power-loss detection beside NUT's own upsmon: dummy-ups flips from OL to OB and three
moments are timed from the .dev file change: upsd first reports OB (the floor), upsmon runs
its NOTIFYCMD (at its defaults, POLLFREQ 5), and Vigil records ONBATT (at its defaults)."""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from drivers.nut.protocol import NutClient
from monitor.bus import DeviceEvent
from monitor.config import load_config_text
from monitor.daemon import Daemon
from tests import peers
from tests.conftest import site_yaml
from tests.util import eventually


async def upsd_floor(port: int, since: float) -> float:
    """When upsd first answers OB (asked every 10 ms)."""
    client = NutClient("127.0.0.1", port)
    await client.open("off", None, None, None)
    try:
        while True:
            if "OB" in (await client.get_var("ups1", "ups.status")).split():
                return time.time() - since
            await asyncio.sleep(0.01)
    finally:
        await client.close()


def _text(path: Path) -> str:
    return path.read_text() if path.exists() else ""


def stop_upsmon(confpath: Path) -> None:
    """upsmon forks a privileged parent: end every upsmon that runs on our configuration."""
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if b"upsmon" in (proc / "cmdline").read_bytes() and \
                    f"NUT_CONFPATH={confpath}".encode() in (proc / "environ").read_bytes():
                os.kill(int(proc.name), 9)
        except (OSError, ValueError):
            continue
    Path("/run/nut/upsmon.pid").unlink(missing_ok=True)


def upsmon(work: Path, nut: peers.Nut) -> tuple[peers.Peer, Path]:
    stamps = work / "upsmon-notify.log"
    script = work / "notify.sh"
    script.write_text(f"#!/bin/sh\necho \"$(date +%s.%N) $NOTIFYTYPE\" >> {stamps}\n")
    script.chmod(0o755)
    (nut.dir / "upsmon.conf").write_text(
        f"MONITOR ups1@127.0.0.1:{nut.port} 1 monuser monpass secondary\nMINSUPPLIES 1\n"
        f"SHUTDOWNCMD \"/bin/true\"\nNOTIFYCMD {script}\nNOTIFYFLAG ONBATT EXEC\n"
        f"NOTIFYFLAG ONLINE EXEC\n")
    env = {"NUT_CONFPATH": str(nut.dir), "NUT_STATEPATH": str(nut.dir / "run"),
           "NUT_ALTPIDPATH": str(nut.dir / "run")}
    peer = peers.Peer("upsmon", ["/lib/nut/upsmon", "-u", os.environ.get("USER", "root"),
                                 "-F"], lambda: "UPS: ups1@" in _text(work / "upsmon.log"),
                      work, env=env)
    return peer, stamps


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=10)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp())
    port = peers.free_port()
    nut = peers.Nut(work, upses=("ups1",), port=port).start()
    mon, stamps = upsmon(work, nut)
    mon.start()
    cfg = load_config_text(site_yaml(work, [{
        "name": "ups1", "area": "machine_room", "class": "ups", "type": "nut",
        "connection": {"host": "127.0.0.1", "port": port, "ups": "ups1"}}]))
    daemon = Daemon(cfg)   # the NUT driver's default interval
    await daemon.start()
    seen: dict[str, float] = {}

    def record(event: DeviceEvent) -> None:  # a bus subscriber, as the notifier will be
        seen.setdefault(event.kind, time.time())
    subscription = daemon.ctx.bus.subscribe("bench", record, kinds=(DeviceEvent,))
    listener = asyncio.create_task(subscription.run())
    floor, ours, theirs = [], [], []
    try:
        await asyncio.sleep(3)
        for _ in range(args.trials):
            seen.clear()
            lines_before = len(stamps.read_text().splitlines()) if stamps.exists() else 0
            t0 = time.time()
            nut.set("ups1", **{"ups.status": "OB DISCHRG"})
            floor.append(await upsd_floor(port, t0))
            await eventually(lambda n=lines_before: "ONBATT" in seen and  # type: ignore[misc]
                             len(_text(stamps).splitlines()) > n, 15)
            ours.append(seen["ONBATT"] - t0)
            notify = [ln.split() for ln in stamps.read_text().splitlines()[lines_before:]]
            theirs.append(next(float(t) for t, kind in notify if kind == "ONBATT") - t0)
            nut.set("ups1", **{"ups.status": "OL"})
            await asyncio.sleep(7)          # upsmon and Vigil both see mains come back
    finally:
        listener.cancel()
        await daemon.stop()
        mon.stop()
        stop_upsmon(nut.dir)
        nut.stop()

    def row(name: str, values: list[float]) -> str:
        return (f"{name:34} median {statistics.median(values):5.2f} s   "
                f"max {max(values):5.2f} s")
    print(f"{args.trials} outages; times from the .dev change (dummy-ups polls every 2 s)")
    print(row("upsd first reports OB (floor)", floor))
    print(row("NUT upsmon NOTIFYCMD (defaults)", theirs))
    print(row("Vigil ONBATT recorded (defaults)", ours))
    after = [o - f for o, f in zip(ours, floor, strict=True)]
    q = statistics.quantiles(after, n=100, method="inclusive")
    print(f"Vigil after the floor: median {statistics.median(after):.2f} s, p99 {q[98]:.2f} s "
          f"(goal: median <= 0.5 s, p99 <= 1 s)")


if __name__ == "__main__":
    asyncio.run(main())
