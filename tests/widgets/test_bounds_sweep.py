"""No allowed input can take down the server: every registered panel, swept over its declared bounds.

For every panel in :data:`gapscope.widgets.registry.PANELS` (a new panel is covered as soon as it
is registered), the sweep takes each *dimension* of the panel — every parameter at its hard-bound
extremes (low, high, and 0 where 0 lies strictly inside), every extra control with finite choices
(dropdowns, toggles, checkboxes) at its options — and covers every pair of dimensions at every
combination of their levels: an all-pairs covering design whose cases set up to ``WIDTH`` dimensions at
once, the others at the panel's starting values.  A case the panel refuses (an error message, nothing
drawn) is re-run pair by pair with the rest at defaults, so that one refused value cannot mask another
pair.  (A limit of any covering design: a case that is drawn may owe its low cost to a third value, e.g.
a high temperature that broadens everything; WIDTH trades this against the runtime.)  Each preset is one
more case.  The fit panel, whose parameters live in its table, is swept per model with a demo loaded.

Each panel's cases run in a subprocess under a memory cap (``RLIMIT_AS``), a per-case limit of
processor time (the measure of a panel's work on a shared machine) and a wall-clock limit (a hang),
through the panel's public controls (``panel.set``, a control's ``.value``) and ``panel.wait()``.
A case passes when the panel either drew a result or shows a message that is
not an internal error, and every plotted mark (x, y, colours, sizes, images' extents) and every
readout is finite — whether or not the case was drawn.  A subprocess that dies (killed, out of
memory, past its time) names the case it was running; the sweep resumes after it.

Run alone: ``pytest -m sweep tests/widgets/test_bounds_sweep.py`` (``GAPSCOPE_SWEEP_LOG=<folder>`` keeps
every case's record: time, processor time, peak memory, message).  The worker can also be run by
hand: ``python tests/widgets/test_bounds_sweep.py worker list <panel>`` prints its cases;
``… worker run <panel> < cases.json`` runs them.
"""

from __future__ import annotations

import html
import itertools
import json
import math
import os
import re
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from gapscope.widgets.registry import PANELS

#: address-space cap of a worker (bytes): the server must survive any allowed input within it
MEMORY_CAP = 3 * 2 ** 30
#: processor time one case may take (s, all threads of the worker): the bound on a panel's work
CASE_CPU_SECONDS = 20.0
#: wall-clock limit of one case (s): past it the worker stops and the case fails (generous: the machine is shared,
#: so the processor time above is the measure of a panel's work, this only catches a hang)
CASE_SECONDS = 120.0
#: wall-clock limit of one batch (s): a worker that hangs outside a case is stopped too
BATCH_SECONDS = 900.0
#: subprocesses per panel (tests that xdist can spread over its workers)
CHUNKS = 2
#: dimensions set at once in one case of the covering design (the others at their starting values)
WIDTH = 4
#: a choice with more options than this is swept at a few representative ones (first, second, middle, last)
MAX_OPTIONS = 5

HERE = Path(__file__).resolve()


# ============================================================================ the design (worker side)
def _levels(spec: Any) -> list[float]:
    """A spec's extreme allowed values: the low bound (just above it when open), the high bound, and 0
    where 0 lies strictly inside."""
    lo, hi = spec.bounds
    if not math.isfinite(lo):
        lo = spec.soft[0] - 1e3 * (spec.soft[1] - spec.soft[0])
    if not math.isfinite(hi):
        hi = spec.soft[1] + 1e3 * (spec.soft[1] - spec.soft[0])
    if spec.open_low:
        lo = lo + (1.0 if spec.integer else max(abs(lo) * 1e-9, 1e-12))
    out = [lo, hi]
    if lo < 0.0 < hi:
        out.insert(1, 0.0)
    return [float(int(x)) if spec.integer else float(x) for x in out]


