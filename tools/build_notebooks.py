"""Every notebook is written as plain text: notebooks/src/NAME.py (jupytext's percent format), so a diff of a
notebook reads like a diff of code. This writes notebooks/NAME.ipynb from its source and keeps the stored
outputs of every cell whose source did not change (jupytext matches the cells).

    .venv/bin/python tools/build_notebooks.py           # after editing a source
    .venv/bin/python tools/build_notebooks.py --check   # exit 1 if a notebook's cells differ from its source

A changed code cell loses its stored output: run the notebook again (01, 02: a minute each with
`jupyter nbconvert --execute --inplace`; 03: `tools/record_lab_run.py`, the real cpu-track run).
"""

from __future__ import annotations

import sys
from pathlib import Path

import jupytext
from jupytext.combine import combine_inputs_with_outputs

ROOT = Path(__file__).resolve().parent.parent
SOURCES = ROOT / "notebooks" / "src"


def notebook_of(source: Path) -> Path:
    return ROOT / "notebooks" / f"{source.stem}.ipynb"


def cells(nb) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source) for c in nb.cells]


def build(source: Path) -> bool:
    """Write the notebook of `source`; True when its cells changed."""
    target = notebook_of(source)
    nb = jupytext.read(source)
    if target.is_file():
        stored = jupytext.read(target)
        if cells(stored) == cells(nb):
            return False
        nb = combine_inputs_with_outputs(nb, stored)
    nb.metadata.pop("jupytext", None)
    jupytext.write(nb, target)
    return True


def stale() -> list[str]:
    """The notebooks whose cells are not exactly their source's."""
    return [notebook_of(s).name for s in sorted(SOURCES.glob("*.py"))
            if not notebook_of(s).is_file() or cells(jupytext.read(notebook_of(s))) != cells(jupytext.read(s))]


def main(argv: list[str]) -> int:
    if "--check" in argv:
        bad = stale()
        for name in bad:
            print(f"notebooks/{name} differs from notebooks/src/: run python tools/build_notebooks.py")
        return 1 if bad else 0
    for source in sorted(SOURCES.glob("*.py")):
        print(f"{notebook_of(source).name}: {'rebuilt' if build(source) else 'up to date'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
