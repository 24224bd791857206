"""The course's Jupyter kernel: registered by set-up, named by every notebook, checked by every first cell.

A JupyterLab the course did not start (PAI DSW's own, a laptop's, VS Code) picks a notebook's kernel by the name
in its metadata. Set-up registers one kernel, "ftlab" ("Fine-Tuning Lab (.venv)"), at user level, so any Jupyter
of this user finds it. Its launcher runs the `.venv` of the course folder that holds the notebook (Jupyter starts
a kernel in the notebook's folder): two copies of the course on one machine each run their own `.venv`, whichever
registered last. Only a notebook in a copy without a `.venv` of its own gets the last-registered copy's, and its
first cell says so.

The first cell of each notebook calls `check_kernel()` before importing anything heavy. On a kernel that is not a
course environment (no set-up stamp) or whose ms-swift, transformers or peft is missing or not the pinned version,
it stops with one sentence that names the kernel to pick, and the command that registers it when it is missing.

Only the standard library here: this module runs first, on whatever Python a foreign Jupyter gave the notebook.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
from pathlib import Path

from .paths import COURSE_ROOT

KERNEL_NAME = "ftlab"
DISPLAY_NAME = "Fine-Tuning Lab (.venv)"
PINNED = ("ms-swift", "transformers", "peft")  # what the lab cannot run without, at the versions it was tested with
STAMP = ".ftlab-stamp"  # tools/setup_env.sh writes it into the .venv it made
LAUNCHER = "launch.sh"

# The kernel's launcher: the notebook's own course folder's .venv, found upwards from the working folder, else the
# .venv of the copy that registered the kernel (filled in below).
_LAUNCH_SH = """#!/bin/sh
# The Fine-Tuning Lab kernel, written by `make setup` ({written_by}). Jupyter starts a kernel in the notebook's
# folder: run the .venv of the course folder above it, or else the one that registered this kernel.
d=$(pwd)
while [ -n "$d" ] && [ "$d" != / ]; do
  if [ -f "$d/helpers/kernel.py" ] && [ -x "$d/.venv/bin/python" ]; then
    exec "$d/.venv/bin/python" -m ipykernel_launcher "$@"
  fi
  d=$(dirname "$d")
done
exec {fallback} -m ipykernel_launcher "$@"
"""


class WrongKernel(Exception):
    """Raised by the first cell on a foreign kernel. Jupyter shows only its sentence: no traceback to read past."""

    def _render_traceback_(self):  # IPython's hook for an exception's own rendering
        return [f"\033[1;31m{self}\033[0m"]


def user_kernels_dir() -> Path:
    """Where a user-level kernel spec lives (`jupyter --data-dir`/kernels; JUPYTER_DATA_DIR moves it)."""
    try:
        from jupyter_core.paths import jupyter_data_dir
    except ImportError:  # a Python without Jupyter: jupyter_core's defaults
        if os.environ.get("JUPYTER_DATA_DIR"):
            return Path(os.environ["JUPYTER_DATA_DIR"]) / "kernels"
        if sys.platform == "darwin":
            return Path.home() / "Library" / "Jupyter" / "kernels"
        base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        return Path(base) / "jupyter" / "kernels"
    return Path(jupyter_data_dir()) / "kernels"


def find_spec(name: str = KERNEL_NAME) -> Path | None:
    """The folder of the kernel spec `name` that this Python's Jupyter would find, or None."""
    try:
        from jupyter_core.paths import jupyter_path
        dirs = [Path(p) for p in jupyter_path("kernels")]
    except ImportError:
        dirs = [user_kernels_dir()]
    for d in dirs:
        if (d / name / "kernel.json").is_file():
            return d / name
    return None


def spec_files(course: Path = COURSE_ROOT) -> dict[str, str]:
    """The kernel spec's files for `course` (its .venv is the fallback): name -> text."""
    venv_python = course / ".venv" / "bin" / "python"
    launcher = user_kernels_dir() / KERNEL_NAME / LAUNCHER
    spec = {"argv": ["/bin/sh", str(launcher), "-f", "{connection_file}"], "display_name": DISPLAY_NAME,
            "language": "python", "interrupt_mode": "signal", "metadata": {"ftlab_course": str(course)}}
    return {"kernel.json": json.dumps(spec, indent=1) + "\n",
            LAUNCHER: _LAUNCH_SH.format(written_by=course, fallback=shlex.quote(str(venv_python)))}


