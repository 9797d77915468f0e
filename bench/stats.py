"""Percentiles as the benches print them."""

from __future__ import annotations

import statistics


def ms(values: list[float], q: int) -> float:
    """The ``q``-th percentile (1..99) of seconds, in milliseconds."""
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000
