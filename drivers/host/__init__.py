"""Host and service checks: ICMP, TCP connect, HTTP(S), SNMP interface status."""

from drivers.host.driver import HostDriver

__all__ = ["HostDriver"]
