"""Modbus TCP and RTU driver (pymodbus 3.x)."""

from drivers.modbus.driver import ModbusDriver

__all__ = ["ModbusDriver"]
