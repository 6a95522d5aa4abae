"""Fuzz: mutated copies of every real instrument file either load consistently or raise FileFormatError.

Each case is seeded (``SEED``, the file, the mutation, its number), so a failure reproduces
from its test id alone.  Mutations: truncation at a random offset, byte flips in the header
and in the body, header numbers replaced by huge, negative, zero or non-finite values,
inconsistent channel lists, duplicated header lines, an empty file, the header alone.

Every case must finish within 2 s and allocate (tracemalloc peak) at most the readers'
documented bound, ``ALLOC_FACTOR`` × the file size + ``ALLOC_SLACK``, and every failure must be
a :class:`FileFormatError` naming the file.
"""

from __future__ import annotations

import re
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from gapscope.kernels import readers

pytestmark = pytest.mark.slow

SEED = 20240609
TESTS = Path(__file__).resolve().parents[1]
FILES = sorted(p for d in ("real", "nanonis") for p in (TESTS / "data" / d).iterdir()
               if p.suffix in {".dat", ".3ds", ".sxm", ".VERT", ".sm4"})
MUTATIONS = ("truncate", "flip_header", "flip_body", "number", "channels", "dup_line", "empty", "header_only",
             "splice")
REPEATS = 2
BAD_NUMBERS = ("999999999999", "-1", "0", "1e308", "NaN", "-inf", "4294967295", "0.5", "1,5E-3", "")
_CACHE: dict[Path, bytes] = {}


def _raw(path: Path) -> bytes:
    if path not in _CACHE:
        _CACHE[path] = path.read_bytes()
    return _CACHE[path]


def header_end(raw: bytes, suffix: str) -> int:
    """Where the file's header ends (the body begins)."""
    marks = {".dat": b"[DATA]", ".3ds": b":HEADER_END:", ".sxm": b"\x1a\x04", ".VERT": b"\nDATA"}
    if suffix == ".sm4":
        return min(6000, len(raw))
    i = raw.find(marks[suffix])
    return len(raw) if i < 0 else i + len(marks[suffix])