def _choices(widget: Any) -> list[Any] | None:
    """The values a selection widget can take (None if it is not one)."""
    import ipywidgets as w

    if isinstance(widget, w.Checkbox | w.ToggleButton):
        return [False, True]
    if isinstance(widget, w.Dropdown | w.ToggleButtons | w.RadioButtons | w.Select):
        values = [o[1] if isinstance(o, tuple) else o for o in widget.options]
        if len(values) > MAX_OPTIONS:
            values = [values[i] for i in sorted({0, 1, len(values) // 2, len(values) - 1})]
        return values
    return None


#: finite-choice controls that are not extras but enter ``panel.values`` (set through ``panel.set``)
EXTRA_CHOICES: dict[str, dict[str, str]] = {
    "ShibaPanel": {"channel": "channel", "map_state": "map_at"},
}


def _dimensions(panel: Any, params: Any = None) -> list[tuple[str, list[Any]]]:
    """(name, levels) of every swept dimension of a panel."""
    dims = [(p.name, _levels(p.spec)) for p in (panel.PARAMS if params is None else params)]
    for name, widget in panel.extras.items():
        values = _choices(widget)
        if values:
            dims.append((name, values))
    for name, attr in EXTRA_CHOICES.get(type(panel).__name__, {}).items():
        values = _choices(getattr(panel, attr))
        if values:
            dims.append((name, values))
    return dims


def _pairs(dims: list[tuple[str, list[Any]]]) -> list[dict[str, Any]]:
    """Every pair of dimensions at every combination of their levels (others untouched)."""
    out = []
    for (a, la), (b, lb) in itertools.combinations(dims, 2):
        out += [{a: x, b: y} for x in la for y in lb]
    return out


def _covering(dims: list[tuple[str, list[Any]]], width: int = WIDTH) -> list[dict[str, Any]]:
    """A greedy all-pairs covering design: cases of up to ``width`` dimensions at their levels (others at
    the starting values) such that every pair of dimensions meets at every combination of levels in
    some case.  Deterministic.  A case the panel refuses is later re-run pair by pair (:func:`_unpack`),
    so that one refused value cannot hide another pair."""
    levels = dict(dims)
    names = [n for n, _ in dims]
    todo = {((a, i), (b, j)) for a, b in itertools.combinations(names, 2)
            for i in range(len(levels[a])) for j in range(len(levels[b]))}
    order = {n: k for k, n in enumerate(names)}

    def key(p: tuple[str, int], q: tuple[str, int]) -> tuple:
        return (p, q) if order[p[0]] < order[q[0]] else (q, p)

    out = []
    for first in sorted(todo, key=lambda t: (order[t[0][0]], t[0][1], order[t[1][0]], t[1][1])):
        if first not in todo:
            continue
        case = dict(first)
        todo.discard(first)
        while len(case) < width:
            best, gain = None, 0
            for c in names:
                if c in case:
                    continue
                for z in range(len(levels[c])):
                    g = sum(key((c, z), (d, case[d])) in todo for d in case)
                    if g > gain:                           # the value that covers most new pairs
                        best, gain = (c, z), g
            if best is None:
                break
            for d in list(case):
                todo.discard(key(best, (d, case[d])))
            case[best[0]] = best[1]
        out.append({n: levels[n][i] for n, i in sorted(case.items(), key=lambda t: order[t[0]])})
    return out


def _unpack(case: dict[str, Any]) -> list[dict[str, Any]]:
    """The pairs of a case (its ``@`` keys kept): run alone when the case as a whole was refused."""
    at = {k: v for k, v in case.items() if k.startswith("@")}
    keys = [k for k in case if not k.startswith("@")]
    if len(keys) <= 2:
        return []
    return [{**at, a: case[a], b: case[b]} for a, b in itertools.combinations(keys, 2)]


def cases(panel: Any) -> list[dict[str, Any]]:
    """The sweep of one panel: a list of cases, each a dict of changes (``"@preset"``/``"@model"``: how
    to get there first)."""
    out: list[dict[str, Any]] = []
    if type(panel).__name__ == "FitPanel":
        from gapscope.kernels import fitting
        for model in fitting.MODELS.values():
            dims = [(p.name, _levels(p.spec)) for p in model.all_params]
            out += [{"@model": model.name, **c} for c in _covering(dims)]
        return out
    preset = getattr(panel, "preset", None)
    if preset is not None:
        out += [{"@preset": label} for label in preset.options if label != "—"]
    return out + _covering(_dimensions(panel))


def _state(panel: Any, base: dict[str, Any], case: dict[str, Any]) -> dict[str, Any]:
    """The full state of a case, ordered for ``panel.set``: values that are not controls first (they may
    re-set controls, e.g. a channel choice sets α, β), then the extras, then the controls."""
    state = {**base, **{k: v for k, v in case.items() if not k.startswith("@")}}
    controls = set(panel.controls)
    extras = set(panel.extras)
    order = sorted(state, key=lambda k: (k in controls, k in extras))
    return {k: state[k] for k in order}


_NAN = re.compile(r"\b(nan|inf)\b", re.IGNORECASE)


def _text(value: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", value or "")).strip()


def _non_finite_marks(panel: Any) -> list[str]:
    """Every plotted mark's and scale's numbers must be finite: a list of what is not."""
    import bqplot as bq
    import ipywidgets as w
    import numpy as np

    bad: list[str] = []

    def finite(value: Any) -> bool:
        if value is None:
            return True
        try:
            arr = np.asarray(value, dtype=float)
        except (TypeError, ValueError):          # ragged: lines of different lengths
            return all(finite(v) for v in value)
        return bool(np.all(np.isfinite(arr)))

    seen: set[int] = set()
    figures: list[Any] = []

    def walk(widget: Any) -> None:
        if id(widget) in seen or not isinstance(widget, w.Widget):
            return
        seen.add(id(widget))
        if isinstance(widget, bq.Figure):
            figures.append(widget)
        for child in getattr(widget, "children", ()) or ():
            walk(child)

    walk(panel.widget)
    for fig in figures:
        for m in fig.marks:
            for attr in ("x", "y", "color", "size", "opacity", "rotation"):
                if hasattr(m, attr) and not finite(getattr(m, attr)):
                    bad.append(f"{fig.title!r}: {type(m).__name__}.{attr}")
            if isinstance(m, bq.Image) and not getattr(m.image, "value", b""):
                bad.append(f"{fig.title!r}: empty image")
            for scale in m.scales.values():
                for attr in ("min", "max"):
                    v = getattr(scale, attr, None)
                    if isinstance(v, float) and not math.isfinite(v):
                        bad.append(f"{fig.title!r}: scale.{attr} = {v}")
    readout = getattr(panel, "readout", None)
    if readout is not None and _NAN.search(_text(readout.value)):
        bad.append(f"readout: {_NAN.search(_text(readout.value)).group(0)} in {_text(readout.value)[:200]!r}")
    return bad


def run_case(panel: Any, base: dict[str, Any], case: dict[str, Any]) -> dict[str, Any]:
    """Apply one case through the panel's public controls; say what happened."""
    before = panel.redraw_count
    panel.show_message("")
    if "@preset" in case:
        panel.preset.value = case["@preset"]
    elif "@model" in case:
        from gapscope.kernels import fitting
        panel.model.value = case["@model"]
        start = {p.name: p.default for p in fitting.MODELS[case["@model"]].all_params}
        panel.set(**{**start, **{k: v for k, v in case.items() if not k.startswith("@")}})
    else:
        panel.set(**_state(panel, base, case))
    panel.wait(CASE_SECONDS)
    drawn = panel.redraw_count > before
    message = _text(panel.message.value)
    problems = []
    if "Internal error" in message or "Traceback" in message:
        problems.append("internal error")
    if not drawn and not message:
        problems.append("nothing drawn and no message")
    if _NAN.search(message) and "not finite" not in message:
        problems.append("NaN in the message")
    problems += _non_finite_marks(panel)
    if "@preset" in case:
        panel.preset.value = "—"
    level = re.search(r'class="gs-(error|warning|info)"', panel.message.value or "")
    return {"drawn": drawn, "message": message[:400], "level": level.group(1) if level else "",
            "problems": problems}


def _json_safe(case: dict[str, Any]) -> dict[str, Any]:
    return {k: (v if isinstance(v, int | float | str | bool) or v is None else repr(v)) for k, v in case.items()}


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def worker(mode: str, key: str) -> None:
    """``list``: print the cases of one panel as JSON; ``run``: run the cases read as JSON from stdin,
    one JSON line per event (start, done, timeout, end)."""
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))
    import logging
    logging.disable(logging.CRITICAL)        # the panel logs internal errors; the sweep reports them itself

    def emit(**record: Any) -> None:
        sys.stdout.write(json.dumps(record) + "\n")
        sys.stdout.flush()

    todo = json.loads(sys.stdin.read()) if mode == "run" else None
    panel = PANELS[key].factory()
    panel.wait(CASE_SECONDS)
    if type(panel).__name__ == "FitPanel":
        panel.loader.load_demo(panel.demo.options[1])
        panel.wait(CASE_SECONDS)
    if mode == "list":
        emit(cases=cases(panel))
        return
    base = dict(panel.values)
    for i, case in enumerate(todo):
        emit(start=i, case=case)
        timer = threading.Timer(CASE_SECONDS, lambda i=i: (emit(timeout=i), os._exit(3)))
        timer.daemon = True
        timer.start()
        t0 = time.perf_counter()
        c0 = _cpu()
        try:
            out = run_case(panel, base, case)
        except BaseException as exc:   # the sweep's own view: anything escaping the panel is a failure
            out = {"drawn": False, "message": "", "level": "", "problems": [f"{type(exc).__name__}: {exc}"[:400]]}
        timer.cancel()
        cpu = _cpu() - c0
        if cpu > CASE_CPU_SECONDS:
            out["problems"] = [*out["problems"], f"took {cpu:.1f} s of processor time (limit {CASE_CPU_SECONDS:g} s)"]
        emit(done=i, seconds=round(time.perf_counter() - t0, 3), cpu=round(cpu, 3),
             rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024), **out)
    emit(end=True)


# ============================================================================ the test (parent side)
ENV = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def _worker(mode: str, key: str, stdin: str = "") -> tuple[list[dict[str, Any]], str, Any]:
    cmd = [sys.executable, str(HERE), "worker", mode, key]
    try:
        proc = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=BATCH_SECONDS,
                              env={**os.environ, **ENV})
        out, err, rc = proc.stdout, proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        rc = "batch timeout"
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")], err, rc


