"""An alarm storm: 1,000 alarms in 10 s (cameras and doors after a mains loss), and then
their clear. Each person should get one message per group interval, not a thousand, for the
raise and for the clear; polling should not notice; and a critical alarm raised right after
should reach both people as fast as it does after a quiet run.

20 Modbus devices (a pymodbus server process) are polled every 0.1 s; two people in the
machine-room group receive at a local webhook; group interval 5 s. Run once quiet, once with
the storm; the poll cadence (gap between stored readings of a device, minus the interval) is
compared at p99, the messages each person received are counted, and the critical alarm's
delay (raised to delivered, from the notifications on record) is compared."""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.stats import ms
from monitor.alarms.model import AlarmDef
from monitor.config import load_config_text
from monitor.config.model import Severity
from monitor.daemon import Daemon
from tests import peers
from tests.conftest import modbus_device, site_yaml
from tests.servers.http_receiver import Receiver

ROOT = Path(__file__).parent.parent
ROLES = ("it", "gm", "compliance", "dept_head", "deputy", "admin", "property", "bank_contact",
         "tech_director")


async def run(port: int, hook: Receiver, args: Any, storm: bool) -> tuple[list[float], dict]:
    work = Path(tempfile.mkdtemp())
    os.environ["STORM_A"] = f"json://127.0.0.1:{hook.port}/a"
    os.environ["STORM_B"] = f"json://127.0.0.1:{hook.port}/b"
    cfg = load_config_text(site_yaml(work, [
        modbus_device(f"cam{i}", port, [{"key": "t", "table": "holding", "address": i}],
                      interval=0.1, timeout=0.08) for i in range(args.devices)], [],
        roles=[{"name": r} for r in (ROLES if args.incident else ("it",))],
        people=[{"name": n, "roles": ["it"], "contacts": [
            {"channel": "webhook", "url": {"env": f"STORM_{n[-1].upper()}"}}]}
            for n in ("person_a", "person_b")],
        notify={"group_interval": args.group_interval, "retries": 0, "policies": [
            {"name": "p", "levels": [{"notify": [{"role": "it"}], "wait": 3600}]}],
            "routes": [{"policy": "p"}]},
        playbooks=str(ROOT / "playbooks") if args.incident else None))
    daemon = Daemon(cfg)
    await daemon.start()
    if args.incident:  # a procedure runs through the storm (every alarm is judged by it)
        daemon.incidents.start("general_report", why="基准")
    await asyncio.sleep(1)
    before = len(hook.requests)
    if storm:
        for n in range(args.alarms):
            alarm = f"storm{n}"
            daemon.alarms.define(AlarmDef(alarm, Severity.MAJOR, f"摄像机 {n} 离线",
                                          f"cam{n % args.devices}.t"))
            daemon.alarms.set_condition(alarm, True)
            await asyncio.sleep(args.seconds / args.alarms)
        await asyncio.sleep(args.group_interval + 1)   # the last group goes out
        raised = len(hook.requests)
        for n in range(args.alarms):                   # and the storm clears
            daemon.alarms.set_condition(f"storm{n}", False)
            await asyncio.sleep(args.seconds / args.alarms)
        await asyncio.sleep(args.group_interval + 1)   # the last recovery notes go out
        cleared = [r.path for r in hook.requests[raised:]]
    else:
        await asyncio.sleep(2 * (args.seconds + args.group_interval + 1))
        raised, cleared = len(hook.requests), []
    delays = await _critical(daemon)
    await daemon.store.committed()
    rows = await daemon.store.read(lambda c: c.execute(
        "SELECT point, ts FROM history ORDER BY point, ts").fetchall())
    deviations = [abs(b[1] - a[1] - 0.1) for _, group in itertools.groupby(rows, lambda r: r[0])
                  for a, b in itertools.pairwise(list(group)[5:])]
    covered = await daemon.store.read(lambda c: c.execute(  # the storm's pages
        "SELECT person, COUNT(DISTINCT alarm) FROM notifications WHERE paging "
        "AND alarm LIKE 'storm%' GROUP BY person").fetchall())
    sends = await daemon.store.read(lambda c: c.execute(
        "SELECT person, ts FROM notifications WHERE paging AND alarm LIKE 'storm%' "
        "GROUP BY person, ts ORDER BY person, ts").fetchall())
    gaps = [b[1] - a[1] for _, group in itertools.groupby(sends, lambda r: r[0])
            for a, b in itertools.pairwise(list(group))]
    await daemon.stop()
    sent = [r.path for r in hook.requests[before:raised]]
    return deviations, {"a": sent.count("/a"), "b": sent.count("/b"),
                        "clear_a": cleared.count("/a"), "clear_b": cleared.count("/b"),
                        "covered": dict(covered), "gap": min(gaps, default=0.0),
                        "critical": delays}


async def _critical(daemon: Daemon) -> list[float]:
    """Raise a critical alarm; seconds until it was delivered to each person (a failure:
    not delivered within 30 s, counted as such)."""
    daemon.alarms.define(AlarmDef("fire:z1", Severity.CRITICAL, "1 号防区火警", "cam0.t"))
    raised = time.time()
    daemon.alarms.set_condition("fire:z1", True)
    for _ in range(300):
        await daemon.store.committed()
        got = await daemon.store.read(lambda c: c.execute(
            "SELECT person, MIN(ts) FROM notifications WHERE alarm = 'fire:z1' AND ok "
            "GROUP BY person").fetchall())
        if len(got) == 2:
            return sorted(ts - raised for _, ts in got)
        await asyncio.sleep(0.1)
    return [float("inf")] * (2 - len(got)) + sorted(ts - raised for _, ts in got)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--alarms", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--devices", type=int, default=20)
    ap.add_argument("--group-interval", type=float, default=5)
    ap.add_argument("--incident", action="store_true",
                    help="with the shipped playbooks and an incident running")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp())
    port = peers.free_port()
    server, _ = peers.modbus_peer(work, port)
    server.start()
    hook = Receiver().start()
    try:
        quiet, calm_counts = await run(port, hook, args, storm=False)
        stormy, counts = await run(port, hook, args, storm=True)
    finally:
        hook.stop()
        server.stop()

    print(f"{args.alarms} alarms in {args.seconds:g} s; {args.devices} Modbus devices polled "
          f"every 0.1 s; group interval {args.group_interval:g} s"
          + ("; an incident running" if args.incident else ""))
    print(f"  messages per person: {counts['a']} and {counts['b']} for all alarms on record "
          f"{counts['covered']}; shortest gap between two pages to one person "
          f"{counts['gap']:.2f} s   goal: at most one per person per group "
          f"interval")
    print(f"  recovery notes per person for the clear: {counts['clear_a']} and "
          f"{counts['clear_b']}   goal: at most one per person per group interval")
    late = [d for d in counts["critical"] if d == float("inf")]
    print("  a critical alarm raised next, delivered after: "
          + ", ".join(f"{d * 1000:.0f} ms" for d in counts["critical"] if d != float("inf"))
          + " (after a quiet run: "
          + ", ".join(f"{d * 1000:.0f} ms" for d in calm_counts["critical"]) + ")"
          + (f"; {len(late)} not delivered within 30 s" if late else "")
          + "   goal: as if no storm had been")
    calm, storm = ms(quiet, 99), ms(stormy, 99)
    print(f"  poll cadence deviation p99: quiet {calm:.1f} ms, storm {storm:.1f} ms "
          f"({storm - calm:+.1f} ms)   goal: within 5 ms")


if __name__ == "__main__":
    asyncio.run(main())
