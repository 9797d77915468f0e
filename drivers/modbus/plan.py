"""Batch points into as few read requests as the Modbus limits allow."""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from drivers.modbus.spec import LAYOUT, DataType, ModbusConnection, ModbusPoint, Table


@dataclass(frozen=True, slots=True)
class Slot:
    """Where one point's value sits inside a block, and how to turn it into a value."""

    key: str
    offset: int
    count: int
    kind: DataType
    bit: int | None
    fmt: struct.Struct | None
    swap_words: bool
    swap_bytes: bool
    scale: float
    add: float


@dataclass(frozen=True, slots=True)
class Block:
    """One read request: a table, a start address, a count, and the points inside."""

    table: Table
    address: int
    count: int
    slots: tuple[Slot, ...]


def _slot(point: ModbusPoint, start: int) -> Slot:
    kind = point.kind
    fmt = None if kind is DataType.BOOL else struct.Struct(">" + LAYOUT[kind][0])
    return Slot(point.key, point.address - start, point.registers, kind, point.bit, fmt,
                point.word_order == "little", point.byte_order == "little",
                point.scale, point.offset)


def _block(table: Table, start: int, end: int, group: list[ModbusPoint]) -> Block:
    return Block(table, start, end - start, tuple(_slot(p, start) for p in group))


def plan_blocks(points: Sequence[ModbusPoint], conn: ModbusConnection) -> list[Block]:
    """Group points per table, sorted by address, merging neighbours within ``max_gap``."""
    blocks: list[Block] = []
    for table in Table:
        limit = conn.max_bits if table.is_bits else conn.max_registers
        members = sorted((p for p in points if p.table is table), key=lambda p: p.address)
        group: list[ModbusPoint] = []
        start = end = 0
        for p in members:
            p_end = p.address + p.registers
            if group and p.address - end <= conn.max_gap and max(end, p_end) - start <= limit:
                group.append(p)
                end = max(end, p_end)
                continue
            if group:
                blocks.append(_block(table, start, end, group))
            group, start, end = [p], p.address, p_end
        if group:
            blocks.append(_block(table, start, end, group))
    return blocks
