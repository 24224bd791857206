"""The course's Jupyter kernel (helpers/kernel.py): set-up registers it, the notebooks name it, its launcher runs
each course folder's own .venv, and the first cell stops a foreign kernel with one sentence."""

import json
import os
import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import jupytext
import pytest
from conftest import ROOT

from helpers import kernel

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """A private Jupyter data folder: nothing here touches the user's registered kernels."""
    d = tmp_path / "jupyter data"
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(d))
    return d


def _fake_course(parent: Path, name: str) -> Path:
    """A course folder whose .venv/bin/python only says which course it is and what it was asked to run."""
    course = parent / name
    (course / "helpers").mkdir(parents=True)
    (course / "helpers" / "kernel.py").write_text("")
    (course / "notebooks").mkdir()
    python = course / ".venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f"#!/bin/sh\necho {name!r} \"$@\"\n")
    python.chmod(0o755)
    return course


def _launch(spec_dir: Path, cwd: Path) -> str:
    spec = json.loads((spec_dir / "kernel.json").read_text())
    argv = [a.replace("{connection_file}", "conn.json") for a in spec["argv"]]
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=10, check=True).stdout.strip()


def test_setup_registered_the_kernel_for_this_course():
    """`make setup` ran before the suite (tools/run_tests.sh): the user-level kernel exists and falls back on
    this folder's .venv."""
    spec_dir = kernel.find_spec()
    assert spec_dir is not None, "make setup did not register the course's kernel"
    spec = json.loads((spec_dir / "kernel.json").read_text())
    assert spec["display_name"] == "Fine-Tuning Lab (.venv)"
    assert kernel.registered_course(spec_dir) == ROOT
    assert "/bin/python\" -m helpers kernel" in (ROOT / "tools" / "setup_env.sh").read_text()


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_every_notebook_names_the_course_kernel_and_checks_it_first(nb):
    book = jupytext.read(nb)
    assert book.metadata["kernelspec"] == {"name": "ftlab", "display_name": "Fine-Tuning Lab (.venv)",
                                           "language": "python"}
    first = next(c for c in book.cells if c.cell_type == "code")
    assert "check_kernel()" in first.source
    # nothing heavy is imported before the check: only the standard library's sys and pathlib
    before = first.source.split("check_kernel()")[0]
    imported = {line.split()[1].split(".")[0] for line in before.splitlines() if line.startswith(("import ", "from "))}
    assert imported <= {"sys", "pathlib", "helpers"}, imported


def test_register_is_idempotent_and_says_where(data_dir):
    first = kernel.register(ROOT)
    assert first == f'Jupyter kernel "Fine-Tuning Lab (.venv)" (ftlab) registered in {data_dir / "kernels" / "ftlab"}.'
    assert kernel.register(ROOT) == first.replace(") registered", ") already registered")
    assert kernel.find_spec() == data_dir / "kernels" / "ftlab"
    assert sorted(p.name for p in (data_dir / "kernels" / "ftlab").iterdir()) == ["kernel.json", "launch.sh"]
    assert kernel.unregister() and kernel.find_spec() is None and not kernel.unregister()


def test_two_copies_each_run_their_own_venv(data_dir, tmp_path):
    """Copy A registers, then copy B: each copy's notebooks still start on its own .venv; a notebook in a
    folder without one falls back on the copy that registered last, and register() says it changed."""
    a = _fake_course(tmp_path, "copy A & co")
    b = _fake_course(tmp_path / "other place", "copy B")
    kernel.register(a)
    said = kernel.register(b)
    assert f"it used to fall back on {a}/.venv, now on this folder's" in said
    spec_dir = data_dir / "kernels" / "ftlab"
    assert _launch(spec_dir, a / "notebooks") == "copy A & co -m ipykernel_launcher -f conn.json"
    assert _launch(spec_dir, b / "notebooks") == "copy B -m ipykernel_launcher -f conn.json"
    elsewhere = tmp_path / "a notebook outside any course"
    elsewhere.mkdir()
    assert _launch(spec_dir, elsewhere) == "copy B -m ipykernel_launcher -f conn.json"
    shutil.rmtree(b / ".venv")  # copy B without its own .venv: falls back on A's, and its first cell says so (below)
    kernel.register(a)
    assert _launch(spec_dir, b / "notebooks") == "copy A & co -m ipykernel_launcher -f conn.json"


