"""Per-student memory and CPU limits for JupyterHub's local spawners, enforced with Linux control groups.

JupyterHub's ``LocalProcessSpawner`` only passes ``mem_limit`` and ``cpu_limit`` on to the server as
environment variables; systemdspawner (The Littlest JupyterHub) and KubeSpawner enforce them.  On one
machine without those, this module does what systemdspawner does, with the kernel's control groups: the
hub (running as root) creates one group per student under its own group, writes the limits, and the
student's server joins it before it starts (``preexec_fn``), so the server and every kernel it starts
share one memory limit (the kernel's OOM killer ends a process of that student, not of another) and one
CPU quota (``cpu_limit`` cores, scheduled fairly).

Both layouts are handled: cgroup v2 (``memory.max``, ``cpu.max`` under the unified hierarchy, when its
``memory`` and ``cpu`` controllers are available) and cgroup v1 (``memory.limit_in_bytes``,
``cpu.cfs_quota_us`` in the ``memory`` and ``cpu`` hierarchies).  Where neither is writable (not root, a
read-only cgroupfs) :func:`prepare` says why and the limits are not enforced; the hub logs that.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

CGROUP_FS = Path("/sys/fs/cgroup")
PERIOD_US = 100_000          # CPU quota period (the kernel's default)


def _own_path(controller: str) -> str:
    """This process's group in ``controller``'s v1 hierarchy ("" for v2), from /proc/self/cgroup."""
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, names, path = line.rstrip("\n").split(":", 2)
            if controller in names.split(","):
                return path
    raise LookupError(controller)


def _write(path: Path, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _v2_root() -> Path | None:
    """The unified hierarchy's directory holding this process, if it offers memory and cpu."""
    for base in (CGROUP_FS, CGROUP_FS / "unified"):
        controllers = base / "cgroup.controllers"
        if controllers.exists() and {"memory", "cpu"} <= set(controllers.read_text().split()):
            with open("/proc/self/cgroup") as f:
                own = next((ln.split(":", 2)[2].strip() for ln in f if ln.startswith("0::")), "/")
            return base / own.lstrip("/")
    return None


def prepare(name: str, *, mem_bytes: int | None, cpu: float | None,
            parent: str = "gapscope-hub") -> tuple[list[Path], str]:
    """Create the control group(s) of student ``name`` with the limits written; return (groups, why not).

    ``mem_bytes``: memory limit in bytes (None or 0: none); ``cpu``: cores (None or 0: none).  Returns the
    group directories to join (empty, with the reason, when limits cannot be enforced here).
    """
    if not (mem_bytes or cpu):
        return [], "no limits configured"
    if os.geteuid() != 0:
        return [], "the hub is not root, so it cannot create control groups"
    leaf = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
    try:
        v2 = _v2_root()
        if v2 is not None:
            top = v2 / parent
            top.mkdir(exist_ok=True)
            _write(top / "cgroup.subtree_control", "+memory +cpu")
            group = top / leaf
            group.mkdir(exist_ok=True)
            if mem_bytes:
                _write(group / "memory.max", str(int(mem_bytes)))
                with contextlib.suppress(FileNotFoundError):
                    _write(group / "memory.swap.max", "0")
            if cpu:
                _write(group / "cpu.max", f"{int(cpu * PERIOD_US)} {PERIOD_US}")
            return [group], ""
        groups = []
        if mem_bytes:
            group = CGROUP_FS / "memory" / _own_path("memory").lstrip("/") / parent / leaf
            group.mkdir(parents=True, exist_ok=True)
            _write(group / "memory.limit_in_bytes", str(int(mem_bytes)))
            with contextlib.suppress(FileNotFoundError, OSError):   # memsw exists only with swap accounting
                _write(group / "memory.memsw.limit_in_bytes", str(int(mem_bytes)))
            groups.append(group)
        if cpu:
            group = CGROUP_FS / "cpu" / _own_path("cpu").lstrip("/") / parent / leaf
            group.mkdir(parents=True, exist_ok=True)
            _write(group / "cpu.cfs_period_us", str(PERIOD_US))
            _write(group / "cpu.cfs_quota_us", str(int(cpu * PERIOD_US)))
            groups.append(group)
        return groups, ""
    except (OSError, LookupError) as exc:
        return [], f"control groups are not writable here ({type(exc).__name__}: {exc})"


def join(groups: list[Path]) -> None:
    """Move the calling process into ``groups`` (in a ``preexec_fn``: before the server starts)."""
    pid = str(os.getpid())
    for group in groups:
        _write(group / "cgroup.procs", pid)


def remove(groups: list[Path]) -> None:
    """Remove the groups once their processes have ended (a group still in use stays)."""
    for group in groups:
        with contextlib.suppress(OSError):
            group.rmdir()


def limited(spawner_class: type) -> type:
    """``spawner_class`` whose servers run inside their student's control group with the spawner's
    ``mem_limit`` and ``cpu_limit`` enforced (logged once per spawn when that is not possible here)."""

    class Limited(spawner_class):  # type: ignore[misc,valid-type]
        _groups: list[Path] = []

        def make_preexec_fn(self, name):
            inner = super().make_preexec_fn(name)
            groups, why = prepare(name, mem_bytes=self.mem_limit, cpu=self.cpu_limit)
            self._groups = groups
            if groups:
                self.log.info("limits for %s enforced by control groups: memory %s bytes, %s CPU (%s)",
                              name, self.mem_limit, self.cpu_limit, ", ".join(map(str, groups)))
            else:
                self.log.warning("limits for %s NOT enforced: %s", name, why)

            def preexec() -> None:
                join(groups)
                if inner is not None:
                    inner()
            return preexec

        async def stop(self, now=False):
            try:
                return await super().stop(now=now)
            finally:
                remove(self._groups)

    Limited.__name__ = Limited.__qualname__ = f"Limited{spawner_class.__name__}"
    return Limited