def run_cases(key: str, todo: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Run cases of one panel in subprocesses: (records of the cases that ran, the cases that killed or
    stopped their worker).  A worker that dies names the case it was running; the next one resumes after it."""
    done: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    while todo:
        records, err, rc = _worker("run", key, json.dumps(todo))
        running = None
        for r in records:
            if "start" in r:
                running = r
            elif "done" in r:
                done.append({**running, **r})
                running = None
        if any("end" in r for r in records):
            break
        if running is None:      # died outside a case (import, construction): nothing to resume
            failed.append({"case": "(worker)", "why": f"worker exited ({rc}) outside a case: {err[-2000:]}"})
            break
        timeout = any("timeout" in r for r in records)
        tail = err.strip().splitlines()[-1] if err.strip() else "no output"
        failed.append({**running, "why": f"over {CASE_SECONDS:g} s" if timeout else f"worker died ({rc}): {tail}"})
        todo = todo[running["start"] + 1:]
    return done, failed


def sweep(key: str, chunk: int = 0, chunks: int = 1) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The sweep of one panel (every ``chunks``-th case from ``chunk``), refused cases re-run pair by pair."""
    records, err, rc = _worker("list", key)
    if not records:
        return [], [{"case": "(worker)", "why": f"listing the cases failed ({rc}): {err[-2000:]}"}]
    todo = records[0]["cases"][chunk::chunks]
    done, failed = run_cases(key, todo)
    seen = {json.dumps(r["case"], sort_keys=True) for r in done}
    again = [p for r in done if not r["drawn"] and r["level"] == "error" for p in _unpack(r["case"])]
    again = [p for p in again if json.dumps(p, sort_keys=True) not in seen]
    if again:
        more, more_failed = run_cases(key, list({json.dumps(p, sort_keys=True): p for p in again}.values()))
        done += more
        failed += more_failed
    return done, failed


@pytest.mark.sweep
@pytest.mark.slow
@pytest.mark.parametrize("chunk", range(CHUNKS), ids=lambda c: f"{c + 1}of{CHUNKS}")
@pytest.mark.parametrize("key", sorted(PANELS))
def test_every_allowed_input_is_drawn_or_refused_within_memory_and_time(key, chunk):
    t0 = time.perf_counter()
    done, failed = sweep(key, chunk, CHUNKS)
    log = os.environ.get("GAPSCOPE_SWEEP_LOG")          # a folder: every case's record, for reading afterwards
    if log:
        Path(log).mkdir(parents=True, exist_ok=True)
        (Path(log) / f"{key}-{chunk + 1}of{CHUNKS}.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in done + failed), encoding="utf-8")
    failed += [r for r in done if r["problems"]]
    seconds = time.perf_counter() - t0
    slowest = sorted(done, key=lambda r: -r["cpu"])[:3]
    print(f"\n{key} {chunk + 1}/{CHUNKS}: {len(done)} cases in {seconds:.1f} s; slowest: "
          + "; ".join(f"{r['case']} {r['cpu']:.1f} s CPU" for r in slowest))
    assert done, f"{key}: no case ran ({failed})"
    assert not failed, f"{key}: {len(failed)} of {len(done) + len(failed)} cases failed:\n" + "\n".join(
        f"  {r.get('case')}: {r.get('why') or r.get('problems')} — message: {r.get('message', '')[:200]!r}"
        for r in failed[:40])


if __name__ == "__main__" and len(sys.argv) == 4 and sys.argv[1] == "worker":
    worker(sys.argv[2], sys.argv[3])
