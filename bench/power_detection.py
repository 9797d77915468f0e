"""Power-loss detection beside NUT's own upsmon: dummy-ups flips from OL to OB and three
moments are timed from the .dev file change: upsd first reports OB (the floor), upsmon runs
its NOTIFYCMD, and a bus subscriber of Vigil's sees ONBATT. Twice: both at their defaults
(upsmon POLLFREQ 5, Vigil's NUT driver every 0.5 s), and at equal poll intervals (upsmon
POLLFREQ 1 beside Vigil at 1 s). Everything lives in a temporary directory, upsmon's PID file
included (it runs in a mount namespace of its own): no system file is touched."""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from drivers.nut.protocol import NutClient
from monitor.config import load_config_text
from monitor.core.bus import DeviceEvent
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


def upsmon(work: Path, nut: peers.Nut, pollfreq: int | None) -> tuple[peers.Peer, Path]:
    """upsmon at its default POLLFREQ (None) or at ``pollfreq`` seconds."""
    stamps = work / f"upsmon-notify-{pollfreq}.log"
    script = work / "notify.sh"
    script.write_text(f"#!/bin/sh\necho \"$(date +%s.%N) $NOTIFYTYPE\" >> {stamps}\n")
    script.chmod(0o755)
    (nut.dir / "upsmon.conf").write_text(
        f"MONITOR ups1@127.0.0.1:{nut.port} 1 monuser monpass secondary\nMINSUPPLIES 1\n"
        f"SHUTDOWNCMD \"/bin/true\"\nNOTIFYCMD {script}\nNOTIFYFLAG ONBATT EXEC\n"
        f"NOTIFYFLAG ONLINE EXEC\n" + (f"POLLFREQ {pollfreq}\n" if pollfreq else ""))
    env = {"NUT_CONFPATH": str(nut.dir), "NUT_STATEPATH": str(nut.dir / "run"),
           "NUT_ALTPIDPATH": str(nut.dir / "run")}
    name = f"upsmon-{pollfreq or 'default'}"
    run = work / f"{name}-run"
    run.mkdir()
    # upsmon writes /run/nut/upsmon.pid whatever NUT_ALTPIDPATH says: in a mount namespace of
    # its own, /run/nut is a directory of ours, and the system's stays untouched
    user = os.environ.get("USER", "root")
    argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            f"mount --bind {run} /run/nut && exec /lib/nut/upsmon -u {user} -F"]
    peer = peers.Peer(name, argv, lambda: "UPS: ups1@" in _text(work / f"{name}.log"), work,
                      env=env)
    return peer, stamps


async def trials(work: Path, nut: peers.Nut, count: int, pollfreq: int | None,
                 interval: float | None) -> tuple[list[float], list[float], list[float]]:
    """Outages timed with upsmon at ``pollfreq`` and Vigil polling every ``interval``
    (None: their defaults); the floor, Vigil's and upsmon's delays."""
    mon, stamps = upsmon(work, nut, pollfreq)
    mon.start()
    device: dict[str, object] = {
        "name": "ups1", "area": "machine_room", "class": "ups", "type": "nut",
        "connection": {"host": "127.0.0.1", "port": nut.port, "ups": "ups1"}}
    if interval is not None:
        device.update(interval=interval, timeout=interval * 0.8)
    daemon = Daemon(load_config_text(site_yaml(work / f"vigil-{interval}", [device])))
    await daemon.start()
    seen: dict[str, float] = {}

    def record(event: DeviceEvent) -> None:  # a bus subscriber, as the notifier will be
        seen.setdefault(event.kind, time.time())
    subscription = daemon.ctx.bus.subscribe("bench", record, kinds=(DeviceEvent,))
    listener = asyncio.create_task(subscription.run())
    floor: list[float] = []
    ours: list[float] = []
    theirs: list[float] = []
    try:
        await asyncio.sleep(3)
        for _ in range(count):
            seen.clear()
            lines_before = len(_text(stamps).splitlines())
            t0 = time.time()
            nut.set("ups1", **{"ups.status": "OB DISCHRG"})
            floor.append(await upsd_floor(nut.port, t0))
            await eventually(lambda n=lines_before: "ONBATT" in seen and  # type: ignore[misc]
                             len(_text(stamps).splitlines()) > n, 15)
            ours.append(seen["ONBATT"] - t0)
            notify = [ln.split() for ln in _text(stamps).splitlines()[lines_before:]]
            theirs.append(next(float(t) for t, kind in notify if kind == "ONBATT") - t0)
            nut.set("ups1", **{"ups.status": "OL"})
            await asyncio.sleep(7)          # upsmon and Vigil both see mains come back
    finally:
        listener.cancel()
        await daemon.stop()
        mon.stop()
        stop_upsmon(nut.dir)
    return floor, ours, theirs


def report(title: str, floor: list[float], ours: list[float], theirs: list[float]) -> None:
    def row(name: str, values: list[float]) -> str:
        return (f"  {name:36} median {statistics.median(values):5.2f} s   "
                f"max {max(values):5.2f} s")
    print(title)
    print(row("upsd first reports OB (floor)", floor))
    print(row("NUT upsmon NOTIFYCMD", theirs))
    print(row("Vigil ONBATT on the bus", ours))
    after = [o - f for o, f in zip(ours, floor, strict=True)]
    q = statistics.quantiles(after, n=100, method="inclusive")
    mon_after = [t - f for t, f in zip(theirs, floor, strict=True)]
    print(f"  after the floor: Vigil median {statistics.median(after):.2f} s, p99 {q[98]:.2f} s;"
          f" upsmon median {statistics.median(mon_after):.2f} s")


def _system_pid() -> bool:
    return Path("/run/nut/upsmon.pid").exists()


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=10)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp())
    pid_before = _system_pid()
    nut = peers.Nut(work, upses=("ups1",), port=peers.free_port()).start()
    try:
        defaults = await trials(work, nut, args.trials, None, None)
        equal = await trials(work, nut, args.trials, 1, 1.0)
    finally:
        nut.stop()
    print(f"{args.trials} outages each; times from the .dev change (dummy-ups polls every 2 s)")
    report("both at their defaults (upsmon POLLFREQ 5, Vigil NUT every 0.5 s):", *defaults)
    print("  goal: Vigil median <= 0.5 s and p99 <= 1 s after the floor")
    report("equal poll intervals (upsmon POLLFREQ 1, Vigil every 1 s):", *equal)
    if _system_pid() and not pid_before:
        print("NOTE: /run/nut/upsmon.pid appeared during the run")


if __name__ == "__main__":
    asyncio.run(main())