def registered_course(spec_dir: Path | None = None) -> Path | None:
    """The course folder that registered the kernel last (its .venv is the fallback), or None."""
    spec_dir = spec_dir or find_spec()
    if spec_dir is None:
        return None
    try:
        course = json.loads((spec_dir / "kernel.json").read_text())["metadata"]["ftlab_course"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return Path(course)


def register(course: Path = COURSE_ROOT) -> str:
    """Register (or refresh) the user-level kernel; returns one line saying what happened and where."""
    target = user_kernels_dir() / KERNEL_NAME
    files = spec_files(course)
    before = registered_course(target) if (target / "kernel.json").is_file() else None
    same = all((target / f).is_file() and (target / f).read_text() == text for f, text in files.items())
    if not same:
        target.mkdir(parents=True, exist_ok=True)
        for f, text in files.items():
            tmp = target / f".{f}.tmp"
            tmp.write_text(text)
            tmp.replace(target / f)  # never a half-written spec under the real name
        (target / LAUNCHER).chmod(0o755)
    where = f"Jupyter kernel \"{DISPLAY_NAME}\" ({KERNEL_NAME}) {'already registered' if same else 'registered'} in {target}"
    if before is not None and before != course:
        where += (f"; it used to fall back on {before}/.venv, now on this folder's (each course folder's notebooks "
                  "still run their own .venv)")
    return where + "."


def unregister() -> bool:
    """Remove the user-level kernel (the maintainers' undo); True when there was one."""
    target = user_kernels_dir() / KERNEL_NAME
    if not (target / "kernel.json").is_file():
        return False
    for f in target.iterdir():
        f.unlink()
    target.rmdir()
    return True


def pinned_versions(course: Path = COURSE_ROOT) -> dict[str, str]:
    """PINNED's versions as requirements.txt pins them (name==version lines)."""
    wanted = {}
    try:
        lines = (course / "requirements.txt").read_text().splitlines()
    except OSError:
        return wanted
    for line in lines:
        spec = line.split("#")[0].split(";")[0].strip()
        name, sep, version = spec.partition("==")
        if sep and name.strip().lower() in PINNED:
            wanted[name.strip().lower()] = version.strip()
    return wanted


def version_problems(course: Path = COURSE_ROOT) -> list[str]:
    """What this Python lacks of the pinned packages: 'no ms-swift', 'transformers 4.46.0 (the course needs 5.19.0)'."""
    from importlib.metadata import PackageNotFoundError, version

    problems = []
    for name, want in pinned_versions(course).items():
        try:
            have = version(name)
        except PackageNotFoundError:
            problems.append(f"no {name}")
            continue
        if have != want:
            problems.append(f"{name} {have} (the course needs {want})")
    return problems


def _is_course_env(prefix: Path) -> bool:
    return (prefix / STAMP).is_file()


def wrong_kernel_sentence(course: Path = COURSE_ROOT) -> str | None:
    """The one sentence that stops the first cell, or None on the course's environment."""
    prefix = Path(sys.prefix)
    here = f"Python {sys.version_info.major}.{sys.version_info.minor} at {sys.executable}"
    if _is_course_env(prefix):
        problems = version_problems(course)
        if not problems:
            return None
        return (f"This kernel's environment ({prefix}) has {', '.join(problems)}: run `make setup` in a terminal in "
                f"the course folder ({course}), then Kernel → Restart Kernel.")
    fix = f"pick Kernel → Change Kernel… → \"{DISPLAY_NAME}\""
    if find_spec() is None:
        fix += f", after registering it with `make setup` in a terminal in the course folder ({course})"
    return f"This notebook is running on {here}, not on the course's environment: {fix}."


def check_kernel(course: Path = COURSE_ROOT) -> None:
    """The first cell's check: stop with one sentence on a foreign kernel; a note when the .venv is another copy's."""
    sentence = wrong_kernel_sentence(course)
    if sentence:
        raise WrongKernel(sentence)
    own = course / ".venv"
    if own.exists() and own.resolve() == Path(sys.prefix).resolve():
        return
    print(f"Note: this kernel runs the course environment {sys.prefix}, because this course folder ({course}) has "
          "no .venv of its own; `make setup` here gives it one.")
