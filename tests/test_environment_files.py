"""The set-up files agree with each other and with the README."""

import re

from conftest import ROOT


def _pins(lines):
    return sorted(ln.split("#")[0].strip() for ln in lines if ln.split("#")[0].strip())


def _pins_for_311(lines):
    """requirements.txt's pins as pip reads them on Python 3.11 (environment.yml's Python)."""
    from packaging.markers import Marker

    out = []
    for pin in _pins(lines):
        req, _, marker = pin.partition(";")
        if not marker or Marker(marker).evaluate({"python_version": "3.11", "python_full_version": "3.11.0"}):
            out.append(req.strip())
    return sorted(out)


def test_conda_env_mirrors_pip_requirements():
    req = _pins_for_311((ROOT / "requirements.txt").read_text().splitlines())
    env = (ROOT / "environment.yml").read_text().splitlines()
    start = env.index("  - pip:")
    conda_pip = _pins(ln.strip()[2:] for ln in env[start + 1:] if ln.strip().startswith("- "))
    assert req == conda_pip, "environment.yml and requirements.txt drifted: make them list the same pins"


def test_every_requirement_is_pinned_and_torch_is_not_listed():
    for pin in _pins((ROOT / "requirements.txt").read_text().splitlines()):
        assert re.fullmatch(r"[A-Za-z0-9_.\[\]-]+==[\w.]+(; python_version [<>]=? \"3\.\d+\")?", pin), pin
        assert not pin.startswith("torch=="), "torch is installed by tools/setup_env.sh (keeps a CUDA build)"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"^make test\b", readme, re.M)
    ci = [ln for ln in (ROOT / ".ci" / "run").read_text().splitlines() if ln and not ln.startswith("#")]
    assert "make test" in ci


def test_heavy_outputs_are_ignored():
    ignored = (ROOT / ".gitignore").read_text().split()
    for entry in (".venv/", ".cache/", "output/", "model/", "*.safetensors"):
        assert entry in ignored