def test_the_course_env_passes_silently():
    assert kernel.wrong_kernel_sentence(ROOT) is None
    assert kernel.version_problems(ROOT) == []
    assert set(kernel.pinned_versions(ROOT)) == {"ms-swift", "transformers", "peft"}


def test_a_course_env_with_other_versions_is_named(tmp_path):
    course = tmp_path / "course"
    course.mkdir()
    (course / "requirements.txt").write_text("ms-swift==4.6.0\ntransformers==4.46.0  # older\npeft==0.20.0\n")
    have = version("transformers")
    assert kernel.version_problems(course) == [f"transformers {have} (the course needs 4.46.0)"]
    sentence = kernel.wrong_kernel_sentence(course)
    assert sentence == (f"This kernel's environment ({sys.prefix}) has transformers {have} "
                        f"(the course needs 4.46.0): run `make setup` in a terminal in the course folder "
                             f"({course}), then Kernel → Restart Kernel.")


def _foreign_python() -> str:
    """An interpreter that is not the course's .venv (the base Python it was made from)."""
    base = Path(sys._base_executable)
    assert not (Path(base.resolve()).parent.parent / kernel.STAMP).is_file()
    return str(base)


CHECK_IN_FOREIGN = """
import sys
sys.path.insert(0, sys.argv[1])
from helpers.kernel import WrongKernel, check_kernel
try:
    check_kernel()
except WrongKernel as e:
    print("STOP", e._render_traceback_()[0])
else:
    print("PASSED")
"""


@pytest.mark.parametrize("registered", [True, False], ids=["kernel registered", "kernel not registered"])
def test_a_foreign_python_is_stopped_with_one_sentence(data_dir, registered):
    if registered:
        kernel.register(ROOT)
    env = {**os.environ, "JUPYTER_DATA_DIR": str(data_dir), "PYTHONNOUSERSITE": "1"}
    out = subprocess.run([_foreign_python(), "-c", CHECK_IN_FOREIGN, str(ROOT)], capture_output=True, text=True,
                         env=env, timeout=60, check=True).stdout.strip()
    assert out.startswith("STOP \033[1;31mThis notebook is running on Python 3.")
    sentence = out.removeprefix("STOP \033[1;31m").removesuffix("\033[0m")
    assert "not on the course's environment: pick Kernel → Change Kernel… → \"Fine-Tuning Lab (.venv)\"" in sentence
    registering = f", after registering it with `make setup` in a terminal in the course folder ({ROOT})"
    assert sentence.endswith((registering + ".") if not registered else '"Fine-Tuning Lab (.venv)".')
    assert sentence.count(". ") == 0, "one sentence"


def test_the_stop_shows_no_traceback_in_ipython():
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    shell = InteractiveShell.instance()
    with capture_output() as out:
        result = shell.run_cell("from helpers.kernel import WrongKernel\nraise WrongKernel('Pick the course kernel.')")
    assert isinstance(result.error_in_exec, kernel.WrongKernel)
    text = out.stdout + out.stderr
    assert "Pick the course kernel." in text and "Traceback" not in text and "WrongKernel" not in text


def test_a_copy_without_its_own_venv_says_whose_it_runs(tmp_path, capsys):
    course = tmp_path / "copy"
    course.mkdir()
    shutil.copy(ROOT / "requirements.txt", course / "requirements.txt")
    kernel.check_kernel(course)
    said = capsys.readouterr().out
    assert said == (f"Note: this kernel runs the course environment {sys.prefix}, because this course folder "
                    f"({course}) has no .venv of its own; `make setup` here gives it one.\n")
    kernel.check_kernel(ROOT)
    assert capsys.readouterr().out == ""
