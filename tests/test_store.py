"""The embedded store: history retention pruned in small steps, readings committed in order."""

from __future__ import annotations

import functools
import time

from monitor.core.model import Quality, Reading
from monitor.core.store import Store, history_rows, prune_history


async def test_retention_prunes_only_old_history_in_steps(store: Store) -> None:
    now = time.time()
    old = [Reading("env.t", float(i), now - 40 * 86400 + i) for i in range(250)]
    new = [Reading("env.t", float(i), now - 10 + i / 100) for i in range(50)]
    store.add(old, None, 0)
    store.add(new, None, 0)
    prune = functools.partial(prune_history, before=now - 30 * 86400, limit=100)
    steps = []
    while (n := await store.call(prune)) > 0:
        steps.append(n)
    assert steps == [100, 100, 50]
    rows = await store.read(lambda c: history_rows(c, "env.t", 0, now + 1, 1000))
    assert len(rows) == 50 and min(ts for ts, _, _ in rows) >= now - 10


async def test_history_keeps_value_types_and_quality(store: Store) -> None:
    now = time.time()
    store.add([Reading("d.a", True, now), Reading("d.b", "OB LB", now),
               Reading("d.c", None, now, Quality.INVALID), Reading("d.d", 21.5, now)], None, 0)
    await store.committed()
    rows = await store.read(lambda c: c.execute(
        "SELECT point, value, quality FROM history ORDER BY point").fetchall())
    assert rows == [("d.a", 1, "good"), ("d.b", "OB LB", "good"), ("d.c", None, "invalid"),
                    ("d.d", 21.5, "good")]
