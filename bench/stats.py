"""Percentiles and memory as the benches print them."""

from __future__ import annotations

import statistics
from pathlib import Path


def ms(values: list[float], q: int) -> float:
    """The ``q``-th percentile (1..99) of seconds, in milliseconds."""
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1] * 1000


def rss_mib() -> float:
    """This process's resident memory, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0
