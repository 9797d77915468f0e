"""GB/T 26875.3 application data: a type code, a count of information objects, and that many
objects, each its body and (for the uplink types) a 6-byte time label.

Decoded here: 1 a fire system's state, 2 a component's state, 3 a component's analogue value,
4 an operation at a fire system, 21 the transmission device's own state, 24 an operation at the
transmission device. Any other type is kept as ``Unknown`` with its bytes (never dropped).
Component descriptions are GB 18030.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from drivers.gb26875.frame import time_label

SYSTEM_BITS = ("normal", "fire", "fault", "disabled", "supervisory", "start", "feedback",
               "delay", "main_power_fault", "backup_power_fault", "bus_fault", "manual",
               "config_changed", "reset")
"""建筑消防设施系统状态, bit 0 first: bit 0 set is 正常运行 (clear: 测试)."""
COMPONENT_BITS = ("normal", "fire", "fault", "disabled", "supervisory", "start", "feedback",
                  "delay", "power_fault")
"""部件运行状态, bit 0 first (屏蔽 = disabled)."""
DEVICE_BITS = ("normal", "fire", "fault", "main_power_fault", "backup_power_fault",
               "link_fault", "line_fault")
"""用户信息传输装置运行状态, bit 0 first."""
OPERATION_BITS = ("reset", "silence", "manual_alarm", "cleared", "self_test", "confirm",
                  "test")
"""操作标志 of a fire system's or the transmission device's operation, bit 0 first."""


class DataError(ValueError):
    """Application data whose length does not fit its type and count."""


def flags(value: int, names: tuple[str, ...]) -> frozenset[str]:
    """The names of the bits set (bit 0 is "normal": set means normal running)."""
    return frozenset(n for i, n in enumerate(names) if value >> i & 1)


@dataclass(frozen=True)
class SystemState:
    system_type: int
    system: int
    status: frozenset[str]
    at: datetime | None


@dataclass(frozen=True)
class ComponentState:
    system_type: int
    system: int
    component_type: int
    component: int
    """The component's address (4 bytes, low byte first)."""
    status: frozenset[str]
    description: str
    at: datetime | None


@dataclass(frozen=True)
class AnalogueValue:
    system_type: int
    system: int
    component_type: int
    component: int
    kind: int
    """模拟量类型."""
    raw: int
    """The value as sent (signed 16 bits); its scale depends on ``kind``."""
    at: datetime | None


@dataclass(frozen=True)
class Operation:
    system_type: int | None
    """None: an operation at the transmission device itself (type 24)."""
    system: int | None
    operation: frozenset[str]
    operator: int
    at: datetime | None


@dataclass(frozen=True)
class DeviceState:
    status: frozenset[str]
    at: datetime | None


@dataclass(frozen=True)
class Unknown:
    type_code: int
    data: bytes


Info = SystemState | ComponentState | AnalogueValue | Operation | DeviceState | Unknown

SIZES = {1: 4, 2: 40, 3: 10, 4: 4, 21: 1, 24: 2}
"""Bytes of one object's body, by type (its time label follows)."""


def decode_data(data: bytes) -> list[Info]:
    """The information objects of one frame's application data."""
    if len(data) < 2:
        return [Unknown(data[0] if data else 0, data)]
    code, count = data[0], data[1]
    size = SIZES.get(code)
    if size is None:
        return [Unknown(code, data)]
    need = 2 + count * (size + 6)
    if len(data) != need:
        raise DataError(f"type {code} with {count} objects needs {need} bytes, got "
                        f"{len(data)}")
    out: list[Info] = []
    for n in range(count):
        start = 2 + n * (size + 6)
        body, at = data[start:start + size], time_label(data[start + size:start + size + 6])
        out.append(_object(code, body, at))
    return out


def _object(code: int, b: bytes, at: datetime | None) -> Info:
    if code == 1:
        return SystemState(b[0], b[1], flags(int.from_bytes(b[2:4], "little"), SYSTEM_BITS), at)
    if code == 2:
        return ComponentState(b[0], b[1], b[2], int.from_bytes(b[3:7], "little"),
                              flags(int.from_bytes(b[7:9], "little"), COMPONENT_BITS),
                              description(b[9:40]), at)
    if code == 3:
        return AnalogueValue(b[0], b[1], b[2], int.from_bytes(b[3:7], "little"), b[7],
                             int.from_bytes(b[8:10], "little", signed=True), at)
    if code == 4:
        return Operation(b[0], b[1], flags(b[2], OPERATION_BITS), b[3], at)
    if code == 21:
        return DeviceState(flags(b[0], DEVICE_BITS), at)
    return Operation(None, None, flags(b[0], OPERATION_BITS), b[1], at)


def description(raw: bytes) -> str:
    """A component's description: GB 18030, padded with NULs (what cannot be read is
    shown as such, not dropped)."""
    return raw.split(b"\0", 1)[0].decode("gb18030", errors="replace").strip()
