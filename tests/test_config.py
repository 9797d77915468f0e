"""Config validation: each broken config in tests/configs/broken gives exactly its expected text."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from monitor.config import ConfigError, load_config, load_config_text
from monitor.config.schema import config_schema

BROKEN = sorted((Path(__file__).parent / "configs" / "broken").glob("*.yaml"))
ROOT = Path(__file__).parent.parent


@pytest.mark.parametrize("path", BROKEN, ids=[p.stem for p in BROKEN])
def test_broken_config_gives_expected_errors(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VIGIL_TEST_UNSET_TOKEN_VAR", raising=False)
    with pytest.raises(ConfigError) as info:
        load_config_text(path.read_text(encoding="utf-8"), path.name)
    expected = path.with_suffix(".expected").read_text(encoding="utf-8").strip()
    assert str(info.value) == expected


def test_check_command_prints_all_errors_and_fails(tmp_path: Path) -> None:
    broken = Path(__file__).parent / "configs" / "broken" / "duplicate_names.yaml"
    out = subprocess.run([sys.executable, "-m", "monitor.cli", "check", str(broken)],
                         capture_output=True, text=True)
    assert out.returncode == 1
    lines = out.stderr.strip().splitlines()
    assert lines[0].startswith(f"{broken}:2: areas[2].name: duplicate name 'office'")
    assert lines[-1] == f"3 error(s) in {broken}"


def test_check_command_accepts_shipped_configs() -> None:
    shipped = sorted((ROOT / "config").glob("*.yaml"))
    assert shipped, "config/ holds the example site configs"
    for path in shipped:
        out = subprocess.run([sys.executable, "-m", "monitor.cli", "check", str(path)],
                             capture_output=True, text=True,
                             env={"PATH": "/usr/bin:/bin", "INFLUX_TOKEN": "x",
                                  "VIGIL_API_TOKEN": "x" * 16, "UPS_SNMP_AUTH_KEY": "x",
                                  "UPS_SNMP_PRIV_KEY": "x", "SNMP_TRAP_COMMUNITY": "x",
                                  "ZHANG_SAN_MAIL_URL": "mailto://127.0.0.1:10025"
                                  "?from=vigil@example.com&to=zhangsan@example.com"})
        assert out.returncode == 0, out.stderr
        assert "OK" in out.stdout


def test_secret_values_never_appear_in_errors_or_dumps(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "token"
    secret.write_text("s3cr3t-value\n")
    monkeypatch.setenv("VIGIL_TEST_TOKEN", "env-s3cr3t-0123456789")
    cfg = load_config_text(f"""
site: {{name: hq}}
areas: [{{name: machine_room}}]
sink: {{type: influxdb_v2, url: "http://127.0.0.1:18428", token: {{file: {secret}}}}}
api: {{token: {{env: VIGIL_TEST_TOKEN}}}}
""")
    assert cfg.sink is not None and cfg.sink.token is not None
    assert cfg.sink.token.resolve().get_secret_value() == "s3cr3t-value"
    dumped = cfg.model_dump_json() + repr(cfg) + str(cfg.sink.token.resolve())
    assert "s3cr3t" not in dumped


def test_durations_and_sizes_accept_units(tmp_path: Path) -> None:
    cfg = load_config_text(f"""
site: {{name: hq}}
data_dir: {tmp_path}
areas: [{{name: machine_room}}]
store: {{outbox: {{max_bytes: 2MiB, max_age: 2d}}, flush_interval: 250ms}}
""")
    assert cfg.store.outbox.max_bytes == 2 * 2**20
    assert cfg.store.outbox.max_age == 2 * 86400
    assert cfg.store.flush_interval == 0.25


def test_unreadable_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "missing.yaml")
    assert str(info.value).startswith(f"{tmp_path / 'missing.yaml'}:1: (root): cannot read")


def test_json_schema_describes_driver_fields() -> None:
    schema = config_schema()
    json.dumps(schema)
    device = schema["$defs"]["DeviceConfig"]
    assert device["properties"]["type"]["enum"] == ["gb26875", "host", "modbus", "nut", "snmp"]
    modbus = next(rule["then"]["properties"] for rule in device["allOf"]
                  if rule["if"]["properties"]["type"]["const"] == "modbus")
    assert "connection" in modbus and "points" in modbus
    assert schema["$defs"]["ModbusPoint"]["properties"]["data_type"]


def test_exported_schema_file_is_current() -> None:
    exported = json.loads((ROOT / "config" / "vigil-config.schema.json").read_text())
    assert exported == config_schema(), "run: vigil schema > config/vigil-config.schema.json"


def test_devices_get_their_drivers_default_interval(tmp_path: Path) -> None:
    cfg = load_config_text(f"""
site: {{name: hq}}
data_dir: {tmp_path}
areas: [{{name: machine_room}}]
devices:
  - {{name: ups1, area: machine_room, class: ups, type: nut, connection: {{ups: ups1}}}}
  - {{name: ups2, area: machine_room, class: ups, type: nut, interval: 5s,
     connection: {{ups: ups2}}}}
""")
    assert (cfg.devices[0].interval, cfg.devices[0].timeout) == (0.5, 0.4)
    assert (cfg.devices[1].interval, cfg.devices[1].timeout) == (5.0, 0.4)


def test_a_short_api_token_is_a_check_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """`vigil check` refuses what `vigil run` would refuse."""
    monkeypatch.setenv("VIGIL_TEST_SHORT_TOKEN", "short")
    text = "site: {name: hq}\nareas: [{name: a}]\napi: {token: {env: VIGIL_TEST_SHORT_TOKEN}}\n"
    with pytest.raises(ConfigError) as info:
        load_config_text(text, "site.yaml")
    assert str(info.value) == ("site.yaml:3: api.token: the API token has 5 characters; it "
                               "needs at least 16")


def test_a_point_may_be_in_another_area_than_its_device(tmp_path: Path) -> None:
    """A fire panel in the machine room with a zone in the office: the zone's alarm is the
    office's (routes, banner, tiles), and an unknown area is an error with its line."""
    from monitor.alarms.facts import facts
    from monitor.alarms.model import Alarm

    zone = {"key": "zone1.alarm", "table": "discrete_input", "address": 0, "area": "office"}
    text = f"""
site: {{name: hq}}
data_dir: {tmp_path}
areas: [{{name: machine_room}}, {{name: office}}]
devices:
  - {{name: panel, area: machine_room, class: fire_panel, type: modbus,
     connection: {{host: 127.0.0.1, port: 15020}}, points: [{json.dumps(zone)}]}}
rules: [{{name: zone1, point: panel.zone1.alarm, kind: state, equals: [true]}}]
"""
    cfg = load_config_text(text)
    alarm = Alarm("zone1", "critical", "办公区火警", point="panel.zone1.alarm")
    assert facts(cfg, alarm)["area"] == "office"
    with pytest.raises(ConfigError) as info:
        load_config_text(text.replace('"area": "office"', '"area": "archive"'), "s.yaml")
    assert "devices[0].points[0].area: no area named 'archive'" in str(info.value)


def test_a_trusted_proxy_is_kept_as_the_network_it_names(tmp_path: Path) -> None:
    cfg = load_config_text(
        "site: {name: hq}\nareas: [{name: a}]\ndevices: []\n"
        "api: {trusted_proxies: [10.0.0.5/24, 127.0.0.1]}\n",
        "site.yaml")
    assert cfg.api.trusted_proxies == ["10.0.0.0/24", "127.0.0.1/32"]
