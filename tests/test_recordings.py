"""The committed cpu-track recordings: real runs of this package, diagnosed as the lesson describes."""

import json
import re

import pytest

from helpers import paths, recordings, tracks

CPU = paths.RECORDINGS_DIR / "cpu"
# The lesson's five states (tracks.TITLES), which the real cpu-track logs must show. Experiment 5 continues
# experiment 4's run into a second epoch; its curves start with experiment 4's points, and over the whole training
# its eval loss has flattened at its minimum.
EXPECTED = {f"exp{i}": state for i, (_, state, _) in enumerate(tracks.TITLES, 1)}

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
    run = recordings.load_recording(f"cpu/{name}")
    assert run.diagnosis.state == state, str(run.diagnosis)



def test_experiment_5_continues_experiment_4():
    run4, run5 = recordings.load_recording("cpu/exp4"), recordings.load_recording("cpu/exp5")
    assert "--resume_from_checkpoint" in run5.command
    log4, log5 = run4.curves(), run5.curves()
    train4, eval4 = log4.train, log4.evals
    train5, eval5 = log5.train, log5.evals
    assert log5.resumed_at == train4[-1][0]  # it continued from experiment 4's last step ...
    assert train5[:len(train4)] == train4 and eval5[:len(eval4)] == eval4  # ... and its curves start with exp4's
    own = [s for s, _ in train5[len(train4):]]
    assert own and own[0] > train4[-1][0]


def test_the_whole_recorded_notebook_run_is_documented():
    rec = json.loads((CPU / "notebook_run.json").read_text())
    # the notebook found its track itself, as a learner's does: no FTLAB_TRACK, no track parameter
    assert rec["command"].startswith("/usr/bin/time -v papermill") and "record True" in rec["command"]
    assert "FTLAB_TRACK" not in rec["command"] and "track" not in rec["command"].split("(")[0]
    assert rec["mode"] in ("bf16", "fp32")
    assert rec["versions"]["ms-swift"] and rec["hardware"] and rec["date"][:4].isdigit()
    # the wall time is documented, not held to a number here: hosts differ by 2x in one week (the 20-minute
    # target is read off the recording and the pace it measured before, in the notes); memory is the machine's own
    assert 0 < rec["wall_time_s"] <= 90 * 60 and 0 < rec["peak_rss_largest_process_gib"] <= 8
    assert len(rec["cell_seconds"]) > 20 and all(c["seconds"] >= 0 for c in rec["cell_seconds"])


def test_experiment_5_goes_on_down_experiment_4s_learning_rate():
    """No warm restart: the learning rate falls monotonically over both experiments, to about zero."""
    log4 = recordings.load_recording("cpu/exp4").curves()
    log5 = recordings.load_recording("cpu/exp5").curves()
    lr4 = [v for _, v in log4.learning_rate]
    peak = tracks.CPU[3]["learning_rate"]
    assert lr4[-1] > 0.4 * peak  # experiment 4 ends halfway down its schedule ...
    own5 = [v for s, v in log5.learning_rate if s > log5.resumed_at]
    assert own5[0] <= lr4[-1] and all(b <= a for a, b in zip(own5, own5[1:])) and own5[-1] < 0.01 * peak  # ... 5 goes on


def test_fresh_runs_are_evaluated_before_their_first_step():
    for name in ("exp1", "exp2", "exp3", "exp4"):
        evals = recordings.load_recording(f"cpu/{name}").curves().evals
        assert evals[0][0] == 0, name
    evals1 = recordings.load_recording("cpu/exp1").curves().evals
    assert evals1[-1][1] > 3 * evals1[0][1]  # experiment 1's explosion shows in its eval curve


def test_replay_draws_the_recording_and_returns_its_diagnosis():
    run = recordings.replay("cpu/exp3", speed=float("inf"), show=False)
    assert run.status == "recorded" and run.curves().train


