"""SNMP driver (pysnmp 7, asyncio): v1, v2c, v3 USM; GET and GETBULK walks; UPS-MIB profile."""

from drivers.snmp.driver import SnmpDriver

__all__ = ["SnmpDriver"]
