"""Set-up's first step: can this interpreter and machine run the course, and which torch will it use?

Run by tools/setup_env.sh with the interpreter that set-up was given (PYTHON=..., default python3), before
anything is created or installed. It answers in seconds:

- on stderr, in words: what it found and what set-up is about to do (or one sentence that names the fix);
- on stdout, shell assignments that setup_env.sh reads (`eval`): the torch plan and the stamp.

Exit code 2 means "cannot work here" (too old or too new a Python, Windows outside WSL, too little disk,
a .venv made by another interpreter); nothing has been touched then.

This file is deliberately written for old interpreters too (no f-strings, no annotations), so that a
Python 2.7 or 3.6 still gets the sentence instead of a SyntaxError.
"""

import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys

SUPPORTED = ((3, 10), (3, 13))  # oldest and newest Python the course's locks resolve for (tests/test_locks.py)
CPU_TORCH = "2.13.0"  # installed where no torch exists, or next to a CPU-only one
MIN_TORCH = (2, 5)  # transformers 5.19 disables PyTorch below this ("PyTorch >= 2.5 is required")
# An image whose CUDA torch is older than MIN_TORCH gets this torch in .venv only. PyPI's default wheel of
# torch 2.7.1 is built for CUDA 12.6 and runs on any CUDA 12 driver (the lesson's image has CUDA 12.4). Not 2.6.0
# (CUDA 12.4): its torch.accelerator raises "Cannot access accelerator device" wherever no GPU is visible, and
# transformers 5.19 asks it at import, so nothing loads on a CPU-only instance or in tools/dsw_rehearsal.sh.
CUDA12_TORCH = "2.7.1"
# free disk set-up needs, GiB: torch keep (the image's own), CPU torch, CUDA torch with its CUDA libraries
NEED_GB = {"keep": 3.0, "cpu": 6.0, "cuda": 10.0}
STAMP_FILES = ("requirements.txt", "tools/setup_env.sh", "tools/preflight.py")
VENV = ".venv"
FIX_PYTHON = "PYTHON=python3.12 make lab"


def refuse(sentence):
    sys.stderr.write("set-up: " + sentence + "\n")
    sys.exit(2)


def say(sentence):
    sys.stderr.write(sentence + "\n")
    sys.stderr.flush()


def check_python(version=None):
    """None when this Python is supported, else the sentence that says why not and names the fix."""
    v = tuple(version or sys.version_info[:2])
    name = "Python %d.%d" % v
    if v < SUPPORTED[0]:
        return ("%s is too old for this course (it needs Python 3.10 to 3.13). Fix: install a newer Python "
                "(python.org, Homebrew `brew install python@3.12`, or apt `python3.12`) and run `%s`."
                % (name, FIX_PYTHON))
    if v > SUPPORTED[1]:
        return ("%s is newer than this course's pinned packages support (Python 3.10 to 3.13). Fix: install "
                "Python 3.12 and run `%s`." % (name, FIX_PYTHON))
    return None


def check_platform(system=None, release=None):
    """None where set-up can run (Linux, WSL, macOS), else the sentence with the fix."""
    system = system or platform.system()
    if system == "Windows" or system.startswith(("CYGWIN", "MSYS", "MINGW")):
        return ("Windows is supported only inside WSL (Windows Subsystem for Linux). Fix: run `wsl --install` "
                "in PowerShell, open the Ubuntu terminal, clone the course there and run `make lab`.")
    if system not in ("Linux", "Darwin"):
        return "%s is not a system this course was tried on (Linux, WSL or macOS). Fix: use one of those." % system
    return None


def check_disk(free_gb, plan):
    """None when there is room for what set-up will install, else the sentence with the fix."""
    need = NEED_GB[plan]
    if free_gb < need:
        return ("only %.1f GiB of disk is free here, and set-up needs about %.0f GiB (the Python packages%s and "
                "the 0.5 GiB model). Fix: free some space (old runs live under output/) and run it again."
                % (free_gb, need, {"keep": "", "cpu": " with a CPU torch",
                                    "cuda": " with a CUDA torch and its CUDA libraries"}[plan]))
    return None


