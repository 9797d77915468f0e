"""Turn the registers or bits of one block into point values."""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence

from drivers.modbus.plan import Block, Slot
from drivers.modbus.spec import DataType

_U16 = struct.Struct(">H")


class DecodeError(ValueError):
    """A value that cannot be a real reading (NaN, infinity, short reply)."""


def _register_value(slot: Slot, regs: Sequence[int]) -> float | int | bool:
    words = regs[slot.offset:slot.offset + slot.count]
    if len(words) < slot.count:
        raise DecodeError("reply too short")
    if slot.kind is DataType.BOOL:
        return bool((words[0] >> (slot.bit or 0)) & 1)
    if slot.swap_words:
        words = words[::-1]
    if slot.swap_bytes:
        words = [((w & 0xFF) << 8) | (w >> 8) for w in words]
    assert slot.fmt is not None
    raw = slot.fmt.unpack(b"".join(_U16.pack(w) for w in words))[0]
    if isinstance(raw, float) and not math.isfinite(raw):
        raise DecodeError(f"{raw} is not a number")
    if slot.scale == 1.0 and slot.add == 0.0:
        return raw  # type: ignore[no-any-return]
    return raw * slot.scale + slot.add  # type: ignore[no-any-return]


def decode_block(block: Block, data: Sequence[int] | Sequence[bool]) -> dict[str, object]:
    """Values by point key; a point whose value cannot be decoded maps to a DecodeError."""
    out: dict[str, object] = {}
    if block.table.is_bits:
        for slot in block.slots:
            out[slot.key] = (bool(data[slot.offset]) if slot.offset < len(data)
                             else DecodeError("reply too short"))
        return out
    for slot in block.slots:
        try:
            out[slot.key] = _register_value(slot, data)  # type: ignore[arg-type]
        except DecodeError as err:
            out[slot.key] = err
    return out
