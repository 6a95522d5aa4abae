"""The one folder a browser user's paths may point into, for reading and for writing.

A dashboard shared by a class is reachable by anyone who can open its page, so every path
typed into it is untrusted.  :class:`DataRoot` confines them: a path is taken relative to
the data folder; absolute paths, ``..`` components, NUL bytes, and anything that resolves
outside the folder (symlinks included) are refused with one message that says nothing about
what exists elsewhere; files larger than a stated limit are refused before they are read.

The folder is ``$GAPSCOPE_DATA_ROOT`` (``make dashboards`` sets it to the project's ``data/``
folder), else ``~/gapscope-data``.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePath

__all__ = ["DataRoot", "PathRefused", "ENV", "MAX_BYTES", "uploaded_files"]

#: environment variable naming the data folder
ENV = "GAPSCOPE_DATA_ROOT"
#: largest file read or accepted as an upload (bytes)
MAX_BYTES = 200 * 2 ** 20


def uploaded_files(value: object) -> list[tuple[str, memoryview | bytes]]:
    """(name, content) of each file in a ``FileUpload`` value (a tuple of dicts in ipywidgets 8, a dict of
    dicts or objects in older versions)."""
    if not value:
        return []
    items = value if isinstance(value, (list, tuple)) else list(value.values())  # type: ignore[attr-defined]
    return [(f["name"], f["content"]) if isinstance(f, dict) else (f.name, f.content) for f in items]


class PathRefused(ValueError):
    """A path outside the data folder, or not a readable file in it; the message leaks nothing."""


class DataRoot:
    """The data folder: ``resolve_read``, ``read_bytes`` and ``resolve_write`` confine paths to it.

    Parameters
    ----------
    root : path, optional
        The folder (default ``$GAPSCOPE_DATA_ROOT`` or ``~/gapscope-data``); created if missing.
    max_bytes : int
        Largest file that is read (also the stated upload limit).
    """

    def __init__(self, root: str | os.PathLike | None = None, *, max_bytes: int = MAX_BYTES) -> None:
        raw = root if root is not None else os.environ.get(ENV) or Path.home() / "gapscope-data"
        self.root = Path(raw).expanduser().resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_bytes = int(max_bytes)

    @property
    def limit_text(self) -> str:
        return f"{self.max_bytes / 2 ** 20:.0f} MiB"

    def _relative(self, text: str) -> PurePath:
        text = (text or "").strip()
        if not text:
            raise PathRefused("Type the name of a file in the data folder.")
        if "\0" in text:
            raise PathRefused("That is not a file name.")
        rel = PurePath(text)
        if rel.is_absolute() or text.startswith("~") or ".." in rel.parts:
            raise PathRefused("Only files inside the data folder can be opened: give a name relative to it, "
                              "without '..'.")
        return rel

    def _inside(self, p: Path) -> bool:
        return p == self.root or self.root in p.parents

    def resolve_read(self, text: str) -> Path:
        """The file ``text`` names inside the data folder; :class:`PathRefused` otherwise."""
        rel = self._relative(text)
        target = (self.root / rel).resolve()
        if not self._inside(target) or not target.is_file():
            raise PathRefused(f"{rel.as_posix()}: no such file in the data folder.")
        return target

    def read_bytes(self, text: str) -> tuple[str, bytes]:
        """(name relative to the folder, content) of a file inside it, within the size limit."""
        target = self.resolve_read(text)
        size = target.stat().st_size
        rel = target.relative_to(self.root).as_posix()
        if size > self.max_bytes:
            raise PathRefused(f"{rel}: {size / 2 ** 20:.1f} MiB is more than the {self.limit_text} limit.")
        try:
            with open(target, "rb") as fh:
                return rel, fh.read(self.max_bytes + 1)
        except OSError:
            raise PathRefused(f"{rel}: cannot be read.") from None

    def resolve_write(self, text: str, *, suffix: str) -> Path:
        """Where a file named ``text`` (with ``suffix``) may be written inside the data folder."""
        rel = self._relative(text)
        if rel.suffix != suffix:
            rel = rel.with_name(rel.name + suffix)
        parent = (self.root / rel.parent).resolve()
        target = parent / rel.name
        if not self._inside(parent) or not parent.is_dir():
            raise PathRefused(f"{rel.as_posix()}: the folder does not exist in the data folder.")
        if target.is_symlink() or (target.exists() and not target.is_file()):
            raise PathRefused(f"{rel.as_posix()}: cannot be written.")
        return target

    def check_upload(self, name: str, size: int) -> None:
        """Refuse an upload over the size limit (the limit is stated in the panel)."""
        if size > self.max_bytes:
            raise PathRefused(f"{name}: {size / 2 ** 20:.1f} MiB is more than the {self.limit_text} upload limit.")
