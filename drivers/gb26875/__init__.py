"""GB/T 26875.3-2011: the receiver a building's user information transmission device
(用户信息传输装置) reports fire alarms to; Vigil is the monitoring centre for the site."""

from drivers.gb26875.source import Gb26875Source

__all__ = ["Gb26875Source"]
