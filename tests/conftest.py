import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("FTLAB_TRACK", "ci")
os.environ.setdefault("MPLBACKEND", "Agg")

TOOLS = Path(__file__).resolve().parent.parent / "tools"
if str(TOOLS) not in sys.path:  # the dataset generator lives with the maintainer tools
    sys.path.insert(0, str(TOOLS))


# ---- the suite's one trained embedded-model run ------------------------------------------------------------
# One real ci-track training serves every test that needs a trained checkpoint (the end-to-end flow, the
# interrupted merges and exam, the killed merge), so the suite trains the embedded model once for them.
import json  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402

import pytest  # noqa: E402

# what a learner does in notebook 03, in a fresh interpreter: train without waiting, see the first log point
# while swift still trains, watch it to the end, judge it, merge it (twice: the second finds the first), and ask
# the merged model a question
LESSON_FLOW = r"""
import json, time
from helpers import sft, merge, exam, experiments
from helpers.training import watch
from helpers.paths import DATA_DIR

p = experiments("ci")[1].params
run = sft(**p, label="e2e & live", wait=False, show=False)
proc = run.child  # the swift process of sft(wait=False): the Run's public handle
live = 0
while proc.poll() is None:
    train = run.curves().train
    if train and proc.poll() is None:
        live = len(train)
        break
    time.sleep(0.2)
watch(run, proc, show=False)
d = run.diagnosis
evals = run.curves().evals
merged = merge(run, show=False)
again = merge(run, show=False)
answer = exam(merged, DATA_DIR / "demo.jsonl", max_new_tokens=16, save_to=False, progress=False).items[0].response
print(json.dumps({"live": live, "status": run.status, "state": d.state, "rule": d.reason, "dir": str(run.run_dir),
                  "best": str(run.best_checkpoint), "last": str(run.last_checkpoint), "merged": str(merged),
                  "again": str(again), "answer": answer, "command": run.command, "first_eval_step": evals[0][0]}))
"""


def course_env() -> dict:
    return {**os.environ, "FTLAB_TRACK": "ci", "FTLAB_CACHE": str(ROOT / ".cache"), "PYTHONUNBUFFERED": "1"}


@pytest.fixture(scope="session")
def course(tmp_path_factory):
    """A copy of the course in a folder named like the lesson's, whose path has spaces and '&'."""
    dest = tmp_path_factory.mktemp("acp") / "p2_Build LLM Q&A System"
    shutil.copytree(ROOT / "helpers", dest / "helpers", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "resources" / "2_7", dest / "resources" / "2_7")
    return dest


@pytest.fixture(scope="session")
def lesson_flow(course):
    """LESSON_FLOW run once from the copied course: its printed result. A failure fails every test that needs
    the run, with swift's own words (pytest keeps a session fixture's error: nothing trains again)."""
    out = subprocess.run([sys.executable, "-c", LESSON_FLOW], cwd=course, env=course_env(), capture_output=True,
                         text=True, timeout=540)
    if out.returncode:
        pytest.fail(f"the suite's trained run failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def checkpoint(lesson_flow, tmp_path_factory):
    """A private copy of the trained run (without its merged models), for tests that merge, examine or
    interrupt: its best checkpoint. A module's tests share it; nothing they do may change it."""
    run_dir = Path(lesson_flow["dir"])
    dest = tmp_path_factory.mktemp("trained") / run_dir.name
    shutil.copytree(run_dir, dest, symlinks=True, ignore=shutil.ignore_patterns("*-merged", ".*-merging"))
    return dest / Path(lesson_flow["best"]).name
