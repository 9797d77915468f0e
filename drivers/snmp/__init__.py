"""SNMP driver (pysnmp 7, asyncio): v1, v2c, v3 USM; GET and GETBULK walks; UPS-MIB profile."""

from drivers.snmp.driver import SnmpDriver
from drivers.snmp.trapsource import TrapSource

__all__ = ["SnmpDriver", "TrapSource"]
