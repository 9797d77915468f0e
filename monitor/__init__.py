"""Vigil: facility monitoring and emergency-response daemon."""

__version__ = "0.1.0"
