"""Config of a Modbus device: the connection and the points' register map."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import Field, model_validator

from monitor.config.model import PointBase
from monitor.config.types import Strict


class Table(StrEnum):
    COIL = "coil"
    DISCRETE_INPUT = "discrete_input"
    HOLDING = "holding"
    INPUT = "input"

    @property
    def is_bits(self) -> bool:
        return self in (Table.COIL, Table.DISCRETE_INPUT)


class DataType(StrEnum):
    BOOL = "bool"
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    INT64 = "int64"
    UINT64 = "uint64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"


# (struct code, registers) per register data type
LAYOUT: dict[DataType, tuple[str, int]] = {
    DataType.INT16: ("h", 1), DataType.UINT16: ("H", 1),
    DataType.INT32: ("i", 2), DataType.UINT32: ("I", 2),
    DataType.INT64: ("q", 4), DataType.UINT64: ("Q", 4),
    DataType.FLOAT32: ("f", 2), DataType.FLOAT64: ("d", 4),
}

Order = Literal["big", "little"]


class ModbusPoint(PointBase):
    table: Table
    address: int = Field(ge=0, le=65535)
    data_type: DataType | None = Field(default=None,
                                       description="bool for coils/inputs, uint16 by default")
    bit: int | None = Field(default=None, ge=0, le=15,
                            description="read one bit of a 16-bit register as a bool")
    byte_order: Order = "big"
    word_order: Order = "big"
    scale: float = 1.0
    offset: float = 0.0

    @model_validator(mode="after")
    def _consistent(self) -> ModbusPoint:
        if self.table.is_bits:
            if self.data_type not in (None, DataType.BOOL):
                raise ValueError(f"a {self.table} holds one bit: data_type must be bool")
            if self.bit is not None:
                raise ValueError(f"bit applies to registers, not to a {self.table}")
        elif self.data_type is DataType.BOOL and self.bit is None:
            raise ValueError("a register read as bool needs bit: 0..15")
        elif self.bit is not None and self.data_type not in (None, DataType.BOOL):
            raise ValueError("bit reads a bool; leave data_type out or set it to bool")
        if self.registers + self.address > 65536:
            raise ValueError("the value runs past register 65535")
        return self

    @property
    def kind(self) -> DataType:
        if self.table.is_bits or self.bit is not None:
            return DataType.BOOL
        return self.data_type or DataType.UINT16

    @property
    def registers(self) -> int:
        """Registers (or bits) this point occupies."""
        kind = self.kind
        return 1 if kind is DataType.BOOL else LAYOUT[kind][1]


class ModbusConnection(Strict):
    transport: Literal["tcp", "rtu"] = "tcp"
    host: str | None = None
    port: int = Field(default=502, ge=1, le=65535)
    serial_port: str | None = None
    baudrate: int = Field(default=9600, gt=0)
    parity: Literal["N", "E", "O"] = "N"
    bytesize: Literal[7, 8] = 8
    stopbits: Literal[1, 2] = 1
    device_id: int = Field(default=1, ge=0, le=247)
    max_gap: int = Field(default=16, ge=0, le=120,
                         description="unused registers a batched read may span")
    max_registers: int = Field(default=125, ge=1, le=125)
    max_bits: int = Field(default=2000, ge=1, le=2000)

    @model_validator(mode="after")
    def _endpoint(self) -> ModbusConnection:
        if self.transport == "tcp" and not self.host:
            raise ValueError("tcp needs host")
        if self.transport == "rtu" and not self.serial_port:
            raise ValueError("rtu needs serial_port")
        other = _SERIAL_KEYS if self.transport == "tcp" else _TCP_KEYS
        given = sorted(other & self.model_fields_set)
        if given:
            verb = "does" if len(given) == 1 else "do"
            raise ValueError(f"{', '.join(given)} {verb} not apply to {self.transport}")
        return self

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}" if self.transport == "tcp" else str(self.serial_port)


_TCP_KEYS = {"host", "port"}
_SERIAL_KEYS = {"serial_port", "baudrate", "parity", "bytesize", "stopbits"}
