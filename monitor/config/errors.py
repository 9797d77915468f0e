"""Config errors that print as ``FILE:LINE: key.path: message``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

Path = tuple[str | int, ...]


def format_path(path: Path) -> str:
    """``("devices", 0, "port")`` -> ``devices[0].port``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(root)"


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in one place of a config file."""

    file: str
    line: int
    path: Path
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {format_path(self.path)}: {self.message}"


class ConfigError(Exception):
    """A config that cannot be used; carries every issue found."""

    def __init__(self, issues: Sequence[ConfigIssue]):
        self.issues = sorted(issues, key=lambda i: (i.file, i.line, format_path(i.path)))
        super().__init__("\n".join(str(i) for i in self.issues))
