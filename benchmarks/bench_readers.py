"""Benchmark: time and peak memory (tracemalloc) of the readers on the real ``.3ds`` and a synthetic grid.

``rows()`` returns one dict per case: the file, its size, the best and median time of a
``read_grid`` and the peak memory the read allocates (tracemalloc, file bytes included), also
as a multiple of the file size.  Prints a table when run: ``python benchmarks/bench_readers.py``.
"""

from __future__ import annotations

import statistics
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from gapscope.kernels import readers

ROOT = Path(__file__).resolve().parents[1]
REAL_3DS = ROOT / "tests" / "data" / "nanonis" / "NanonisReader_STS_grid_lockin.3ds"


def synthetic_grid(path: Path, nx: int = 100, ny: int = 100, nbias: int = 500) -> Path:
    """A Dynes-like lock-in grid of nx × ny pixels and nbias points, written as a .3ds."""
    bias = np.linspace(-5.0, 5.0, nbias)
    delta = 1.3 + 0.1 * np.sin(np.linspace(0, 3, nx))[:, None] * np.cos(np.linspace(0, 2, ny))[None, :]
    E = bias[None, None, :] + 0.05j
    g = np.abs(np.real(E / np.sqrt(E ** 2 - delta[..., None] ** 2)))
    grid = readers.Grid(bias=bias, x=np.arange(nx) * 0.5, y=np.arange(ny) * 0.5, data={"LockinX": g},
                        units={"LockinX": "V"}, header={})
    readers.write_grid(path, grid)
    return path


def measure(label: str, path: Path, repeat: int = 5) -> dict[str, float | str | int]:
    size = path.stat().st_size
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        readers.read_grid(path)
        times.append(time.perf_counter() - t0)
    tracemalloc.start()
    try:
        g = readers.read_grid(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    shape = next(iter(g.data.values())).shape
    return {"case": label, "shape": "×".join(map(str, shape)), "file_MiB": size / 2**20,
            "best_ms": min(times) * 1e3, "median_ms": statistics.median(times) * 1e3,
            "peak_MiB": peak / 2**20, "peak_per_file_size": peak / size}


def rows() -> list[dict[str, float | str | int]]:
    """One row per case: the real 30×30×200 grid (4 channels) and a synthetic 100×100×500 grid."""
    out = [measure("real .3ds (NanonisReader_STS_grid_lockin)", REAL_3DS)]
    with tempfile.TemporaryDirectory() as tmp:
        out.append(measure("synthetic .3ds 100×100×500, 1 channel", synthetic_grid(Path(tmp) / "synthetic.3ds"),
                           repeat=3))
    return out


def print_rows() -> None:
    """The readers' benchmark lines (called by benchmarks/bench.py)."""
    print("\nReaders (time and peak memory, tracemalloc)")
    print(f"  {'case':<44} {'shape':>14} {'file MiB':>9} {'best ms':>9} {'median ms':>10} {'peak MiB':>9} "
          f"{'peak/file':>9}")
    for r in rows():
        print(f"  {r['case']:<44} {r['shape']:>14} {r['file_MiB']:9.1f} {r['best_ms']:9.1f} {r['median_ms']:10.1f} "
              f"{r['peak_MiB']:9.1f} {r['peak_per_file_size']:9.2f}")


if __name__ == "__main__":
    print_rows()
