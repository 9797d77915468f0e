"""Bus throughput: events/s from publish to a subscriber's handler, on one core.

Each round publishes EVENTS device events as fast as possible and waits until every
subscriber has handled all of them; the figure counts only handled events."""

from __future__ import annotations

import argparse
import asyncio
import os
import time

from monitor.core.bus import Bus, DeviceEvent


async def round_trip(events: int, subscribers: int, batch: int) -> tuple[float, int, int]:
    bus = Bus()
    handled = [0] * subscribers
    done = asyncio.Event()

    def handler(i: int) -> object:
        def handle(_: DeviceEvent) -> None:
            handled[i] += 1
            if handled[i] == events and all(h == events for h in handled):
                done.set()
        return handle
    subs = [bus.subscribe(f"s{i}", handler(i), kinds=(DeviceEvent,), maxsize=events)
            for i in range(subscribers)]
    tasks = [asyncio.create_task(s.run()) for s in subs]  # type: ignore[arg-type]
    event = DeviceEvent("ups1", "ONBATT", "市电中断", time.time())
    started = time.perf_counter()
    for n in range(0, events, batch):  # publish in bursts, yielding between them, like polls
        for _ in range(min(batch, events - n)):
            bus.publish(event)
        await asyncio.sleep(0)
    await asyncio.wait_for(done.wait(), 120)
    elapsed = time.perf_counter() - started
    for t in tasks:
        t.cancel()
    dropped = sum(s.dropped for s in subs)
    errors = sum(s.errors for s in subs)
    return events / elapsed, dropped, errors


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--batch", type=int, default=1000)
    args = ap.parse_args()
    os.sched_setaffinity(0, {0})
    print(f"{args.events:,} DeviceEvents published in bursts of {args.batch}, one core")
    for subscribers in (1, 4):
        rate, dropped, errors = await round_trip(args.events, subscribers, args.batch)
        print(f"  {subscribers} subscriber(s): {rate:12,.0f} events/s published and handled "
              f"by every subscriber ({rate * subscribers:,.0f} deliveries/s); dropped "
              f"{dropped}, handler errors {errors}   goal: >= 100,000 events/s")


if __name__ == "__main__":
    asyncio.run(main())
