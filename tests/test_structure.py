"""The package's shape: every module sits in one layer of the map in helpers/__init__.py and imports only
from its own layer's earlier modules or from layers below; the notebooks are exactly their plain-text sources."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import helpers

ROOT = Path(__file__).resolve().parent.parent
ORDER = [m for layer in helpers.LAYERS.values() for m in layer]


def _imports(path: Path) -> set[str]:
    """helpers modules imported by `path` (relative imports and `helpers.x`), at any depth of the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                found.update([node.module.split(".")[0]] if node.module else [a.name for a in node.names])
            elif node.module and node.module.startswith("helpers."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(a.name.split(".")[1] for a in node.names if a.name.startswith("helpers."))
    return found


def test_every_module_is_on_the_map():
    on_disk = {p.stem for p in (ROOT / "helpers").glob("*.py")}
    assert on_disk == set(ORDER), f"not on the map: {on_disk - set(ORDER)}; gone: {set(ORDER) - on_disk}"


def test_no_module_imports_one_above_it():
    wrong = []
    for module in ORDER:
        for target in _imports(ROOT / "helpers" / f"{module}.py") - {module}:
            if module != "__init__" and ORDER.index(target) > ORDER.index(module):
                wrong.append(f"{module} imports {target}")
    assert not wrong, wrong


def test_the_api_is_flat_and_complete():
    assert dir(helpers) == sorted(helpers.__all__)
    for name in helpers.__all__:
        assert getattr(helpers, name) is not None, name
    clash = sorted(set(helpers.__all__) & set(ORDER))
    assert not clash, f"API names that are also module names (importing the module hides the function): {clash}"


def test_runs_is_the_function_after_training_was_imported(tmp_path):
    """A notebook that has called sft() has imported every engine module; `from helpers import runs` must still
    give the function the README tells learners to call (it once gave the module of the same name)."""
    code = ("import importlib, helpers\n"
            "for m in helpers.LAYERS['engine']: importlib.import_module('helpers.' + m)\n"
            "from helpers import runs\n"
            "print(callable(runs), type(runs(show=False)).__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env={**os.environ, "FTLAB_OUTPUT": str(tmp_path)})
    assert out.stdout.split() == ["True", "list"], out.stderr[-2000:]
    assert "compare_runs" in helpers.__all__ and "compare_exams" in helpers.__all__
    assert "record" not in helpers.__all__  # the papermill parameter of notebook 03 is called `record`


def test_notebooks_are_built_from_their_sources():
    out = subprocess.run([sys.executable, str(ROOT / "tools" / "build_notebooks.py"), "--check"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout
    assert sorted(p.stem for p in (ROOT / "notebooks" / "src").glob("*.py")) == \
        sorted(p.stem for p in (ROOT / "notebooks").glob("*.ipynb"))


def test_notebook_03_uses_only_the_flat_api():
    source = (ROOT / "notebooks" / "src" / "03_fine_tuning_lab.py").read_text(encoding="utf-8")
    assert "from helpers." not in source and "import helpers." not in source
    assert source.count("sys.path.insert") == 1  # the course folder, once; the generator is `from tools import problems`
