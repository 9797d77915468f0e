"""The outbox stays within its bounds while the sink is away, and says so with alarms."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from monitor.alarms.model import AlarmState
from tests import peers
from tests.conftest import config, modbus_device
from tests.fixtures import SIM_TEMP as TEMP
from tests.fixtures import start_sim
from tests.util import eventually


async def test_bounded_outbox_drops_oldest_with_alarms(tmp_path: Path, daemon_factory: Any) -> None:
    port = peers.free_port()
    server = await start_sim(port)
    cfg = config(tmp_path, [modbus_device("env", port, [TEMP], interval=0.05, timeout=0.04)],
                 sink={"type": "influxdb_v1", "url": f"http://127.0.0.1:{peers.free_port()}",
                       "retry_max": 0.2},
                 store={"outbox": {"max_bytes": 4000, "warn_ratio": 0.5},
                        "flush_interval": 0.05})
    try:
        daemon = await daemon_factory(cfg)
        await eventually(lambda: all(daemon.alarms.is_active(a) for a in (
            "outbox:filling", "outbox:overflow", "sink:unavailable")), 10)
        assert daemon.store.dropped_lines > 0
        assert daemon.alarms.alarms["outbox:filling"].active
        overflow = daemon.alarms.alarms["outbox:overflow"]
        assert overflow.state() is AlarmState.ACTIVE_UNACKNOWLEDGED
        assert overflow.severity == "critical"
        assert daemon.alarms.alarms["sink:unavailable"].active
        metrics = daemon.ctx.metrics.render().decode()
        assert "vigil_outbox_dropped_lines_total" in metrics
        await daemon.stop()                   # everything queued is committed, and bounded
        with sqlite3.connect(cfg.data_dir / "vigil.db") as db:
            size = db.execute("SELECT COALESCE(SUM(LENGTH(body)), 0) FROM outbox").fetchone()[0]
        assert 3000 < size <= 4000
        assert size == daemon.store.outbox_bytes
    finally:
        await server.shutdown()
