"""Alarm raised to first delivery at a local webhook, beside apprise's bare notify() to the
same webhook; and the other channels' latency while one channel answers after 5 s.

The webhook is tests/servers/http_receiver.py on loopback (apprise's json:// target). Each
trial raises one alarm routed to one person and times until the receiver holds the request.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import apprise

from monitor.config import load_config_text
from monitor.daemon import Daemon
from monitor.notify.notifier import Notified
from tests.conftest import site_yaml
from tests.servers.http_receiver import Receiver


def pct(values: list[float]) -> str:
    q = statistics.quantiles(values, n=100, method="inclusive")
    return f"p50 {q[49] * 1000:6.1f} ms   p99 {q[98] * 1000:6.1f} ms   ({len(values)} ok)"


def bare(url: str, receiver: Receiver, trials: int) -> list[float]:
    out = []
    for _ in range(trials):
        sender = apprise.Apprise()
        sender.add(url)
        t0 = time.perf_counter()
        if sender.notify(body="机房温度 32 °C", title="【重要】机房温度偏高"):
            out.append(time.perf_counter() - t0)   # it returns once the webhook answered
    return out


async def vigil(receiver: Receiver, trials: int, slow: Receiver | None) -> tuple[list[float],
                                                                                  int]:
    work = Path(tempfile.mkdtemp())
    os.environ["BENCH_HOOK"] = f"json://127.0.0.1:{receiver.port}/a"
    contacts = [{"channel": "webhook", "url": {"env": "BENCH_HOOK"}}]
    if slow is not None:
        os.environ["BENCH_SLOW"] = f"json://127.0.0.1:{slow.port}/slow"
        contacts.append({"channel": "email", "url": {"env": "BENCH_SLOW"}})
    cfg = load_config_text(site_yaml(
        work, [], [], roles=[{"name": "it"}],
        people=[{"name": "zhang_san", "roles": ["it"], "contacts": contacts}],
        notify={"timeout": 10, "retries": 0, "group_interval": 0, "person_limit": None,
                "resend": 3600, "policies": [
            {"name": "p", "levels": [{"notify": [{"role": "it"}], "wait": 3600}]}],
            "routes": [{"policy": "p"}]}))
    daemon = Daemon(cfg)
    await daemon.start()
    from monitor.alarms.model import AlarmDef
    from monitor.config.model import Severity

    delivered: dict[str, float] = {}
    arrived = asyncio.Event()

    def on_notified(event: Notified) -> None:  # the webhook answered: delivered
        if event.ok and event.channel == "webhook":
            delivered[event.alarm] = time.perf_counter()
            arrived.set()
    listener = asyncio.create_task(daemon.ctx.bus.subscribe(
        "bench", on_notified, kinds=(Notified,)).run())
    out = []
    failures = 0
    for n in range(trials):
        alarm = f"bench{n}"
        daemon.alarms.define(AlarmDef(alarm, Severity.MAJOR, "机房温度偏高"))
        arrived.clear()
        t0 = time.perf_counter()
        daemon.alarms.set_condition(alarm, True, 32.0)
        try:
            await asyncio.wait_for(arrived.wait(), 5)
            out.append(delivered[alarm] - t0)
        except TimeoutError:
            failures += 1
        await asyncio.sleep(0.005)
    listener.cancel()
    await daemon.stop()
    return out, failures


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=200)
    args = ap.parse_args()
    receiver = Receiver().start()
    slow = Receiver(mode="slow", delay=5.0).start()
    try:
        loop = asyncio.get_running_loop()
        plain = await loop.run_in_executor(None, bare, f"json://127.0.0.1:{receiver.port}/b",
                                           receiver, args.trials)
        ours, failed = await vigil(receiver, args.trials, None)
        beside, failed_slow = await vigil(receiver, max(20, args.trials // 10), slow)
    finally:
        receiver.stop()
        slow.stop()
    print("local webhook (apprise json:// to an HTTP receiver on loopback)")
    print(f"  apprise notify(), bare:                  {pct(plain)}")
    print(f"  Vigil alarm raised -> delivered:         {pct(ours)}   failures {failed}"
          f"   goal: p99 <= 100 ms")
    print(f"  the same, another channel answering 5 s: {pct(beside)}   failures {failed_slow}"
          f"   goal: unchanged")


if __name__ == "__main__":
    asyncio.run(main())
