"""Regenerate the README's generated tables (panel parameters, fit models) from the specs.

Run ``.venv/bin/python docs/update_readme.py``; ``tests/test_architecture.py`` fails while a
table is stale.  Each table sits between ``<!-- table:NAME -->`` and ``<!-- /table -->``.
"""

from __future__ import annotations

import re
from pathlib import Path

from gapscope.kernels import fitting
from gapscope.widgets import PANELS, markdown_table

README = Path(__file__).resolve().parents[1] / "README.md"


def tables() -> dict[str, str]:
    out = {key: markdown_table(e.factory.PARAMS) for key, e in PANELS.items() if e.factory.PARAMS}
    out["fit-models"] = fitting.models_table()
    return out


def main() -> None:
    text = README.read_text(encoding="utf-8")
    for name, table in tables().items():
        pattern = re.compile(rf"(<!-- table:{re.escape(name)} -->\n).*?(<!-- /table -->)", re.S)
        if not pattern.search(text):
            raise SystemExit(f"README.md has no <!-- table:{name} --> … <!-- /table --> block")
        text = pattern.sub(lambda m, t=table: m.group(1) + t + "\n" + m.group(2), text)
    README.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