def _version_tuple(text):
    parts = []
    for p in text.split("+")[0].split(".")[:2]:
        digits = "".join(c for c in p if c.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def existing_torch(python):
    """(version, CUDA version or None) of the torch `python` already has, or None when it has none."""
    code = "import json, torch; print(json.dumps([torch.__version__, torch.version.cuda]))"
    try:
        out = subprocess.run([python, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             universal_newlines=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        return None
    version, cuda = json.loads(out.stdout.strip().splitlines()[-1])
    return version, cuda


def torch_plan(found):
    """What set-up does about torch, given `found` = existing_torch(): a dict with action, pin, system_site, why.

    - a CUDA torch >= 2.5 (today's DSW images): keep it, never reinstall it; the venv sees the system's packages;
    - a CUDA 12 torch older than 2.5 (the lesson's DSW image, torch 2.4.0): install torch 2.7.1 (CUDA 12.6) into
      .venv only, isolated from the system's packages (the image's torchvision/torchaudio are built for its own
      torch and would break next to another one); the system's torch is not touched;
    - anything else: the CPU torch of the course, in an isolated .venv.
    """
    if found and found[1]:
        version, cuda = found
        if _version_tuple(version) >= MIN_TORCH:
            return {"action": "keep", "pin": version.split("+")[0], "system_site": 1, "kind": "keep",
                    "why": "Keeping the preinstalled CUDA torch %s (CUDA %s): .venv sees the system's packages and "
                           "pins torch, so nothing can reinstall or downgrade it." % (version, cuda)}
        if not cuda.startswith("12."):
            refuse("this image's torch %s is built for CUDA %s; the course needs torch >= 2.5 and brings one only "
                   "for CUDA 12. Fix: pick a DSW image with CUDA 12 (for example "
                   "modelscope:1.38.0.1-pytorch2.10.0-gpu-py312-cu128)." % (version, cuda))
        return {"action": "install", "pin": CUDA12_TORCH, "system_site": 0, "kind": "cuda",
                "why": "The preinstalled torch %s (CUDA %s) is older than transformers 5.19 accepts (2.5): set-up "
                       "installs torch %s (built for CUDA 12.6) into .venv only; the system's torch stays as it is, "
                       "and .venv does not see the system's packages (the image's torchvision and torchaudio "
                       "are built for its own torch)." % (version, cuda, CUDA12_TORCH)}
    why = "No torch here yet" if not found else "The torch %s here is a CPU build" % found[0]
    return {"action": "install", "pin": CPU_TORCH, "system_site": 0, "kind": "cpu",
            "why": why + ": set-up installs torch %s into .venv." % CPU_TORCH}


def stamp(plan, root="."):
    """What the environment was built from: the set-up files, the interpreter and the torch plan."""
    h = hashlib.sha256()
    for name in STAMP_FILES:
        with open(os.path.join(root, name), "rb") as f:
            h.update(f.read())
    h.update(("%s %s %s %s" % (sys.version.split()[0], plan["action"], plan["pin"], plan["system_site"])).encode())
    return h.hexdigest()[:16]


def venv_problem(venv, system_site):
    """None when `venv` is absent or was made by this interpreter the way the plan wants, else the fix."""
    cfg = os.path.join(venv, "pyvenv.cfg")
    if not os.path.isfile(cfg):
        return None
    values = {}
    with open(cfg) as f:
        for line in f:
            if "=" in line:
                k, v = line.split("=", 1)
                values[k.strip()] = v.strip()
    made_with = values.get("version") or values.get("version_info") or ""
    mine = "%d.%d" % sys.version_info[:2]
    if made_with and not made_with.startswith(mine + "."):
        return ("%s was made with Python %s, not this Python %s. Fix: remove it (`rm -rf %s`, it holds only "
                "installed packages) and run set-up again." % (venv, made_with, sys.version.split()[0], venv))
    sees_system = values.get("include-system-site-packages", "false").lower() == "true"
    if sees_system != bool(system_site):
        return ("%s %s the system's packages, but this machine's torch needs a .venv that %s. Fix: remove it "
                "(`rm -rf %s`) and run set-up again." % (venv, "sees" if sees_system else "does not see",
                                                         "sees them" if system_site else "does not", venv))
    return None


def main():
    problem = check_python() or check_platform()
    if problem:
        refuse(problem)
    found = existing_torch(sys.executable)
    plan = torch_plan(found)
    want = stamp(plan)
    stamp_file = os.path.join(VENV, ".ftlab-stamp")
    up_to_date = False
    if os.path.isfile(stamp_file) and os.access(os.path.join(VENV, "bin", "python"), os.X_OK):
        with open(stamp_file) as f:
            up_to_date = f.read().strip() == want
    if not up_to_date:
        problem = venv_problem(VENV, plan["system_site"])
        problem = problem or check_disk(shutil.disk_usage(".").free / 2.0 ** 30, plan["kind"])
        if problem:
            refuse(problem)
        say("Python %s on %s %s. %s" % (sys.version.split()[0], platform.system(), platform.machine(), plan["why"]))
    sys.stdout.write("UP_TO_DATE=%d\nTORCH_ACTION=%s\nTORCH_PIN=%s\nTORCH_KIND=%s\nSYSTEM_SITE=%d\nSTAMP=%s\n"
                     "SYSTEM_TORCH=%s\n" % (up_to_date, plan["action"], plan["pin"], plan["kind"], plan["system_site"],
                                            want, found[0] if found else "none"))


if __name__ == "__main__":
    main()