def test_replay_on_the_cpu_track_draws_point_by_point_at_its_speed_labelled_a_recording(monkeypatch):
    """What a class without time to train sees: every logged point drawn in turn, spread over the recorded time
    divided by `speed` (capped), under a RECORDING title, then the run's card."""
    import time

    monkeypatch.setenv("FTLAB_TRACK", "cpu")
    shown, frames = [], []

    class Frames:  # stands in for the live figure only; the points and the pacing are replay's own
        def __init__(self, title):
            frames.append(title)

        def update(self, train, evals, subtitle="", lr=()):
            frames.append(len(train) + len(evals))

        def close(self):
            pass

    monkeypatch.setattr(recordings, "LiveCurves", Frames)
    monkeypatch.setattr("IPython.display.display", shown.append)
    log = recordings.load_recording("cpu/exp3").curves()
    train, evals = log.train, log.evals
    t0 = time.perf_counter()
    run = recordings.replay("cpu/exp3", speed=30, max_seconds=1.0)  # its 2.9 min at 30x is over the cap
    took = time.perf_counter() - t0
    assert "RECORDING" in frames[0] and "RECORDING" in shown[0].data
    assert frames[1:-1] == list(range(1, len(train) + len(evals) + 1))  # one frame per logged point, in order
    assert took >= 0.9  # spread over the capped second, not drawn at once
    assert shown[-1].state == run.diagnosis.state == "overfitting"


def test_recordings_are_never_overwritten(tmp_path):
    run = recordings.load_recording("cpu/exp1")
    with pytest.raises(FileExistsError, match="never overwritten"):
        recordings.save_recording(run, "exp1", track="cpu")


def test_recorded_exams_show_the_fine_tuned_gain():
    """The course's promise, held against the recorded run: the fine-tuned model is clearly better."""
    rec = recordings.recorded_exams("cpu")
    assert rec.tuned_100.n == 100 and rec.base_test.n == rec.tuned_test.n == 10
    assert rec.base_100.n == (tracks.BASE_SAMPLE["cpu"] or 100) and rec.base_100.strict_score == 0
    assert [i.question for i in rec.base_100.items] == [t.question for t in rec.tuned_100.items[:rec.base_100.n]]
    # issue 34's floors: experiment 5's best gets at least 5 of the lesson's ten and 45 of exam_100 right (strict)
    assert rec.best_run == "exp5" and rec.tuned_test.strict_score >= 50 and rec.tuned_100.strict_score >= 45
    assert rec.tuned_100.format_rate >= 95 > rec.base_100.format_rate
    assert rec.tuned_100.strict_score - rec.base_100.strict_score >= 40
    assert rec.tuned_test.strict_score > rec.base_test.strict_score and rec.tuned_test.strict_score >= 20
    lesson = rec.table()  # what notebook 03 prints before experiment 6 exists: the same on every run of it
    assert [ln.split(",")[0] for ln in lesson.splitlines()[2:]] == ["base model", "fine-tuned"] * 2
    assert "exp6" not in lesson and "exp6 with calculator, radish field" in rec.table(recordings.EXAM_NAMES)



def test_the_overlay_shows_every_run_its_learning_rate_and_a_continued_run_from_where_it_took_over():
    import matplotlib.pyplot as plt

    from helpers.curves import overlay
    from helpers.history import overlay_items

    curves = overlay_items([recordings.load_recording(f"cpu/exp{i}") for i in range(1, 6)])  # what compare_runs draws
    fig = overlay(curves)
    loss_ax, lr_ax = fig.axes
    assert loss_ax.get_yscale() == "log" and len(lr_ax.lines) == 5
    lines = {ln.get_label(): ln for ln in loss_ax.lines}
    assert min(lines["exp5 — eval"].get_xdata()) >= curves[4]["from_step"] > 0  # exp4 is not drawn over
    assert len({ln.get_marker() for ln in loss_ax.lines if "eval" in ln.get_label()}) == 5
    labels = [t.get_text() for t in loss_ax.get_yticklabels() if t.get_text()]
    assert labels and all("$" not in t for t in labels)  # plain numbers, no mathtext
    plt.close(fig)


