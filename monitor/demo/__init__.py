"""The demo: a simulated site and the daemon on it."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """Where ``vigil demo`` keeps its database and API token unless told otherwise."""
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local/share"), "vigil", "demo")
