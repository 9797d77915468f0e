"""RFC 1628 UPS-MIB onto the UPS model: NUT variable names, ``ups.status`` flags, alarms."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

UPS_MIB = "1.3.6.1.2.1.33"
BATTERY_STATUS = f"{UPS_MIB}.1.2.1.0"       # 1 unknown 2 normal 3 low 4 depleted
SECONDS_ON_BATTERY = f"{UPS_MIB}.1.2.2.0"
MINUTES_REMAINING = f"{UPS_MIB}.1.2.3.0"
CHARGE_REMAINING = f"{UPS_MIB}.1.2.4.0"
BATTERY_VOLTAGE = f"{UPS_MIB}.1.2.5.0"      # 0.1 V DC
BATTERY_TEMPERATURE = f"{UPS_MIB}.1.2.7.0"
OUTPUT_SOURCE = f"{UPS_MIB}.1.4.1.0"
OUTPUT_FREQUENCY = f"{UPS_MIB}.1.4.2.0"     # 0.1 Hz
ALARMS_PRESENT = f"{UPS_MIB}.1.6.1.0"
MFR, MODEL, FIRMWARE = f"{UPS_MIB}.1.1.1.0", f"{UPS_MIB}.1.1.2.0", f"{UPS_MIB}.1.1.3.0"
INPUT_TABLE = f"{UPS_MIB}.1.3.3.1"          # .2 frequency 0.1 Hz, .3 voltage V, .4 current 0.1 A
OUTPUT_TABLE = f"{UPS_MIB}.1.4.4.1"         # .2 voltage V, .3 current 0.1 A, .4 W, .5 % load
ALARM_TABLE = f"{UPS_MIB}.1.6.2.1"          # .2: the well-known alarm OID of each alarm
WELL_KNOWN_ALARMS = f"{UPS_MIB}.1.6.3"

NAMES = {  # UPS-MIB object names, so points can say UPS-MIB::name without the MIB file
    "upsIdentManufacturer": "1.1.1", "upsIdentModel": "1.1.2",
    "upsIdentUPSSoftwareVersion": "1.1.3", "upsIdentAgentSoftwareVersion": "1.1.4",
    "upsIdentName": "1.1.5", "upsBatteryStatus": "1.2.1", "upsSecondsOnBattery": "1.2.2",
    "upsEstimatedMinutesRemaining": "1.2.3", "upsEstimatedChargeRemaining": "1.2.4",
    "upsBatteryVoltage": "1.2.5", "upsBatteryCurrent": "1.2.6",
    "upsBatteryTemperature": "1.2.7", "upsInputLineBads": "1.3.1", "upsInputNumLines": "1.3.2",
    "upsInputFrequency": "1.3.3.1.2", "upsInputVoltage": "1.3.3.1.3",
    "upsInputCurrent": "1.3.3.1.4", "upsInputTruePower": "1.3.3.1.5", "upsOutputSource": "1.4.1",
    "upsOutputFrequency": "1.4.2", "upsOutputNumLines": "1.4.3", "upsOutputVoltage": "1.4.4.1.2",
    "upsOutputCurrent": "1.4.4.1.3", "upsOutputPower": "1.4.4.1.4",
    "upsOutputPercentLoad": "1.4.4.1.5", "upsAlarmsPresent": "1.6.1", "upsAlarmDescr": "1.6.2.1.2",
    "upsAlarmTime": "1.6.2.1.3", "upsTestResultsSummary": "1.7.3",
    "upsConfigInputVoltage": "1.9.1", "upsConfigOutputVoltage": "1.9.3",
    "upsConfigOutputVA": "1.9.5", "upsConfigOutputPower": "1.9.6",
}

SCALARS = (BATTERY_STATUS, SECONDS_ON_BATTERY, MINUTES_REMAINING, CHARGE_REMAINING,
           BATTERY_VOLTAGE, BATTERY_TEMPERATURE, OUTPUT_SOURCE, OUTPUT_FREQUENCY,
           ALARMS_PRESENT, MFR, MODEL, FIRMWARE)
TABLES = (INPUT_TABLE, OUTPUT_TABLE, ALARM_TABLE)

ALARMS = {1: "BatteryBad", 2: "OnBattery", 3: "LowBattery", 4: "DepletedBattery",
          5: "TempBad", 6: "InputBad", 7: "OutputBad", 8: "OutputOverload", 9: "OnBypass",
          10: "BypassBad", 11: "OutputOffAsRequested", 12: "UpsOffAsRequested",
          13: "ChargerFailed", 14: "UpsOutputOff", 15: "UpsSystemOff", 16: "FanFailure",
          17: "FuseFailure", 18: "GeneralFault", 19: "DiagnosticTestFailed",
          20: "CommunicationsLost", 21: "AwaitingPower", 22: "ShutdownPending",
          23: "ShutdownImminent", 24: "TestInProgress"}
_ALARM_FLAGS = {"BatteryBad": "RB", "OnBattery": "OB", "LowBattery": "LB",
                "DepletedBattery": "LB", "OutputOverload": "OVER", "OnBypass": "BYPASS",
                "ShutdownImminent": "FSD", "TestInProgress": "CAL", "UpsOutputOff": "OFF",
                "UpsSystemOff": "OFF"}
_SOURCE_FLAGS = {2: ("OFF",), 3: ("OL",), 4: ("OL", "BYPASS"), 5: ("OB",), 6: ("OL", "BOOST"),
                 7: ("OL", "TRIM")}

Varbinds = Mapping[str, object]
"""OID -> value as the agent sent it: int, str, or None where it has no such object."""


@dataclass
class Mapped:
    values: dict[str, float | str | None]
    problems: list[str]


class _Absent:
    """The agent does not have the object: no reading at all (an invalid value gives None)."""


ABSENT = _Absent()


def _number(vb: Varbinds, oid: str, problems: list[str], name: str, lo: float, hi: float,
            scale: float = 1.0) -> float | _Absent | None:
    raw = vb.get(oid)
    if raw is None:  # noSuchObject/noSuchInstance: the agent lacks it
        return ABSENT
    if not isinstance(raw, int) or isinstance(raw, bool):
        problems.append(f"{name}: expected a number, got {type(raw).__name__} {str(raw)[:30]!r}")
        return None
    if not lo <= raw <= hi:
        problems.append(f"{name}: {raw} is out of range {lo:g}..{hi:g}")
        return None
    return raw * scale


def _column(vb: Varbinds, table: str, column: int) -> list[tuple[str, object]]:
    """``(index, value)`` of one column of a walked table, in index order."""
    prefix = f"{table}.{column}."
    rows = [(oid[len(prefix):], v) for oid, v in vb.items() if oid.startswith(prefix)]
    return sorted(rows, key=lambda r: [int(x) for x in r[0].split(".")])


def _text(vb: Varbinds, oid: str) -> str | _Absent:
    raw = vb.get(oid)
    return raw.strip() if isinstance(raw, str) else ABSENT


def _alarm_names(vb: Varbinds) -> list[str]:
    names = []
    for _, oid in _column(vb, ALARM_TABLE, 2):
        number = str(oid).removeprefix(WELL_KNOWN_ALARMS + ".")
        names.append(ALARMS.get(int(number), "Unknown") if number.isdigit() else "Unknown")
    return sorted(set(names))


# NUT name, table, column, scale, highest sane value
_LINES = (("input.voltage", INPUT_TABLE, 3, 1.0, 1000),
          ("input.frequency", INPUT_TABLE, 2, 0.1, 1000),
          ("output.voltage", OUTPUT_TABLE, 2, 1.0, 1000),
          ("ups.load", OUTPUT_TABLE, 5, 1.0, 200))


def map_ups_mib(vb: Varbinds) -> Mapped:
    """Readings by NUT name from UPS-MIB scalars and table walks; a bad value gives None (an
    invalid reading) and a problem; an object the agent lacks gives no reading."""
    p: list[str] = []
    out: dict[str, float | str | _Absent | None] = {}
    minutes = _number(vb, MINUTES_REMAINING, p, "upsEstimatedMinutesRemaining", 0, 100000)
    out["battery.runtime"] = minutes * 60 if isinstance(minutes, float) else minutes
    out["battery.charge"] = _number(vb, CHARGE_REMAINING, p, "upsEstimatedChargeRemaining",
                                    0, 100)
    out["battery.voltage"] = _number(vb, BATTERY_VOLTAGE, p, "upsBatteryVoltage", 0, 10000,
                                     0.1)
    out["battery.temperature"] = _number(vb, BATTERY_TEMPERATURE, p, "upsBatteryTemperature",
                                         -50, 150)
    out["ups.time_on_battery"] = _number(vb, SECONDS_ON_BATTERY, p, "upsSecondsOnBattery",
                                         0, 10**9)
    out["output.frequency"] = _number(vb, OUTPUT_FREQUENCY, p, "upsOutputFrequency", 0, 1000,
                                      0.1)
    out["ups.mfr"], out["ups.model"] = _text(vb, MFR), _text(vb, MODEL)
    out["ups.firmware"] = _text(vb, FIRMWARE)
    for name, table, column, scale, hi in _LINES:
        rows = _column(vb, table, column)
        values = [_number({"v": v}, "v", p, f"{name} line {i}", 0, hi, scale) for i, v in rows]
        good = [v for v in values if isinstance(v, float)]
        if rows:  # one line: its value; three phases: the first line, and NUT's L1..L3 names
            out[name] = (max(good) if name == "ups.load" else good[0]) if good else None
        if len(rows) > 1:
            group, _, what = name.partition(".")
            for n, v in enumerate(values, 1):
                out[f"{group}.L{n}.{what}"] = v
    alarms = _alarm_names(vb)
    out["ups.alarm"] = " ".join(alarms)
    out["ups.status"] = _status(vb, alarms, p)
    return Mapped({k: v for k, v in out.items() if not isinstance(v, _Absent)}, p)


def _status(vb: Varbinds, alarms: list[str], problems: list[str]) -> str | None:
    source = vb.get(OUTPUT_SOURCE)
    if not isinstance(source, int) or isinstance(source, bool) or source not in _SOURCE_FLAGS:
        problems.append(f"upsOutputSource is {source!r}: ups.status unknown")
        return None
    flags = list(_SOURCE_FLAGS[source])
    if vb.get(BATTERY_STATUS) in (3, 4):
        flags.append("LB")
    flags += [_ALARM_FLAGS[a] for a in alarms if a in _ALARM_FLAGS]
    if alarms:
        flags.append("ALARM")
    return " ".join(dict.fromkeys(flags))


TRAP_ON_BATTERY = f"{UPS_MIB}.2.1"
TRAP_TEST_COMPLETED = f"{UPS_MIB}.2.2"
TRAP_ALARM_ADDED = f"{UPS_MIB}.2.3"
TRAP_ALARM_REMOVED = f"{UPS_MIB}.2.4"
AUTHENTICATION_FAILURE = "1.3.6.1.6.3.1.1.5.5"
_ALARM_EVENTS = {"OnBattery": "ONBATT", "LowBattery": "LOWBATT", "DepletedBattery": "LOWBATT",
                 "BatteryBad": "REPLBATT", "OutputOverload": "OVERLOAD", "OnBypass": "BYPASS",
                 "ShutdownImminent": "FSD"}


def trap_events(trap_oid: str, varbinds: Varbinds) -> list[str]:
    """NUT events a UPS-MIB trap announces (a removed alarm announces none: the poll it
    triggers tells what changed)."""
    if trap_oid.startswith(f"{UPS_MIB}.2.0."):  # a v1 trap: enterprise upsTraps, 0, specific
        trap_oid = f"{UPS_MIB}.2.{trap_oid.rsplit('.', 1)[1]}"
    if trap_oid == TRAP_ON_BATTERY:
        return ["ONBATT"]
    if trap_oid == TRAP_ALARM_ADDED:
        names = [ALARMS.get(int(v.rsplit(".", 1)[1]), "") for v in varbinds.values()
                 if isinstance(v, str) and v.startswith(WELL_KNOWN_ALARMS + ".")
                 and v.rsplit(".", 1)[1].isdigit()]
        return [_ALARM_EVENTS[n] for n in names if n in _ALARM_EVENTS]
    return []