def test_experiment_6_learned_to_call_its_calculator_and_leans_on_it():
    """Issue 34's floors, held against the recorded run: with its calculator experiment 6 answers ≥ 8 of the
    lesson's ten and ≥ 80 of exam_100 (strict) and gets the radish field right; without the calculator the same
    model does at least 20 points worse, so what it learned is when and what to compute, not the arithmetic."""
    rec = recordings.recorded_exams("cpu")
    tool_test, tool_100, tool_demo = rec.calc_tool_test, rec.calc_tool_100, rec.calc_tool_demo
    plain_test, plain_100 = rec.calc_plain_test, rec.calc_plain_100
    assert tool_test.n == plain_test.n == 10 and tool_100.n == plain_100.n == 100 and tool_demo.n == 1
    assert tool_test.strict_score >= 80 and tool_100.strict_score >= 80 and tool_demo.strict_score == 100
    assert tool_100.strict_score - plain_100.strict_score >= 20 and tool_test.strict_score > plain_test.strict_score
    assert tool_100.strict_score > rec.tuned_100.strict_score  # better than the best of the five without a tool
    assert tool_100.settings["tool"] and not plain_100.settings["tool"]
    assert tool_100.calls[0] >= 100  # it called the calculator, about once per step of a solution


def test_experiment_6_recording_is_a_fresh_run_on_the_calculator_data():
    meta = json.loads((CPU / "exp6" / "ftlab_run.json").read_text())
    assert meta["status"] == "finished" and meta["track"] == "cpu"
    assert "train_1k_calc.jsonl" in meta["command"] and "--resume_from_checkpoint" not in meta["command"]
    assert recordings.load_recording("cpu/exp6").diagnosis.state in ("converged", "underfitting")


def test_a_runs_diagnosis_is_judged_once_per_log_size(tmp_path, monkeypatch):
    """compare_runs and the cards ask a run for its diagnosis several times: it is judged again only when the
    log has grown."""
    import shutil

    from helpers import history

    calls = []
    judge = history.judge
    monkeypatch.setattr(history, "judge", lambda *a: calls.append(1) or judge(*a))
    shutil.copytree(CPU / "exp3", tmp_path / "exp3")
    run = history.Run.load(tmp_path / "exp3")
    first = run.diagnosis
    assert run.diagnosis is first and len(calls) == 1
    log = tmp_path / "exp3" / "logging.jsonl"
    last_eval = json.loads(next(r for r in reversed(log.read_text().splitlines()) if "eval_loss" in r))
    with log.open("a") as f:  # one more evaluation, as swift appends it
        f.write(json.dumps({**last_eval, "eval_loss": last_eval["eval_loss"] + 1.0}) + "\n")
    again = run.diagnosis
    assert run.curves().evals[-1][1] == last_eval["eval_loss"] + 1.0  # the grown log was read
    assert again is not first and len(calls) == 2 and run.diagnosis is again


def test_the_wording_split_sets_a_sampled_base_exam_beside_the_whole_tuned_one():
    """The cpu track asks the base model only exam_100's first questions: the table says so, per group."""
    from helpers.exams import first_questions, wording_split

    rec = recordings.recorded_exams("cpu")
    n = 20  # a sample of the base exam, as issue 34 considered
    table = wording_split(first_questions(rec.base_100, n), rec.tuned_100)
    assert f"base (its first {n})" in table
    counts = [int(c) for c in re.findall(r"\(of (\d+)\)", table)]
    assert sum(counts) == n and "| 100 |" not in table  # the groups still count all 100 tuned questions ...
    assert sum(int(row.split("|")[2]) for row in table.splitlines()[2:]) == 100  # ... split between them
    with pytest.raises(ValueError, match="same questions"):
        wording_split(rec.base_test, rec.tuned_100)  # not exam_100's first questions: refused
