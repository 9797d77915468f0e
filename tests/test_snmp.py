"""The SNMP driver against snmpsim serving real UPS recordings (snmpsim-data)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from drivers.base import AuthError, CommError, ConfigurationError
from drivers.snmp import SnmpDriver
from drivers.snmp.upsmib import map_ups_mib
from monitor.core.model import Quality
from tests.conftest import config
from tests.fixtures import snmp_device

pytestmark = pytest.mark.usefixtures("snmp_env")


async def poll(tmp_path: Path, device: dict[str, Any]) -> Any:
    drv = SnmpDriver(config(tmp_path, [device]).devices[0])
    try:
        return await drv.poll()
    finally:
        await drv.close()


def by_key(result: Any) -> dict[str, Any]:
    return {r.point.split(".", 1)[1]: (r.value, r.quality) for r in result.readings}


G = Quality.GOOD


@pytest.mark.parametrize(("recording", "expected", "problems"), [
    ("eaton-93e-80", {"ups.status": "OL", "battery.charge": 100.0, "battery.runtime": 65520.0,
                      "battery.voltage": pytest.approx(521.0), "input.voltage": 227.0,
                      "input.L3.voltage": 233.0, "input.frequency": 50.0,
                      "output.voltage": 220.0, "ups.load": 21.0, "ups.mfr": "EATON",
                      "ups.model": "EATON 93E 80", "output.frequency": 49.0}, []),
    ("phoenixtec-power", {"ups.status": "OL", "battery.charge": 100.0, "battery.runtime": 0.0,
                          "input.voltage": 238.0, "ups.load": 0.0}, []),
    ("eastpower-istars-swv053", {"ups.status": "OL", "battery.charge": 100.0,
                                 "input.voltage": 236.0, "ups.load": 30.0,
                                 "input.L2.voltage": 236.0}, []),
    ("huawei-gse200m", {"ups.status": "OL", "battery.charge": None, "battery.runtime": None,
                        "output.voltage": None},
     ["upsEstimatedMinutesRemaining: -1 is out of range 0..100000",
      "upsEstimatedChargeRemaining: -1 is out of range 0..100"]),
])
async def test_ups_mib_profile_on_real_recordings(tmp_path: Path, snmpsim: Any, recording: str,
                                                  expected: dict[str, Any],
                                                  problems: list[str]) -> None:
    result = await poll(tmp_path, snmp_device("ups1", recording, profile="ups-mib"))
    got = by_key(result)
    for key, value in expected.items():
        assert got[key][0] == value, key
        assert got[key][1] is (G if value is not None else Quality.INVALID), key
    for problem in problems:
        assert problem in result.problems


async def test_wrong_types_and_out_of_range_values_are_invalid(tmp_path: Path,
                                                               snmpsim: Any) -> None:
    result = await poll(tmp_path, snmp_device("odd", "vigil-odd", profile="ups-mib"))
    got = by_key(result)
    assert got["ups.status"] == ("OB LB RB OVER ALARM", G)
    assert got["ups.alarm"] == ("BatteryBad OutputOverload", G)
    assert got["battery.runtime"] == (None, Quality.INVALID)
    assert got["battery.charge"] == (None, Quality.INVALID)
    assert got["ups.load"] == (41.0, G)
    assert "battery.voltage" not in got          # the agent lacks it: no reading at all
    assert result.problems == [
        "upsEstimatedMinutesRemaining: expected a number, got str 'twelve'",
        "upsEstimatedChargeRemaining: 250 is out of range 0..100"]


@pytest.mark.parametrize("version", ["1", "2c"])
async def test_points_by_oid_and_by_mib_name(tmp_path: Path, snmpsim: Any,
                                            version: str) -> None:
    result = await poll(tmp_path, snmp_device("odd", "vigil-odd", cls="host", connection={
        "version": version}, points=[
            {"key": "name", "oid": "SNMPv2-MIB::sysName.0"},
            {"key": "descr", "oid": "SNMPv2-MIB::sysDescr.0"},
            {"key": "battery", "oid": "UPS-MIB::upsBatteryStatus.0",
             "map": {1: "unknown", 2: "normal", 3: "low", 4: "depleted"}},
            {"key": "load", "oid": "UPS-MIB::upsOutputPercentLoad.1", "scale": 0.01},
            {"key": "alarms", "oid": "1.3.6.1.2.1.33.1.6.1.0"},
            {"key": "missing", "oid": "1.3.6.1.2.1.33.1.2.5.0"},
            {"key": "text_scaled", "oid": "1.3.6.1.2.1.1.1.0", "scale": 2}]))
    got = by_key(result)
    assert got["name"] == ("odd-ups", G)
    assert got["descr"] == ("Odd UPS agent (wrong types, gaps)", G)
    assert got["alarms"] == (2.0, G)
    assert got["battery"] == ("low", G)
    assert got["load"] == (pytest.approx(0.41), G)
    assert got["missing"] == (None, Quality.INVALID)
    assert got["text_scaled"] == (None, Quality.INVALID)
    assert result.problems == [
        "missing: the agent has no 1.3.6.1.2.1.33.1.2.5.0 (noSuchObject)",
        "text_scaled: expected a number, got 'Odd UPS agent (wrong types, gaps)'"]


async def test_unknown_mib_name_is_an_operator_error(tmp_path: Path, snmpsim: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"cannot resolve NOPE-MIB::thing\.0"):
        await poll(tmp_path, snmp_device("odd", "vigil-odd", cls="host", points=[
            {"key": "x", "oid": "NOPE-MIB::thing.0"}]))


async def test_v3_auth_priv(tmp_path: Path, snmpsim: Any) -> None:
    v3 = {"version": "3", "user": "vigil", "auth_protocol": "SHA",
          "auth_key": {"env": "VIGIL_TEST_V3_AUTH"}, "priv_protocol": "AES",
          "priv_key": {"env": "VIGIL_TEST_V3_PRIV"}, "context": "eaton-93e-80"}
    result = await poll(tmp_path, snmp_device("ups1", connection=v3, profile="ups-mib"))
    assert by_key(result)["battery.charge"] == (100.0, G)


async def test_v3_wrong_key_is_an_auth_error(tmp_path: Path, snmpsim: Any,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_TEST_V3_AUTH", "not-the-key-1")
    v3 = {"version": "3", "user": "vigil", "auth_protocol": "SHA",
          "auth_key": {"env": "VIGIL_TEST_V3_AUTH"}, "priv_protocol": "AES",
          "priv_key": {"env": "VIGIL_TEST_V3_PRIV"}, "context": "eaton-93e-80"}
    with pytest.raises(AuthError, match="refused the SNMPv3 credentials of user 'vigil'") as info:
        await poll(tmp_path, snmp_device("ups1", connection=v3, profile="ups-mib"))
    assert "not-the-key-1" not in str(info.value)


async def test_wrong_community_times_out_with_a_hint(tmp_path: Path, snmpsim: Any) -> None:
    with pytest.raises(CommError, match="ignores this community"):
        await poll(tmp_path, snmp_device("ups1", "wrong", timeout=0.3, profile="ups-mib",
                                         connection={"retries": 0}))


def test_mapping_without_output_source_leaves_status_unknown() -> None:
    mapped = map_ups_mib({"1.3.6.1.2.1.33.1.2.4.0": 80})
    assert mapped.values["ups.status"] is None
    assert mapped.values["battery.charge"] == 80.0
    assert mapped.problems == ["upsOutputSource is None: ups.status unknown"]


async def test_mib_names_compiled_from_source_once(tmp_path: Path, snmpsim: Any) -> None:
    mibs = str(Path(__file__).parent / "mibs")
    device = snmp_device("odd", "vigil-odd", cls="host", connection={"mib_dirs": [mibs]},
                         points=[{"key": "label", "oid": "VIGIL-TEST-MIB::vigilTestLabel.0"}])
    result = await poll(tmp_path, device)
    assert by_key(result)["label"] == ("compiled from source", G)
    compiled = tmp_path / "cache" / "vigil" / "mibs" / "VIGIL-TEST-MIB.py"
    assert compiled.exists()                     # cached for the next start
    stamp = compiled.stat().st_mtime_ns
    await poll(tmp_path, device)
    assert compiled.stat().st_mtime_ns == stamp
