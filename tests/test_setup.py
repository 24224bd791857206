"""Set-up where learners are: every lock set-up can choose resolves with wheels for Python 3.10-3.13 on Linux
x86_64 and macOS arm64; an unsupported Python, Windows or a full disk is refused in seconds with the fix named;
set-up needs no GNU-only tool.

The resolution test asks PyPI (pip --dry-run reads each wheel's metadata, downloads nothing large) with the
real interpreters this machine has (`pyenv versions`: 3.10.13, 3.11.7, 3.12.1, 3.13.0); one that is missing is
skipped with its name.
"""

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import ROOT

spec = importlib.util.spec_from_file_location("ftlab_preflight", ROOT / "tools" / "preflight.py")
preflight = importlib.util.module_from_spec(spec)
spec.loader.exec_module(preflight)

VERSIONS = ["3.10", "3.11", "3.12", "3.13"]
MAC = "macosx_14_0_arm64"  # Apple silicon on macOS 14; pip also accepts older macOS wheels for it
# The one requirement PyPI has only as source: pure Python, so pip builds it in seconds anywhere.
PURE_PYTHON_SDISTS = {"rouge-score"}


def interpreter(version: str) -> str | None:
    """A real Python `version` on this machine: pyenv's, else one on PATH; None when there is none."""
    try:
        out = subprocess.run(["pyenv", "versions", "--bare"], capture_output=True, text=True, timeout=20)
        for v in sorted(out.stdout.split(), reverse=True):
            if v.startswith(version + "."):
                prefix = subprocess.run(["pyenv", "prefix", v], capture_output=True, text=True).stdout.strip()
                if os.access(f"{prefix}/bin/python", os.X_OK):
                    return f"{prefix}/bin/python"
    except (OSError, subprocess.TimeoutExpired):
        pass
    return shutil.which(f"python{version}")


# (name, Python version, platform or None for this machine's Linux x86_64, the torch set-up would install)
LOCKS = ([(f"linux-py{v}-cpu-torch", v, None, preflight.CPU_TORCH) for v in VERSIONS]
         + [(f"linux-py{v}-cuda12-torch", v, None, preflight.CUDA12_TORCH) for v in VERSIONS]
         + [(f"macos-arm64-py{v}", v, MAC, preflight.CPU_TORCH) for v in VERSIONS])


def resolve(version: str, platform: str | None, torch: str, work: Path) -> dict:
    """pip's dry-run report for requirements.txt + torch on that Python (markers evaluated by it) and platform."""
    python = interpreter(version)
    if python is None:
        return {"skip": f"no Python {version} on this machine (pyenv or python{version} on PATH)"}
    report = work / f"{version}-{platform}-{torch}.json"
    cmd = [python, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--no-deps", "--quiet",
           "--only-binary=:all:", *[f"--no-binary={p}" for p in PURE_PYTHON_SDISTS],
           "-r", str(ROOT / "requirements.txt"), f"torch=={torch}", "--report", str(report)]
    if platform:
        cmd += ["--platform", platform, "--python-version", version, "--target", str(work / "target")]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "PIP_NO_INPUT": "1"})
    errors = [ln for ln in out.stderr.splitlines() if ln.startswith("ERROR")]
    if out.returncode or not report.is_file():
        return {"error": "\n".join(errors) or out.stderr[-2000:]}
    return {"install": json.loads(report.read_text())["install"]}


@pytest.fixture(scope="module")
def resolutions(tmp_path_factory):
    work = tmp_path_factory.mktemp("locks")
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {name: pool.submit(resolve, v, plat, torch, work) for name, v, plat, torch in LOCKS}
    return {name: f.result() for name, f in futures.items()}


@pytest.mark.parametrize("name", [lock[0] for lock in LOCKS])
def test_every_lock_resolves_with_wheels(resolutions, name):
    result = resolutions[name]
    if "skip" in result:
        pytest.skip(result["skip"])
    assert "error" not in result, f"{name}: pip cannot install requirements.txt there:\n{result['error']}"
    items = {i["metadata"]["name"].lower().replace("_", "-"): i for i in result["install"]}
    wanted = [ln.split("==")[0].strip().lower() for ln in (ROOT / "requirements.txt").read_text().splitlines()
              if ln.strip() and not ln.startswith("#")]
    assert set(wanted) | {"torch"} <= set(items), f"{name}: not resolved: {set(wanted) - set(items)}"
    sources = {n: i["download_info"]["url"] for n, i in items.items() if not i["download_info"]["url"].endswith(".whl")}
    assert set(sources) <= PURE_PYTHON_SDISTS, f"{name}: would build from source: {sources}"
    version = next(lock[1] for lock in LOCKS if lock[0] == name)
    if version == "3.10":  # the lesson's DSW image: the pins that differ there
        assert items["numpy"]["metadata"]["version"] == "2.2.6"


