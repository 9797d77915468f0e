"""Every Grafana panel query returns rows from a real InfluxDB 1.x fed by the sink."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from monitor.demo.simulator import serve_sim
from monitor.playbooks.engine import Ack
from tests import peers
from tests.conftest import config, modbus_device
from tests.fixtures import influxql
from tests.util import eventually

GRAFANA = Path(__file__).parent.parent / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))


QUICK = """\
name: quick
label: 快速预案
roles: [gm]
triggers: [{manual: true}]
steps:
  - {id: tell, kind: notify, roles: [gm], message: 测试}
  - {id: fast, kind: deadline, target: 1 秒内确认, within: 1s, met: {acknowledged: true}}
  - {id: slow, kind: deadline, target: 1 小时内确认, within: 1h, met: {acknowledged: true}}
  - {id: work, kind: checklist, items: [{id: done, text: 完成, role: gm}], timeout: 1h,
     on_timeout: end}
"""


def expand(query: str) -> str:
    """Substitute Grafana's macros and variables the way Grafana does for 'All'."""
    query = query.replace("$timeFilter", "time > now() - 1h").replace("$__interval", "1s")
    return re.sub(r"\$(site|area|ups|playbook)\b", ".*", query)


def test_datasource_provisioning_uses_influxql_without_secrets() -> None:
    ds = yaml.safe_load((GRAFANA / "provisioning/datasources/vigil.yaml").read_text())
    [source] = ds["datasources"]
    assert source["type"] == "influxdb" and source["jsonData"]["version"] == "InfluxQL"
    assert source["secureJsonData"]["password"] == "${VIGIL_INFLUX_PASSWORD}"
    uids = {p["datasource"]["uid"] for d in DASHBOARDS
            for p in json.loads(d.read_text())["panels"]}
    assert uids == {source["uid"]}


@pytest.fixture
async def fed_influx(tmp_path: Path, influx1: str, daemon_factory: Any) -> str:
    """A database holding what a small site wrote through the sink: values, alarms, events."""
    db = f"grafana{tmp_path.name[-8:].replace('_', '')}"
    books = tmp_path / "playbooks"
    books.mkdir()
    (books / "quick.yaml").write_text(QUICK, encoding="utf-8")
    influxql(influx1, f"CREATE DATABASE {db}")
    port = peers.free_port()
    server = await serve_sim(port, bits=8, registers=32)
    await server.async_setValues(1, 3, 0, [305, 450, 2301, 2200, 87, 0, 1800])
    await server.async_setValues(1, 4, 0, [2300, 500, 2200, 500, 30, 540, 100, 0, 3600, 281])
    env = [{"key": "temperature", "table": "holding", "address": 0, "data_type": "int16",
            "scale": 0.1},
           {"key": "humidity", "table": "holding", "address": 1, "data_type": "int16",
            "scale": 0.1}]
    ups = [{"key": "input.voltage", "table": "holding", "address": 2, "scale": 0.1},
           {"key": "output.voltage", "table": "holding", "address": 3, "scale": 0.1},
           {"key": "battery.charge", "table": "holding", "address": 4},
           {"key": "battery.runtime", "table": "holding", "address": 5, "data_type": "uint32"}]
    dead = peers.free_port()
    cfg = config(tmp_path, [
        modbus_device("mr_env", port, env, interval=0.2, timeout=0.1),
        modbus_device("ups1", port, ups, cls="ups", interval=0.2, timeout=0.1),
        modbus_device("ups2", port, [], cls="ups", profile="generic-ups", interval=0.2,
                      timeout=0.1),
        modbus_device("door1", dead, [{"key": "open", "table": "discrete_input", "address": 0}],
                      cls="door", interval=0.2, timeout=0.1, failures_before_unavailable=2)],
        [{"name": "mr_temp", "point": "mr_env.temperature", "kind": "threshold", "high": 27}],
        sink={"type": "influxdb_v1", "url": influx1, "database": db, "flush_interval": 0.1},
        playbooks=str(books), roles=[{"name": "gm"}])
    daemon = await daemon_factory(cfg)
    real = daemon.incidents.start("quick", why="测试")         # incidents: milestones
    drill = daemon.incidents.start("quick", why="演练", drill=True)
    await asyncio.sleep(1)
    await server.async_setValues(1, 4, 20, [0b010])      # ups2 on battery: ONBATT, on_battery
    await asyncio.sleep(1)
    await eventually(lambda: real.deadlines["fast"]["missed"])
    for inc in (real, drill):                            # one target met, one met late
        await daemon.incidents.act(inc.id, Ack("王五"))
    await eventually(lambda: daemon.store.outbox_lines == 0)
    await daemon.stop()
    await server.shutdown()
    return db


def panel_queries() -> list[tuple[str, str]]:
    out = []
    for dash in DASHBOARDS:
        data = json.loads(dash.read_text())
        for p in data["panels"]:
            for t in p["targets"]:
                out.append((f"{dash.stem}: {p['title']} ({t['refId']})", t["query"]))
        for var in data["templating"]["list"]:
            out.append((f"{dash.stem}: variable {var['name']}", var["query"]))
        for note in data.get("annotations", {}).get("list", []):
            out.append((f"{dash.stem}: annotation {note['name']}", note["query"]))
    return out


async def test_every_panel_query_returns_rows(fed_influx: str, influx1: str) -> None:
    queries = panel_queries()
    assert len(queries) >= 34
    empty = []
    for name, query in queries:
        res = influxql(influx1, expand(query), fed_influx)["results"][0]
        assert "error" not in res, f"{name}: {res['error']}"
        if not res.get("series"):
            empty.append(name)
    assert empty == [], f"panels without data: {empty}"


async def test_drill_milestones_are_marked_apart_and_a_dashboard_can_hide_them(
        fed_influx: str, influx1: str) -> None:
    """Every dashboard has the real milestones and the drills' in a second annotation of
    their own (its own colour, a switch to leave them out): none of a drill's among the
    real ones, and the real ones' not among the drills'."""
    for dash in DASHBOARDS:
        notes = json.loads(dash.read_text())["annotations"]["list"]
        assert len(notes) == 2 and notes[0]["iconColor"] != notes[1]["iconColor"], dash.stem
        real, drills = (influxql(influx1, expand(n["query"].replace(
            'SELECT "text", "label", "kind"', 'SELECT "text", "label", "kind", "drill"')),
            fed_influx)["results"][0]["series"][0] for n in notes)
        at = real["columns"].index("drill")
        assert {row[at] for row in real["values"]} == {"false"}, dash.stem
        at = drills["columns"].index("drill")
        assert {row[at] for row in drills["values"]} == {"true"}, dash.stem
        assert "演练" in notes[1]["name"] and "drill" in notes[1]["tagsColumn"]
