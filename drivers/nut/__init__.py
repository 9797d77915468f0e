"""NUT driver: an asyncio client of upsd's network protocol."""

from drivers.nut.driver import NutDriver

__all__ = ["NutDriver"]
