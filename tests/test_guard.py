"""Nothing outlives the process that started it, and one training at a time per machine.

Each guard test starts a real ci-track training (the stand-in model: it starts fastest) from a parent
that carries a unique marker in its environment, kills that parent with SIGKILL once swift trains,
and counts every process still carrying the marker: swift, torchrun, each rank, the guard itself.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import psutil
import pytest
from conftest import ROOT

from helpers import history, models, process, tracks, training

pytestmark = pytest.mark.timeout(420)
MARK = "FTLAB_TEST_MARK"
LONG = ["--learning_rate", "1e-4", "--num_train_epochs", "50", "--eval_steps", "5", "--train_rows", "12",
        "--val_rows", "4", "--batch_size", "4", "--max_length", "256", "--gradient_accumulation_steps", "1",
        "--dataloader_num_workers", "0"]


def marked(mark: str) -> list[psutil.Process]:
    """Live processes whose environment carries this test's marker."""
    found = []
    for p in psutil.process_iter():
        try:
            if p.status() != psutil.STATUS_ZOMBIE and p.environ().get(MARK) == mark:
                found.append(p)
        except psutil.Error:
            continue
    return found


def wait_for(condition, timeout: float, what: str, log: Path | None = None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}" + (f":\n{log.read_text(errors='replace')[-3000:]}" if log and log.is_file() else ""))


@pytest.fixture
def place(tmp_path):
    """An output folder, a lock folder and a marker of this test's own."""
    mark = uuid.uuid4().hex
    env = {**os.environ, "FTLAB_TRACK": "ci", "FTLAB_OUTPUT": str(tmp_path / "output"), "PYTHONUNBUFFERED": "1",
           process.LOCK_DIR_ENV: str(tmp_path / "lock"), MARK: mark}
    env.pop("MPLBACKEND", None)
    yield tmp_path, env, mark
    for p in marked(mark):  # whatever a failed assertion left, never leave training behind
        try:
            p.kill()
        except psutil.Error:
            pass


def training_started(out: Path):
    """The run folder once swift has logged its first step."""
    logs = [p for p in out.glob("ci/*/logging.jsonl") if p.read_text().strip()]
    return logs[0].parent if logs else None


def cli(args, env, log: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "helpers", *args], cwd=ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def kill_and_count(parent_pid: int, mark: str) -> float:
    """SIGKILL the parent; return how long until no marked process was left (fails past 5 s)."""
    t0 = time.time()
    os.kill(parent_pid, signal.SIGKILL)
    while marked(mark) and time.time() - t0 < 15:
        time.sleep(0.1)
    took = time.time() - t0
    left = marked(mark)
    assert not left, f"left running: {[(p.pid, p.cmdline()[:4]) for p in left]}"
    assert took <= 5.0, f"the tree took {took:.1f} s to stop after its parent died"
    return took


def test_sigkilled_cli_with_two_ranks_leaves_nothing(place):
    tmp, env, mark = place
    log = tmp / "cli.log"
    proc = cli(["sft", "--model", str(models.prepare_standin(quiet=True)), "--nproc_per_node", "2", "--use_cpu",
                "true", "--label", "two ranks", *LONG], env, log)
    run_dir = wait_for(lambda: training_started(tmp / "output"), 300, "the first logged step", log)
    ranks = [p for p in marked(mark) if "--local-rank" in " ".join(p.cmdline()) or "LOCAL_RANK" in p.environ()]
    assert len({p.environ().get("LOCAL_RANK") for p in ranks}) == 2, "expected two training ranks"
    kill_and_count(proc.pid, mark)
    proc.wait(5)
    run = history.Run.load(run_dir)
    assert run.status_text == "interrupted (the command that started it stopped)"
    assert (run_dir / "logging.jsonl").read_text().strip() and (run_dir / "swift.log").is_file()
    assert not Path(env[process.LOCK_DIR_ENV], "training.lock").exists(), "the guard must release the lock"


