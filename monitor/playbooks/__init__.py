"""Playbooks: the emergency procedures as data, the engine that runs them, and their tools."""
