"""Many incidents at once, on one core: 1,000 incidents each waiting 5 s (a durable timer),
then a checklist that keeps them running. Prints the memory the daemon grew by, how late the
timers fired (p50/p99, against the goal p99 <= 100 ms), and the time a restart takes until
every incident and timer is back (goal <= 2 s, asked for 100 incidents).

Run it on an idle machine: taskset -c 0 .venv/bin/python -m bench.incidents_scale"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from bench.stats import ms, rss_mib
from monitor.config import load_config_text
from monitor.daemon import Daemon
from tests.conftest import site_yaml

PLAYBOOK = """\
name: scale
label: 规模
scope: area
roles: [it]
triggers: [{manual: true}]
steps:
  - {id: pause, kind: wait, for: 5s}
  - {id: tell, kind: notify, roles: [it], message: 五秒到了}
  - {id: hold, kind: checklist, items: [{id: done, text: 完成, role: it}], timeout: 1h,
     on_timeout: end}
"""


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--incidents", type=int, default=1000)
    args = ap.parse_args()
    n = args.incidents
    work = Path(tempfile.mkdtemp())
    (work / "books").mkdir()
    (work / "books" / "scale.yaml").write_text(PLAYBOOK, encoding="utf-8")
    cfg = load_config_text(site_yaml(work, [], [], roles=[{"name": "it"}],
                                     areas=[{"name": f"a{i}"} for i in range(n)],
                                     playbooks=str(work / "books")))
    daemon = Daemon(cfg)
    await daemon.start()
    before = rss_mib()
    for i in range(n):
        daemon.incidents.start("scale", f"a{i}", "基准")
        if i % 50 == 49:
            await asyncio.sleep(0.05)      # 1,000 over about a second
    grown = rss_mib() - before
    await asyncio.sleep(7)
    await daemon.store.committed()
    rows = await daemon.store.read(lambda c: c.execute(
        "SELECT i.started, t.ts FROM timeline t JOIN incidents i ON i.id = t.incident "
        "WHERE t.kind = 'notify'").fetchall())
    late = [ts - (started + 5.0) for started, ts in rows]
    running = len(daemon.incidents.running)
    await daemon.stop()
    t0 = time.perf_counter()
    again = Daemon(cfg)
    await again.start()
    restart = time.perf_counter() - t0
    back = len(again.incidents.running), len(again.ctx.timers.pending("playbook"))
    await again.stop()
    print(f"{n} incidents, one per area, each waiting 5 s on a durable timer")
    print(f"  memory: +{grown:.1f} MiB for {n} incidents ({grown * 1024 / n:.1f} KiB each)")
    print(f"  timer lateness: p50 {ms(late, 50):.1f} ms, p99 {ms(late, 99):.1f} ms, "
          f"max {max(late) * 1000:.1f} ms ({len(late)} of {n} fired; failures "
          f"{n - len(late)})   goal: p99 <= 100 ms")
    print(f"  restart with {running} running incidents: {restart:.2f} s until {back[0]} "
          f"incidents and {back[1]} timers were back   goal: <= 2 s (for 100)")


if __name__ == "__main__":
    asyncio.run(main())