KERNEL_CODE = """
from helpers import sft, models
run = sft(models.standin_model(), dataset="train_100", learning_rate=1e-4, num_train_epochs=50, eval_steps=1,
          train_rows=12, val_rows=4, batch_size=4, max_length=256, gradient_accumulation_steps=1,
          dataloader_num_workers=0, label="kernel", show=False)
"""


def test_sigkilled_kernel_leaves_nothing_and_the_run_says_why(place):
    from jupyter_client.manager import KernelManager

    tmp, env, mark = place
    km = KernelManager(kernel_name="python3")
    km.start_kernel(env=env, cwd=str(ROOT))
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=120)
        kc.execute(KERNEL_CODE)
        run_dir = wait_for(lambda: training_started(tmp / "output"), 300, "the first logged step")
        wait_for(lambda: list(run_dir.glob("checkpoint-*/trainer_state.json")), 120, "a first checkpoint")
        kill_and_count(km.provisioner.process.pid, mark)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    run = history.Run.load(run_dir)
    assert run.status_text == "interrupted (the notebook that started it stopped)"
    assert run.last_checkpoint is not None and (run.last_checkpoint / "adapter_model.safetensors").is_file()
    assert "interrupted (the notebook that started it stopped)" in history.params_table([run])


def test_second_training_is_refused_naming_the_live_one_then_stop_by_cli(place):
    tmp, env, mark = place
    first = cli(["sft", "--model", str(models.prepare_standin(quiet=True)), "--label", "first", *LONG], env,
                tmp / "first.log")
    run_dir = wait_for(lambda: training_started(tmp / "output"), 300, "the first logged step", tmp / "first.log")
    short = str(run_dir)  # outside the course folder, the message names it in full
    second = subprocess.run([sys.executable, "-m", "helpers", "sft", "--label", "second", *LONG], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert second.returncode == 2, second.stdout + second.stderr
    assert "Another training of this course is running on this machine" in second.stderr
    assert short in second.stderr and f"python -m helpers stop {short}" in second.stderr
    assert [p.name for p in (tmp / "output" / "ci").iterdir()] == [run_dir.name], "the refused run created a folder"
    assert first.poll() is None, "the first training must go on"
    listed = subprocess.run([sys.executable, "-m", "helpers", "runs"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60).stdout
    assert f"{run_dir}\ttraining now" in listed, listed
    waiter = history.Run.load(run_dir)
    waiting = threading.Thread(target=waiter.wait, kwargs={"poll_s": 0.2}, daemon=True)
    waiting.start()  # Run.wait() on a run another process started: blocks until that training ends
    waiting.join(1.0)
    assert waiting.is_alive(), "Run.wait() returned while the training still runs"
    stop = subprocess.run([sys.executable, "-m", "helpers", "stop", str(run_dir)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)
    assert stop.returncode == 0, stop.stdout + stop.stderr
    waiting.join(30)
    assert not waiting.is_alive() and waiter.status == "interrupted", waiter.status
    first.wait(30)
    wait_for(lambda: not marked(mark) or None, 10, "the stopped tree to go")
    run = history.Run.load(run_dir)
    assert run.status_text == "interrupted (stopped with `python -m helpers stop`)", run.status_text
    assert not Path(env[process.LOCK_DIR_ENV], "training.lock").exists()


def test_sigkilled_merge_stops_swift_export(place, checkpoint):
    tmp, env, mark = place
    log = tmp / "merge.log"
    proc = cli(["merge", str(checkpoint)], env, log)
    wait_for(lambda: [p for p in marked(mark) if "export" in p.cmdline()], 60, "swift export", log)
    # killed once swift export is writing the merged model, the moment that leaves most behind
    wait_for(lambda: (checkpoint.parent / f".{checkpoint.name}-merging").exists() or None, 120,
             "swift export to start writing", log)
    assert proc.poll() is None, "the merge ended before it could be killed"
    kill_and_count(proc.pid, mark)


# ---- the lock on its own --------------------------------------------------------------------------------
def test_stale_lock_is_taken_over_with_a_note(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock = process.TrainingLock(tmp_path / "training.lock")
    lock.path.write_text(json.dumps({"run": "output/cpu/007-old", "pid": dead.pid, "owner": dead.pid,
                                     "owner_started": 0, "token": "x"}))
    note = lock.claim("new")
    assert note and "output/cpu/007-old" in note and "taken over" in note
    assert json.loads(lock.path.read_text())["token"] == lock.token
    lock.release()
    assert not lock.path.exists()


def test_live_lock_refuses_and_is_left_alone(tmp_path):
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock = process.TrainingLock(tmp_path / "training.lock")
        held = {"run": "output/gpu/003-exp3", "pid": live.pid, "owner": live.pid, "owner_started": 0, "token": "t",
                "by": "the notebook", "since": "2026-12-01T10:00:00+00:00"}
        lock.path.write_text(json.dumps(held))
        with pytest.raises(process.Busy) as err:
            lock.claim("new")
        assert "output/gpu/003-exp3" in str(err.value) and f"pid {live.pid}" in str(err.value)
        assert 'stop("output/gpu/003-exp3")' in str(err.value)
        lock.release()  # not ours: must stay
        assert json.loads(lock.path.read_text()) == held
        assert live.poll() is None, "a refused claim must never stop the other run"
    finally:
        live.kill()


def test_sft_refused_before_anything_is_written(tmp_path, monkeypatch):
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        monkeypatch.setattr(training.paths, "OUTPUT_DIR", tmp_path / "output")
        monkeypatch.setenv(process.LOCK_DIR_ENV, str(tmp_path / "lock"))
        lock = process.TrainingLock()
        lock.path.parent.mkdir()
        lock.path.write_text(json.dumps({"run": "output/ci/001-x", "pid": live.pid, "token": "t"}))
        with pytest.raises(process.Busy):
            training.sft(**tracks.experiments("ci")[1].params, show=False)
        assert not list((tmp_path / "output").glob("ci/*")), "a refused run must leave no folder"
    finally:
        live.kill()


def test_gpu_memory_of_other_processes_is_read_from_nvidia_smi(tmp_path, monkeypatch):
    fake = tmp_path / "nvidia-smi"
    fake.write_text("#!/bin/sh\nprintf '4242, /usr/bin/python3, 15360\\n%s, python, 900\\n' \"$FAKE_OWN\"\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_OWN", str(os.getpid()))
    from helpers import environment

    assert environment.gpu_memory_held(own_pids={os.getpid()}) == [(4242, "/usr/bin/python3", 15360)]


def test_disk_full_during_a_checkpoint_keeps_the_earlier_ones_and_says_why(tmp_path, monkeypatch):
    monkeypatch.setattr(training.paths, "OUTPUT_DIR", tmp_path / "output")
    monkeypatch.setenv(process.LOCK_DIR_ENV, str(tmp_path / "lock"))
    monkeypatch.setenv("FTLAB_CPU_BF16", "0")  # the ci track's own plugin would take the external_plugins flag
    params = {**tracks.experiments("ci")[1].params, "external_plugins": "tests/plugins/full_disk.py"}
    run = training.sft(models.standin_model(), **params, label="full disk", show=False)
    assert run.status == "failed"
    assert "No space left on device" in run.error
    assert (run.run_dir / "checkpoint-2").is_dir(), "the plugin must have struck during the second save"
    assert run.last_checkpoint == run.run_dir / "checkpoint-1", "a half-written checkpoint must never be offered"
    assert run.best_checkpoint == run.run_dir / "checkpoint-1"
    for line in (run.run_dir / "logging.jsonl").read_text().splitlines():
        json.loads(line)  # the log is intact, line by line
    assert history.Run.load(run.run_dir).status == "failed"
    assert "No space left on device" in history.Run.load(run.run_dir).error