def mutate(raw: bytes, suffix: str, kind: str, rng: np.random.Generator) -> bytes:
    n, h = len(raw), header_end(raw, suffix)
    b = bytearray(raw)
    if kind == "truncate":
        return raw[: int(rng.integers(0, n))]
    if kind in ("flip_header", "flip_body"):
        lo, hi = (0, h) if kind == "flip_header" else (h, n)
        if hi <= lo:
            lo, hi = 0, n
        for _ in range(int(rng.integers(1, 9 if kind == "flip_header" else 33))):
            b[int(rng.integers(lo, hi))] ^= 1 << int(rng.integers(0, 8))
        return bytes(b)
    if kind == "number":
        if suffix == ".sm4":                                # binary header: an aligned uint32 overwritten
            for _ in range(int(rng.integers(1, 4))):
                off = 2 * int(rng.integers(0, h // 2 - 2))
                b[off:off + 4] = int(rng.choice([0, 1, 2**31 - 1, 2**32 - 1, int(rng.integers(0, 2**32))])
                                     ).to_bytes(4, "little")
            return bytes(b)
        head = raw[:h].decode("latin-1")
        nums = list(re.finditer(r"[-+]?\d+(?:[.,]\d+)?(?:[eE][-+]?\d+)?", head))
        if not nums:
            return raw
        for _ in range(int(rng.integers(1, 4))):
            m = nums[int(rng.integers(0, len(nums)))]
            head = head[:m.start()] + str(rng.choice(BAD_NUMBERS)) + head[m.end():]
            nums = list(re.finditer(r"[-+]?\d+(?:[.,]\d+)?(?:[eE][-+]?\d+)?", head))
            if not nums:
                break
        return head.encode("latin-1") + raw[h:]
    if kind == "channels":
        return _channels(raw, suffix, rng)
    if kind == "dup_line":
        head = raw[:h].split(b"\n")
        if len(head) < 2:
            return raw
        k = int(rng.integers(0, len(head) - 1))
        at = int(rng.integers(0, len(head)))
        head.insert(at, head[k])
        return b"\n".join(head) + raw[h:]
    if kind == "empty":
        return b""
    if kind == "header_only":
        if suffix == ".dat":
            nl = raw.find(b"\n", h + 2)
            return raw[: nl + 1 if nl >= 0 else h]
        return raw[:h] + (b"\r\n" if suffix == ".3ds" else b"")
    if kind == "splice":                                    # a block of the file repeated elsewhere
        a, c = sorted(int(v) for v in rng.integers(0, n, 2))
        at = int(rng.integers(0, n))
        return raw[:at] + raw[a:c][:4096] + raw[at:]
    raise AssertionError(kind)


def _channels(raw: bytes, suffix: str, rng: np.random.Generator) -> bytes:
    """An inconsistent channel list: one dropped, duplicated or added."""
    op = str(rng.choice(["drop", "dup", "add"]))
    if suffix == ".3ds":
        m = re.search(rb'Channels="([^"\r\n]*)"', raw)
        assert m
        chans = m.group(1).split(b";")
        chans = _edit_list(chans, op, rng, b"Extra (V)")
        return raw[:m.start(1)] + b";".join(chans) + raw[m.end(1):]
    if suffix == ".dat":
        i = raw.find(b"[DATA]")
        j = raw.find(b"\n", i + 8)
        start = raw.find(b"\n", i) + 1
        labels = raw[start:j].rstrip(b"\r").split(b"\t")
        labels = _edit_list(labels, op, rng, b"Extra (V)")
        return raw[:start] + b"\t".join(labels) + raw[j:]
    if suffix == ".sxm":
        i = raw.find(b":DATA_INFO:\n")
        j = raw.find(b"\n\n", i)
        rows = raw[i:j].split(b"\n")
        body = _edit_list(rows[2:], op, rng, b"\t99\tExtra\tV\tboth\t1.000E+0\t0.000E+0")
        return raw[:i] + b"\n".join(rows[:2] + body) + raw[j:]
    if suffix == ".VERT":
        i = raw.find(b"\nDATA") + 7
        j = raw.find(b"\n", i)
        parts = raw[i:j].split()
        if len(parts) >= 4:
            parts[3] = str(int(parts[3]) ^ (1 << int(rng.integers(0, 13)))).encode()
        return raw[:i] + b"    ".join(parts) + raw[j:]
    b = bytearray(raw)                                      # .sm4: a page's string count or sizes
    off = int(rng.choice([38, 42, 94, 5242 + 2, 5242 + 24, 5242 + 28]))
    if off + 4 <= len(b):
        b[off:off + 2] = int(rng.integers(0, 65536)).to_bytes(2, "little")
    return bytes(b)


def _edit_list(items: list, op: str, rng: np.random.Generator, extra: bytes) -> list:
    items = list(items)
    k = int(rng.integers(0, len(items)))
    if op == "drop" and len(items) > 1:
        del items[k]
    elif op == "dup":
        items.insert(k, items[k])
    else:
        items.insert(k, extra)
    return items


def check_consistent(obj) -> None:
    """Shapes agree, axes are finite, what the panel reads is there."""
    assert isinstance(obj.warnings, list) and all(isinstance(w, str) for w in obj.warnings)
    if isinstance(obj, readers.Spectrum):
        n = obj.bias.size
        assert obj.bias.ndim == 1 and n >= 1 and np.isfinite(obj.bias).all()
        assert obj.sweep in ("bias", "z", "time", "frequency", "other", "index")
        assert all(v.shape == (n,) for v in obj.channels.values())
        assert set(obj.channels) <= set(obj.units) and obj.bias_channel in obj.channels
        try:
            g = obj.conductance()
            assert g.shape == (n,)
        except readers.FileFormatError as exc:
            assert str(exc).startswith(Path(obj.path).name)
        except ValueError as exc:                          # differentiate/normalise: fewer than 3 points
            assert "three" in str(exc)
    elif isinstance(obj, readers.Grid):
        nx, ny, nb = obj.x.size, obj.y.size, obj.bias.size
        assert np.isfinite(obj.x).all() and np.isfinite(obj.y).all() and np.isfinite(obj.bias).all()
        assert all(v.shape == (nx, ny, nb) for v in obj.data.values())
        assert all(v.shape == (nx, ny) for v in obj.params.values())
        assert obj.positions is None or obj.positions.shape == (nx, ny, 2)
    elif isinstance(obj, readers.Image):
        nx, ny = obj.x.size, obj.y.size
        assert np.isfinite(obj.x).all() and np.isfinite(obj.y).all()
        assert all(v.shape == (nx, ny) for v in obj.channels.values())
        assert set(obj.direction) == set(obj.channels) == set(obj.units)
    else:
        raise AssertionError(type(obj))


READER = {".dat": readers.read_spectrum, ".VERT": readers.read_spectrum, ".sm4": readers.read_spectrum,
          ".3ds": readers.read_grid, ".sxm": readers.read_image}
CASES = [(p, kind, r) for p in FILES for kind in MUTATIONS for r in range(REPEATS)]


@pytest.mark.parametrize("path,kind,rep", CASES, ids=[f"{p.name}-{k}-{r}" for p, k, r in CASES])
def test_mutated_file_loads_consistently_or_raises_file_format_error(path, kind, rep):
    rng = np.random.default_rng([SEED, FILES.index(path), MUTATIONS.index(kind), rep])
    data = mutate(_raw(path), path.suffix, kind, rng)
    name = f"fuzz-{path.stem}{path.suffix}"
    readers_to_try = [READER[path.suffix]] + ([readers.read_any] if rep == 0 else [])
    for reader in readers_to_try:
        tracemalloc.start()
        t0 = time.perf_counter()
        try:
            obj = reader(name, data=data)
        except readers.FileFormatError as exc:
            obj = exc
        finally:
            elapsed = time.perf_counter() - t0
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        if isinstance(obj, readers.FileFormatError):
            assert str(obj).startswith(name + ": ") and len(obj.problem) > 10
        else:
            check_consistent(obj)
        bound = readers.ALLOC_FACTOR * len(data) + readers.ALLOC_SLACK
        assert peak <= bound, f"{reader.__name__} allocated {peak / 2**20:.1f} MiB for a {len(data)}-byte file"
        assert elapsed < 2.0, f"{reader.__name__} took {elapsed:.2f} s"


def test_the_cases_are_a_few_hundred_and_reproducible():
    assert 250 <= len(CASES) <= 400
    a = mutate(_raw(FILES[0]), FILES[0].suffix, "flip_body", np.random.default_rng([SEED, 0, 2, 0]))
    b = mutate(_raw(FILES[0]), FILES[0].suffix, "flip_body", np.random.default_rng([SEED, 0, 2, 0]))
    assert a == b != _raw(FILES[0])
