"""Alarms: their ISA-18.2 lifecycle (``manager``), the rules that raise them, inhibition,
the facts routes and silences match on, /health, and the monthly alarm-system review."""
