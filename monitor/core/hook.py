"""A single-slot callback that refuses a second handler: replacing one silently would leave
the part that set it first deaf."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, ParamSpec

P = ParamSpec("P")


class Hook(Generic[P]):
    def __init__(self, what: str):
        self.what = what
        self._handler: Callable[P, None] | None = None

    def set(self, handler: Callable[P, None]) -> None:
        """Handle it; RuntimeError when something handles it already."""
        if self._handler is not None:
            raise RuntimeError(f"{self.what}: a handler is set already")
        self._handler = handler

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> None:
        if self._handler is not None:
            self._handler(*args, **kwargs)
