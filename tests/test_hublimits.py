"""serve/hublimits.py: a student's processes inside their control group get the memory limit and CPU quota.

Real control groups, real processes: a child that allocates past the memory limit is killed by the
kernel's OOM killer (the same child without the group completes), and a busy child under a quarter-core
quota gets about a quarter of a core.  Needs root and a writable cgroupfs, which is where the hub enforces
limits at all; elsewhere the module must say why it cannot (tested too).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("gapscope_hublimits_test", ROOT / "serve" / "hublimits.py")
hublimits = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hublimits)

ALLOCATE = "import sys; b = bytearray(int(sys.argv[1]) * 2**20); b[::4096] = b'x' * len(b[::4096]); print('ok')"
BUSY = ("import time; t = time.monotonic()\nwhile time.monotonic() - t < 2.0: pass\n"
        "print(time.process_time())")


@pytest.fixture
def groups():
    made: list[list[Path]] = []

    def make(**limits):
        gs, why = hublimits.prepare(f"test-{uuid.uuid4().hex[:8]}", parent="gapscope-test", **limits)
        if not gs:
            pytest.skip(f"control groups cannot be enforced on this machine: {why}")
        made.append(gs)
        return gs
    yield make
    for gs in made:
        hublimits.remove(gs)
        assert not any(g.exists() for g in gs), "an empty student group must be removed"


def _run(code: str, arg: str, gs: list[Path] | None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code, arg], capture_output=True, text=True, timeout=60,
                          preexec_fn=(lambda: hublimits.join(gs)) if gs else None)


def test_a_student_past_the_memory_limit_is_killed_and_without_the_group_the_same_work_completes(groups):
    gs = groups(mem_bytes=96 * 2**20, cpu=None)
    free = _run(ALLOCATE, "256", None)
    assert free.returncode == 0 and free.stdout.strip() == "ok", free.stderr
    limited = _run(ALLOCATE, "256", gs)
    assert limited.returncode == -9, (limited.returncode, limited.stderr)      # SIGKILL from the OOM killer
    assert _run(ALLOCATE, "16", gs).returncode == 0                          # within the limit it runs


def test_a_busy_student_gets_the_cpu_quota_not_the_machine(groups):
    gs = groups(mem_bytes=None, cpu=0.25)
    out = _run(BUSY, "", gs)
    assert out.returncode == 0, out.stderr
    cpu_seconds = float(out.stdout)
    assert cpu_seconds < 0.25 * 2.0 * 1.4, cpu_seconds           # 2 s of wall time at a quarter core


def test_without_root_the_limits_are_refused_with_the_reason(monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    groups, why = hublimits.prepare("alice", mem_bytes=2**30, cpu=1.0)
    assert groups == [] and "not root" in why
    assert hublimits.prepare("alice", mem_bytes=0, cpu=0) == ([], "no limits configured")
