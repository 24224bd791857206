"""The playground (helpers/classroom.py): its plan and time estimate from a measured run, and a real ci-track run
started with its Train button's code, drawn live and overlaid on the earlier runs. The browser test clicks it."""

import pytest

from helpers import classroom, models, paths, tracks
from helpers.recordings import load_recording

pytestmark = pytest.mark.timeout(600)


def test_plan_counts_steps_and_evaluations_and_names_the_data():
    plan = classroom.Plan(learning_rate=1e-4, lora_rank=8, num_train_epochs=3, rows=250, batch_size=8, val_rows=20)
    assert plan.steps == 32 * 3  # 250 rows are 32 batches of 8 (the last one short)
    assert plan.eval_steps == 20 and plan.evaluations == 5  # 96 // 20 = 4, and one before the first step
    base = {**tracks.experiments("cpu")[4].params}  # experiment 5: a continued run with its own schedule
    params = plan.params(base)
    assert "resume_from" not in params and "lr_scheduler_kwargs" not in params  # a playground run starts fresh
    assert (params["dataset"], params["train_rows"], params["learning_rate"]) == ("train_1k", 250, 1e-4)
    assert params["gradient_checkpointing"] is False  # the track's speed flags stay
    whole = classroom.Plan(1e-4, 8, 1, 100, 8, 20).params(base)
    assert (whole["dataset"], whole["train_rows"]) == ("train_100", None)  # all 100 rows: the file as it is
    assert plan.label(2) == "play2 lr1e-4 r8 e3 250 rows"


def test_the_estimate_from_one_recorded_run_predicts_another():
    """Experiment 4's pace (1,000 rows) predicts experiment 2's training time (64 rows, five evaluations) on the
    machine that recorded both, within a fifth: a wrong share for evaluations or for start-up would miss."""
    exp2, exp4 = load_recording("cpu/exp2"), load_recording("cpu/exp4")
    pace = classroom.RowPace.of(exp4)
    assert pace.source == "exp4" and 0 < pace.train_row_s and 0 < pace.start_s < 120
    plan = classroom.Plan(exp2.params["learning_rate"], exp2.params["lora_rank"], 1, exp2.params["train_rows"],
                          exp2.params["batch_size"], exp2.params["val_rows"])
    assert plan.eval_steps == exp2.params["eval_steps"]  # the playground evaluates as experiment 2 did
    predicted = plan.seconds(pace)
    assert abs(predicted - exp2.wall_time_s) / exp2.wall_time_s < 0.2, (predicted, exp2.wall_time_s)
    assert classroom.RowPace.best([exp2, exp4]).source == "exp4"  # the run with the most rows measures best
    assert "about" in plan.estimate(pace) and "exp4" in plan.estimate(pace)
    assert "no finished run" in plan.estimate(None)


def test_train_runs_a_real_run_draws_it_live_and_overlays_it(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "OUTPUT_DIR", tmp_path / "output")
    earlier = [load_recording("cpu/exp1"), load_recording("cpu/exp2")]
    pg = classroom.Playground(models.get_model(), earlier, track="ci")
    first_picture = pg.picture.value
    assert "exp1, exp2" in pg.caption.value and "ftlab-estimate" in pg.estimate.value
    assert "data:image/png;base64," in pg.widget._repr_mimebundle_()["text/html"]  # the saved notebook's picture
    pg.learning_rate.value = 1e-4
    assert "lr1e-4" in pg.plan().label(1)
    seen = []
    pg._live = (lambda live: lambda run, log: (seen.append(log.last_step), live(run, log)))(pg._live)
    run = pg.train()
    assert run is not None and pg.train_button.disabled
    assert pg.train() is None  # a second press while it trains starts nothing: one training per machine
    assert len(list((tmp_path / "output" / "ci").iterdir())) == 1
    pg.wait()
    assert run.status == "finished", pg.status.value
    assert run.params["learning_rate"] == 1e-4 and run.label.startswith("play1 lr1e-4")
    assert seen, "the live curve was never redrawn while it trained"
    assert pg.runs == [run] and "play1 lr1e-4" in pg.caption.value
    assert pg.picture.value != first_picture and bytes(pg.picture.value).startswith(b"\x89PNG")
    assert "ftlab-diagnosis" in pg.card.value
    assert not pg.train_button.disabled and pg.stop_button.disabled
