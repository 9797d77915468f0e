"""Notifications: the directory's people reached over their channels (apprise)."""
