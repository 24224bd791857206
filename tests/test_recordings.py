"""The committed cpu-track recordings: real runs of this package, diagnosed as the lesson describes."""

import json

import pytest

from helpers import paths, recordings, tracks

CPU = paths.RECORDINGS_DIR / "cpu"
# What the real cpu-track logs show. Experiments 1-4 match the lesson; in experiment 5 (400 rows x 2 epochs)
# the eval loss is still creeping down at the end (0.134 -> 0.125 -> 0.124), where the lesson's GPU run
# had flattened: the rules call it underfitting by a small margin, and the notebook says so.
EXPECTED = {"exp1": "failed", "exp2": "underfitting", "exp3": "overfitting", "exp4": "underfitting",
            "exp5": "underfitting"}
LESSON = {f"exp{i}": state for i, (_, state, _) in enumerate(tracks.TITLES, 1)}

pytestmark = pytest.mark.skipif(not CPU.is_dir(), reason="no cpu recordings committed yet")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_recording_carries_command_versions_hardware_and_date(name):
    meta = json.loads((CPU / name / "ftlab_run.json").read_text())
    assert meta["command"].startswith("swift sft ") and "--check_model false" in meta["command"]
    assert meta["versions"]["ms-swift"] and meta["versions"]["torch"] and meta["hardware"]
    assert meta["started"][:4].isdigit() and meta["wall_time_s"] > 0
    assert meta["status"] == "finished" and meta["track"] == "cpu"
    log = (CPU / name / "logging.jsonl").read_text()
    assert "/work/" not in log and "/root/" not in log  # portable: checkpoint folder names only


@pytest.mark.parametrize("name,state", sorted(EXPECTED.items()))
def test_real_cpu_logs_are_diagnosed_as_the_lesson_says(name, state):
    run = recordings.load(f"cpu/{name}")
    assert run.diagnosis.state == state, str(run.diagnosis)


def test_four_of_five_recorded_states_match_the_lesson():
    assert sum(EXPECTED[k] == LESSON[k] for k in EXPECTED) == 4


def test_replay_draws_the_recording_and_returns_its_diagnosis():
    run = recordings.replay("cpu/exp3", speed=float("inf"), show=False)
    assert run.status == "recorded" and run.curves()[0]


def test_recordings_are_never_overwritten(tmp_path):
    run = recordings.load("cpu/exp1")
    with pytest.raises(FileExistsError, match="never overwritten"):
        recordings.record(run, "exp1", track="cpu")


def test_recorded_exams_show_the_fine_tuned_gain():
    rec = recordings.recorded_exams("cpu")
    assert rec.base_100.n >= 100 and rec.tuned_100.n == rec.base_100.n
    assert rec.tuned_100.format_rate > rec.base_100.format_rate
    assert "fine-tuned, 100-question exam" in rec.table()
