"""Timing helper shared by the benchmark scripts."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def best(f: Callable[[], object], repeat: int = 15) -> tuple[float, float]:
    """(best, median) wall time of ``repeat`` calls of f, s."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times)
