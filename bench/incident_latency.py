"""Alarm raised to the playbook's first notify step dispatched (on the bus, before any
network), against the goal p99 <= 50 ms. Each trial raises an alarm that starts an incident
of a one-step playbook (which then ends), so every trial is a new incident.

For comparison, the same daemon's alarm raised -> AlarmEvent delivered to a bus subscriber
(the floor the playbook runtime adds to)."""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from bench.stats import ms
from monitor.alarms.model import AlarmDef
from monitor.config import load_config_text
from monitor.config.model import Severity
from monitor.core.bus import AlarmEvent, IncidentNotice
from monitor.daemon import Daemon
from tests.conftest import site_yaml

PLAYBOOK = """\
name: bench
label: 基准
roles: [it]
triggers: [{alarm: {alarm: ["bench:"]}}]
steps:
  - {id: tell, kind: notify, roles: [it], message: 基准测试, next: end}
"""


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=300)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp())
    (work / "books").mkdir()
    (work / "books" / "bench.yaml").write_text(PLAYBOOK, encoding="utf-8")
    cfg = load_config_text(site_yaml(work, [], [], roles=[{"name": "it"}],
                                     playbooks=str(work / "books")))
    daemon = Daemon(cfg)
    await daemon.start()
    seen: dict[str, float] = {}
    dispatched = asyncio.Event()

    def on(event: AlarmEvent | IncidentNotice) -> None:
        now = time.perf_counter()
        if isinstance(event, IncidentNotice):
            seen.setdefault("notice", now)
            dispatched.set()
        elif event.action == "raised":
            seen.setdefault("alarm", now)
    listener = asyncio.create_task(daemon.ctx.bus.subscribe(
        "bench", on, kinds=(AlarmEvent, IncidentNotice)).run())
    notice, alarm, failures = [], [], 0
    for n in range(args.trials):
        alarm_id = f"bench:{n}"
        daemon.alarms.define(AlarmDef(alarm_id, Severity.MAJOR, "基准告警"))
        seen.clear()
        dispatched.clear()
        t0 = time.perf_counter()
        daemon.alarms.set_condition(alarm_id, True)
        try:
            await asyncio.wait_for(dispatched.wait(), 2)
            notice.append(seen["notice"] - t0)
            alarm.append(seen["alarm"] - t0)
        except TimeoutError:
            failures += 1
        daemon.alarms.set_condition(alarm_id, False)
        await asyncio.sleep(0.005)
    listener.cancel()
    await daemon.store.committed()  # what was submitted is committed
    incidents = await daemon.store.read(lambda c: c.execute(
        "SELECT COUNT(*) FROM incidents").fetchone()[0])
    await daemon.stop()
    print(f"alarm raised -> first notify step dispatched ({args.trials} trials, "
          f"{incidents} incidents stored)")
    print(f"  AlarmEvent at a bus subscriber:  p50 {ms(alarm, 50):6.2f} ms   "
          f"p99 {ms(alarm, 99):6.2f} ms")
    print(f"  playbook notify step dispatched: p50 {ms(notice, 50):6.2f} ms   "
          f"p99 {ms(notice, 99):6.2f} ms   mean {statistics.mean(notice) * 1000:.2f} ms   "
          f"failures {failures}   goal: p99 <= 50 ms")


if __name__ == "__main__":
    asyncio.run(main())