def _copy_setup(dest: Path) -> Path:
    """The files set-up reads, in a folder of their own (a refusal must leave nothing there)."""
    (dest / "tools").mkdir(parents=True)
    for name in preflight.STAMP_FILES:
        shutil.copy(ROOT / name, dest / name)
    return dest


def test_python_39_is_refused_in_seconds_with_the_fix(tmp_path):
    python = interpreter("3.9")
    if python is None:
        pytest.skip("no Python 3.9 on this machine to refuse")
    course = _copy_setup(tmp_path / "course")
    t0 = time.time()
    out = subprocess.run(["bash", "tools/setup_env.sh"], cwd=course, capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHON": python})
    seconds = time.time() - t0
    assert out.returncode == 2, out.stderr
    assert "Python 3.9 is too old" in out.stderr and "PYTHON=python3.12 make lab" in out.stderr
    assert seconds < 10, seconds
    assert sorted(p.name for p in course.iterdir()) == ["requirements.txt", "tools"]  # nothing half-installed


def test_a_missing_interpreter_is_named(tmp_path):
    course = _copy_setup(tmp_path / "course")
    out = subprocess.run(["bash", "tools/setup_env.sh"], cwd=course, capture_output=True, text=True, timeout=30,
                         env={**os.environ, "PYTHON": "python3.99"})
    assert out.returncode == 2 and "no 'python3.99'" in out.stderr and "PYTHON=python3.12 make lab" in out.stderr


def test_unsupported_places_get_one_sentence_with_the_fix():
    assert "wsl --install" in preflight.check_platform("Windows")
    assert "WSL" in preflight.check_platform("MINGW64_NT-10.0-19045")
    assert preflight.check_platform("Linux") is None and preflight.check_platform("Darwin") is None
    assert "too old" in preflight.check_python((3, 9)) and "PYTHON=python3.12 make lab" in preflight.check_python((3, 9))
    assert "newer" in preflight.check_python((3, 14))
    assert all(preflight.check_python((3, m)) is None for m in (10, 11, 12, 13))
    low = preflight.check_disk(2.5, "cpu")
    assert "2.5 GiB" in low and "about 6 GiB" in low and "Fix:" in low
    assert preflight.check_disk(3.5, "keep") is None


def test_torch_plan_keeps_a_new_cuda_torch_and_replaces_an_old_one_in_the_venv_only():
    keep = preflight.torch_plan(("2.10.0+cu128", "12.8"))  # today's DSW image
    assert (keep["action"], keep["pin"], keep["system_site"]) == ("keep", "2.10.0", 1)
    old = preflight.torch_plan(("2.4.0+cu124", "12.4"))  # the lesson's DSW image
    assert (old["action"], old["pin"], old["system_site"], old["kind"]) == ("install", "2.7.1", 0, "cuda")
    assert "older than transformers 5.19 accepts" in old["why"] and ".venv only" in old["why"]
    for found in (None, ("2.13.0+cpu", None)):  # a laptop
        plan = preflight.torch_plan(found)
        assert (plan["action"], plan["pin"], plan["system_site"]) == ("install", "2.13.0", 0)
    with pytest.raises(SystemExit):
        preflight.torch_plan(("2.1.0+cu118", "11.8"))  # CUDA 11: no torch >= 2.5 on PyPI for it


def test_a_venv_of_another_python_or_kind_is_named_not_reused(tmp_path):
    venv = tmp_path / ".venv"
    venv.mkdir()
    (venv / "pyvenv.cfg").write_text("include-system-site-packages = false\nversion = 3.9.18\n")
    assert "made with Python 3.9.18" in preflight.venv_problem(str(venv), 0)
    mine = ".".join(map(str, sys.version_info[:3]))
    (venv / "pyvenv.cfg").write_text(f"include-system-site-packages = false\nversion = {mine}\n")
    assert preflight.venv_problem(str(venv), 0) is None
    assert "does not see the system's packages" in preflight.venv_problem(str(venv), 1)


def test_setup_needs_no_gnu_only_tool(tmp_path):
    """The up-to-date path of set-up runs with only bash, the interpreter and POSIX dirname/date on PATH."""
    if not (ROOT / ".venv" / ".ftlab-stamp").is_file():
        pytest.skip("no finished set-up here to rerun")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname", "date"):
        os.symlink(shutil.which(tool), bin_dir / tool)
    base = getattr(sys, "_base_executable", sys.executable)  # the interpreter .venv was made from
    out = subprocess.run([shutil.which("bash"), "tools/setup_env.sh"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120, env={**os.environ, "PATH": str(bin_dir), "PYTHON": base})
    assert out.returncode == 0, out.stderr
    assert "Environment up to date" in out.stdout
