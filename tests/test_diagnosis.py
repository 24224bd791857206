"""The lesson's training states on synthetic curves shaped like the CPU runs (FACTS.md)."""

import json
import math

import numpy as np
import pytest

from helpers import diagnosis, paths
from helpers.cards import DiagnosisCard, thresholds_table
from helpers.diagnosis import Diagnosis, diagnose
from helpers.history import diagnose_log
from helpers.swiftlog import read_log
from helpers.view import STATE_COLORS

NOISE = [0.0, 0.01, 0.02, 0.04]  # multiplicative noise on train loss; eval gets a fifth of it
SEEDS = [0, 1, 2]


def cosine_progress(steps, total):
    """Fraction of the cosine schedule's learning rate spent by each step (ms-swift's default)."""
    x = np.asarray(steps, dtype=float) / total
    return (x + np.sin(np.pi * x) / np.pi)


def pts(steps, values):
    return [(int(s), float(v)) for s, v in zip(steps, values)]


def noisy(values, level, rng):
    return np.asarray(values) * (1 + level * rng.standard_normal(len(values)))


def log_steps(total, every=5):
    """ms-swift logs step 1, then every `every` steps, and the last one."""
    return sorted({1, *range(every, total + 1, every), total})


def cosine_lr(steps, total, peak=1e-4):
    return pts(steps, peak * (1 + np.cos(np.pi * np.asarray(steps) / total)) / 2)


def curves(state, level=0.0, seed=0):
    """(train, eval, lr) points; losses get `level` multiplicative noise (eval a fifth of it)."""
    rng = np.random.default_rng(seed)
    if state == "failed":  # lr 0.1: 1.36 spikes to ~48, falls back but stays far above its start
        total = 35
        steps = log_steps(total)
        train = [1.36, 48, 30, 22, 17, 14, 12, 11]
        ev_steps = [10, 20, 30, 35]
        ev = [25.0, 16.0, 12.0, 11.0]
    elif state == "overfitting":  # 30 rows x 12 epochs: train 1.56 → 0.002, eval 0.37 → 0.15 → 0.23
        total = 180
        steps = log_steps(total)
        s = np.asarray(steps, dtype=float)
        train = 1.56 * np.exp(-s / 18) + 0.002
        ev_steps = list(range(15, 181, 15))
        e = np.asarray(ev_steps, dtype=float)
        ev = 0.15 + 0.22 * np.exp(-(e - 15) / 15) + 0.08 * np.clip((e - 60) / 120, 0, None)
    elif state == "converged":  # 400 rows x 2 epochs: both flatten
        total = 50
        steps = log_steps(total)
        train = 0.55 + 0.95 * np.exp(-cosine_progress(steps, total) / 0.15)
        ev_steps = [10, 20, 30, 40, 50]
        ev = 0.60 + 0.40 * np.exp(-cosine_progress(ev_steps, total) / 0.15)
    elif state == "underfitting":  # lr 5e-5 x 1 epoch: 1.5 → 1.3, still falling per unit of learning
        total = 35
        steps = log_steps(total)
        train = 1.5 - 0.2 * cosine_progress(steps, total)
        ev_steps = [10, 20, 30, 35]
        ev = 1.48 - 0.18 * cosine_progress(ev_steps, total)
    else:
        raise ValueError(state)
    return (pts(steps, noisy(train, level, rng)), pts(ev_steps, noisy(ev, level / 5, rng)),
            cosine_lr(steps, total))


STATES = ["failed", "overfitting", "converged", "underfitting"]


@pytest.mark.parametrize("state", STATES)
def test_clean_curves(state):
    train, ev, lr = curves(state)
    d = diagnose(train, ev, lr=lr)
    assert d.state == state, str(d)
    assert d.next_move == diagnosis.NEXT_MOVES[state]
    assert d.notes == []


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("level", NOISE[1:])
@pytest.mark.parametrize("seed", SEEDS)
def test_noisy_curves(state, level, seed):
    if state == "underfitting" and level > 0.02:
        pytest.skip("a 13 % fall over 8 points drowns in 4 % noise")
    train, ev, lr = curves(state, level, seed)
    assert diagnose(train, ev, lr=lr).state == state


def test_cosine_schedule_flattens_in_steps_but_not_in_learning_done():
    train, ev, lr = curves("underfitting")
    assert diagnose(train, ev).state == "converged"  # judged in steps, the end looks flat ...
    d = diagnose(train, ev, lr=lr)  # ... against the learning rate spent it is a straight line
    assert d.state == "underfitting" and d.evidence["time_axis"] == "learning done (the learning rate added up)"


def test_constant_lr_underfitting_in_steps():
    steps = log_steps(40)
    train = 1.5 - 0.25 * np.asarray(steps) / 40
    d = diagnose(pts(steps, train), [(10, 1.42), (20, 1.36), (30, 1.30), (40, 1.24)])
    assert d.state == "underfitting" and d.evidence["time_axis"] == "steps"


@pytest.mark.parametrize("state,lesson_move", [("failed", "0.1 → 5e-5"), ("underfitting", "1 → 50"),
                                               ("overfitting", "1,000 rows"), ("converged", "best_model_checkpoint")])
def test_a_diagnosed_run_suggests_the_lessons_next_move(state, lesson_move):
    train, ev, lr = curves(state)
    assert lesson_move in diagnose(train, ev, lr=lr).next_move


def test_spike_then_fall_is_judged_against_the_start():
    train, ev, _ = curves("failed")
    d = diagnose(train, ev)
    assert d.evidence["train_start"] == pytest.approx(1.36)
    assert d.evidence["train_end"] > 10
    assert "1.36" in d.reason and d.state == "failed"


def test_flat_noisy_loss_fails():
    rng = np.random.default_rng(3)
    steps = log_steps(60)
    d = diagnose(pts(steps, noisy(np.full(len(steps), 1.4), 0.03, rng)), [(30, 1.41), (60, 1.40)])
    assert d.state == "failed"


def test_rising_loss_fails():
    steps = log_steps(40)
    d = diagnose(pts(steps, np.linspace(1.2, 2.5, len(steps))), [(10, 1.3), (20, 1.7), (40, 2.6)])
    assert d.state == "failed" and "eval loss also ended above its start" in d.reason


def test_loss_that_climbs_back_fails():
    steps = log_steps(60)
    loss = np.concatenate([np.linspace(2.0, 0.5, 7), np.linspace(0.6, 1.6, len(steps) - 7)])
    d = diagnose(pts(steps, loss), [(20, 0.8), (40, 1.2), (60, 1.7)])
    assert d.state == "failed" and "climbed back" in d.reason


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_nan_or_inf_loss_fails(bad):
    train = [(1, 1.5), (5, 1.2), (10, bad), (15, 1.0)]
    d = diagnose(train, [(10, 1.1)])
    assert d.state == "failed"
    assert "NaN/inf loss at step 10" in d.notes
    json.dumps(d.to_dict(), allow_nan=False)


def test_nan_eval_point_is_dropped_with_a_note():
    train, ev, lr = curves("converged")
    d = diagnose(train, ev + [(55, math.nan)], lr=lr)
    assert d.state == "converged"
    assert any("NaN/inf eval loss at step 55" in n for n in d.notes)


def test_eval_rising_a_little_within_tolerance_is_converged():
    train, _, lr = curves("converged")
    d = diagnose(train, [(10, 0.70), (20, 0.62), (30, 0.61), (40, 0.615), (50, 0.625)], lr=lr)
    assert d.state == "converged"


@pytest.mark.parametrize("state", ["underfitting", "converged"])
def test_no_eval_set(state):
    train, _, lr = curves(state)
    d = diagnose(train, [], lr=lr)
    assert d.state == state
    assert diagnosis.NO_EVAL_NOTE in d.notes


def test_no_eval_set_never_says_overfitting():
    train, _, lr = curves("overfitting")
    d = diagnose(train, [], lr=lr)
    assert d.state in ("underfitting", "converged")
    assert diagnosis.NO_EVAL_NOTE in d.notes


def test_few_eval_points():
    train, _, _ = curves("overfitting")
    d = diagnose(train, [(60, 0.15), (180, 0.23)])
    assert d.state == "overfitting"
    assert any(n.startswith("few eval points (n=2") for n in d.notes)
    one = diagnose(train, [(180, 0.23)])
    assert one.state != "overfitting" and diagnosis.NO_EVAL_NOTE in one.notes


def test_interrupted_run_is_provisional():
    train, ev, lr = curves("underfitting")
    d = diagnose(train[:5], ev[:2], max_steps=35, interrupted=True, lr=lr[:5])
    assert "run was interrupted at step 20 of 35: judgement is provisional" in d.notes
    assert d.evidence["max_steps"] == 35


@pytest.mark.parametrize("n", [0, 1, 2])
def test_too_few_points_is_unknown(n):
    d = diagnose([(1, 1.5), (5, 1.2)][:n], [])
    assert d.state == "unknown" and str(n) in d.reason


def test_unsorted_and_repeated_steps():
    train, ev, _ = curves("overfitting")
    assert diagnose(list(reversed(train)) + [train[-1]], ev[::-1]).state == "overfitting"


def test_to_dict_is_json_safe_and_rounded():
    for state in STATES:
        train, ev, lr = curves(state, 0.04, 7)
        d = diagnose(train, ev, lr=lr)
        out = d.to_dict()
        assert set(out) == {"state", "reason", "evidence", "next_move", "notes"}
        text = json.dumps(out, allow_nan=False)
        for v in out["evidence"].values():
            if isinstance(v, float):
                assert len(repr(v).lstrip("-").replace(".", "").lstrip("0").split("e")[0]) <= 4
        assert json.loads(text) == out


def test_html_and_text_cards_are_deterministic():
    a = DiagnosisCard.of(diagnose(*curves("overfitting", 0.02, 1)[:2], max_steps=180, interrupted=True))
    b = DiagnosisCard.of(diagnose(*curves("overfitting", 0.02, 1)[:2], max_steps=180, interrupted=True))
    assert a._repr_html_() == b._repr_html_()
    html = a._repr_html_()
    assert STATE_COLORS["overfitting"] in html and "overfitting" in html and "provisional" in html
    assert "<script" not in html
    text = str(a)
    assert text.startswith("[OVERFITTING]") and "adjustment:" in text and "cause:" in text
    # the card shows curve numbers a learner can find on the plot, not the statistics behind the rule
    ev = a.evidence
    for key in ("train_first", "train_lowest", "train_last", "eval_first", "eval_min", "eval_last"):
        assert diagnosis.loss_text(ev[key]) in a.observation(), key
    assert f"step {ev['eval_min_step']}" in a.observation()
    assert "next_run_change" not in text and "tail_share" not in text
    assert "<details>" in html and html.index("Observation") < html.index("<details>")
    assert "x&lt;y &amp; z" in DiagnosisCard("unknown", "x<y & z")._repr_html_()
    assert not hasattr(Diagnosis("unknown", "x"), "_repr_html_")  # the rules carry no display code


def test_thresholds_are_documented():
    table = thresholds_table()
    assert table.startswith("| state | when the helper says it |")
    plain = table.partition("<details>")[0]
    for word in ("failed", "overfitting", "underfitting", "converged", "5%", "0.02", "50%", "10%"):
        assert word in plain
    assert "median" not in plain and "progress" not in plain  # jargon stays in the folded exact rules
    assert "rolling median" in table.partition("<details>")[2]
    assert "5 % below the starting loss" in diagnosis.THRESHOLDS_DOC


# --- ms-swift logging.jsonl ---

def swift_log(train, ev, max_steps, finished=True):
    lines = []
    for step, loss in train:
        lines.append({"loss": loss, "grad_norm": 6.2, "learning_rate": 1e-4, "token_acc": 0.5, "epoch": 0.1,
                      "global_step/max_steps": f"{step}/{max_steps}", "elapsed_time": "2s",
                      "remaining_time": "6s", "train_speed(s/it)": 1.5})
        for es, el in ev:
            if es == step:
                lines.append({"eval_loss": el, "eval_runtime": 0.8, "eval_token_acc": 0.6, "epoch": 0.1,
                              "global_step/max_steps": f"{step}/{max_steps}", "elapsed_time": "4s"})
    if finished:
        last = train[-1][0]
        lines.append({"train_runtime": 9.9, "train_loss": 2.3, "epoch": 1.0,
                      "global_step/max_steps": f"{last}/{max_steps}", "elapsed_time": "10s"})
        lines.append({"train_dataset": "...", "val_dataset": "...", "model_parameter_info": "...",
                      "last_model_checkpoint": f"/abs/out/v0-x/checkpoint-{last}",
                      "best_model_checkpoint": "/abs/out/v0-x/checkpoint-60", "best_metric": 0.15,
                      "global_step": last, "log_history": [{"loss": 9.9}], "memory": 0})
    return "\n".join(json.dumps(x) for x in lines) + "\n"


def test_read_log_finished_run(tmp_path):
    train, ev, _ = curves("overfitting", 0.02, 0)
    ev = [(s, v) for s, v in ev if s in {t for t, _ in train}]
    (tmp_path / "logging.jsonl").write_text(swift_log(train, ev, 180))
    log = read_log(tmp_path)
    got_train, got_eval = log.train, log.evals
    assert got_train == train and got_eval == ev
    assert log.max_steps == 180 and log.finished and log.completed
    assert log.best_model_checkpoint.endswith("checkpoint-60")
    assert log.last_model_checkpoint.endswith("checkpoint-180")
    d = diagnose_log(tmp_path / "logging.jsonl")
    assert d.state == "overfitting" and not any("interrupted" in n for n in d.notes)
    assert d.evidence["best_model_checkpoint"].endswith("checkpoint-60")


def test_read_log_live_with_blank_and_truncated_last_line(tmp_path):
    train, ev, _ = curves("underfitting")
    text = swift_log(train[:5], [e for e in ev if e[0] <= 20], 35, finished=False)
    text = text.replace("\n", "\n\n", 1) + '{"loss": 1.31, "grad_norm": 6.2, "learn'
    (tmp_path / "logging.jsonl").write_text(text)
    log = read_log(tmp_path)
    got_train, got_eval = log.train, log.evals
    assert len(got_train) == 5 and [s for s, _ in got_eval] == [10, 20]
    assert log.skipped_lines == 1 and not log.finished and log.max_steps == 35
    d = diagnose_log(tmp_path)
    assert "run was interrupted at step 20 of 35: judgement is provisional" in d.notes


def test_cancelled_run_writes_summary_but_is_not_complete(tmp_path):
    train, _, _ = curves("underfitting")
    (tmp_path / "logging.jsonl").write_text(swift_log(train[:5], [], 35))
    log = read_log(tmp_path)
    assert log.finished and not log.completed
    assert any("interrupted at step 20 of 35" in n for n in diagnose_log(tmp_path).notes)
    assert not any("interrupted" in n for n in diagnose_log(tmp_path, interrupted=False).notes)


def test_real_sample_lines(tmp_path):
    """The lines quoted from a real ms-swift 4.6 run (5 steps, eval every 2)."""
    lines = [
        ('{"loss": 3.13345838, "grad_norm": 6.2, "learning_rate": 0.00027135, "token_acc": 0.469, "epoch": 0.2, '
        '"global_step/max_steps": "1/5", "elapsed_time": "2s", "remaining_time": "6s", "train_speed(s/it)": 1.56}'),
        ('{"eval_loss": 2.14793229, "eval_runtime": 0.8205, "eval_samples_per_second": 7.312, '
        '"eval_steps_per_second": 7.312, "eval_token_acc": 0.678, "epoch": 0.4, "global_step/max_steps": "2/5", '
        '"elapsed_time": "4s", "remaining_time": "6s", "train_speed(s/it)": 1.93}'),
        ('{"train_runtime": 9.8873, "train_samples_per_second": 1.821, "train_steps_per_second": 0.506, '
        '"total_flos": 647125645824.0, "train_loss": 2.28921607, "epoch": 1.0, "global_step/max_steps": "5/5", '
        '"elapsed_time": "10s", "remaining_time": "0s", "train_speed(s/it)": 1.976792}'),
        ('{"train_dataset": "...", "val_dataset": "...", "model_parameter_info": "...", '
        '"last_model_checkpoint": "/abs/out/v0-x/checkpoint-5", "best_model_checkpoint": '
        '"/abs/out/v0-x/checkpoint-5", "best_metric": 1.75688398, "global_step": 5, "log_history": [], "memory": 0}'),
    ]
    (tmp_path / "logging.jsonl").write_text("\n".join(lines) + "\n")
    log = read_log(tmp_path / "logging.jsonl")
    train, ev = log.train, log.evals
    assert train == [(1, 3.13345838)] and ev == [(2, 2.14793229)]
    assert log.completed and log.best_metric == 1.75688398
    assert diagnose_log(tmp_path).state == "unknown"


def test_a_curve_whose_minimum_lies_back_has_stopped_falling():
    """Experiment 5's shape on the cpu track: eval falls, bottoms out, then sits flat or creeps up a little.

    A straight line through the second half still points down (the late drop to the minimum), but the
    curve has stopped falling: converged, not underfitting.
    """
    steps = log_steps(250, every=5)
    train = 0.07 + 1.4 * np.exp(-np.asarray(steps) / 20.0)
    ev_steps = list(range(25, 251, 25))
    ev = [0.1918, 0.1179, 0.0962, 0.0812, 0.0835, 0.0802, 0.0726, 0.0728, 0.0753, 0.0754]
    d = diagnose(pts(steps, train), pts(ev_steps, ev), lr=cosine_lr(steps, 250))
    assert d.evidence["eval_tail_share"] >= diagnosis.STILL_FALLING  # the trend alone would say "falling"
    assert d.state == "converged", str(d)
    rising = ev[:6] + [0.0760, 0.0740, 0.0728, 0.0715]  # the same run with the minimum at the end
    assert diagnose(pts(steps, train), pts(ev_steps, rising), lr=cosine_lr(steps, 250)).state == "underfitting"


def test_a_continued_run_starts_with_the_history_of_the_run_it_continued(tmp_path):
    from helpers.training import write_history

    train, ev, _ = curves("underfitting")
    parent = tmp_path / "004-exp4"
    (parent / "checkpoint-20").mkdir(parents=True)
    (parent / "logging.jsonl").write_text(swift_log(train, ev, 35))  # a finished run with its summary lines
    child = tmp_path / "005-exp5"
    child.mkdir()
    write_history(parent / "checkpoint-20", child)
    later = [(s + 15, v * 0.99) for s, v in train if s >= 10]  # the continued run's own steps: 25..50
    (child / "logging.jsonl").write_text(swift_log(later, [(50, ev[-1][1] * 0.99)], 50, finished=False))
    log = read_log(child)
    got_train, got_eval = log.train, log.evals
    assert [s for s, _ in got_train] == [s for s, _ in train if s <= 20] + [s for s, _ in later]
    assert [s for s, _ in got_eval] == [10, 20, 50]
    assert log.resumed_at == 20 and log.max_steps == 50
    assert not log.finished  # the earlier run's summary lines are not part of the history
    assert diagnose_log(child).evidence["train_first"] == train[0][1]  # judged from step 1, not from step 25


@pytest.mark.parametrize("state", ["converged", "underfitting", "overfitting"])
def test_an_evaluation_before_training_shows_the_start_and_leaves_the_states_alone(state):
    train, ev, lr = curves(state)
    before = diagnose(train, ev, lr=lr)
    d = diagnose(train, [(0, 1.6), *ev], lr=lr)  # --eval_on_start: the untrained model's eval loss at step 0
    assert d.state == before.state == state, d.reason
    assert d.evidence["eval_first_step"] == 0 and d.evidence["eval_first"] == 1.6
    assert "eval loss 1.6 before training (step 0)" in d.observation()
    # the share of the fall still to come is measured on the evaluations made during training
    assert d.evidence["eval_tail_share"] == pytest.approx(before.evidence["eval_tail_share"])


def test_a_failed_run_offers_no_best_checkpoint(tmp_path):
    train, ev, _ = curves("failed")
    (tmp_path / "logging.jsonl").write_text(swift_log(train, ev, 35))  # swift names a best checkpoint all the same
    card = diagnose_log(tmp_path)
    assert card.state == "failed" and card.evidence["best_model_checkpoint"] is None
    assert "best checkpoint</td><td>none" in card._repr_html_()
    # with an evaluation before training, the explosion shows in the eval curve too
    assert "eval loss also ended above its start (1.52 → 11)" in diagnose(train, [(0, 1.52), *ev]).reason


def test_the_card_shows_readable_numbers_only():
    train, ev, lr = curves("underfitting", 0.02, 1)
    card = DiagnosisCard.of(diagnose(train, ev, lr=lr))
    html = card._repr_html_()
    assert "projected" not in html and "t-statistic" not in html
    share = card.evidence["eval_tail_share"]
    assert f"<td>{share:.0%}</td>" in html and "learning done (the learning rate added up)" in html


def test_the_training_curves_measures_worked_out_by_hand():
    """Six points, window 3 (a rolling median that shrinks at the edges): smoothed 1.5, 1, 0.5, 0.5, 0.6, 0.7."""
    d = diagnose([(1, 2.0), (2, 1.0), (3, 0.5), (4, 0.4), (5, 0.6), (6, 0.8)])
    ev = d.evidence
    assert ev["smoothing_window"] == 3
    assert (ev["train_start"], ev["train_end"], ev["train_min"], ev["train_min_step"]) == (1.5, 0.7, 0.5, 3)
    assert ev["train_gave_back"] == pytest.approx(0.2)  # (0.7 - 0.5) / (1.5 - 0.5)
    assert ev["train_drop"] == pytest.approx(0.8 / 1.5)
    assert (ev["train_first"], ev["train_lowest"], ev["train_lowest_step"], ev["train_last"]) == (2.0, 0.4, 4, 0.8)
    assert d.observation() == "train loss 2 at the start → lowest 0.4 (step 4) → 0.8 at step 6"


def test_tail_trend_is_a_least_squares_line_over_the_second_half():
    from scipy import stats

    x = np.arange(11) / 10  # 0 … 1: the second half is x ≥ 0.5, six points
    y = np.array([1.0, 0.9, 0.75, 0.7, 0.62, 0.55, 0.52, 0.47, 0.45, 0.41, 0.40])
    change, next_run, t = diagnosis.tail_trend(x, y, 3)
    fit = stats.linregress(x[5:], y[5:])
    assert change == pytest.approx(fit.slope * 0.5) and next_run == pytest.approx(fit.slope * 1.0)
    assert t == pytest.approx(fit.slope / fit.stderr)
    # a straight line has no scatter: its t is as large as the clip allows, with the slope's sign
    assert diagnosis.tail_trend(x, 2 - x, 3) == pytest.approx((-0.5, -1.0, -999.0))
    assert diagnosis.tail_trend(x, 1 + 0 * x, 3) == (0.0, 0.0, 0.0)
    assert diagnosis.tail_trend([0.0, 0.0], [1.0, 2.0], 2) == (0.0, 0.0, 0.0)  # no spread in x: no line
    # min_points wins over a short half: the last 4 points, not the last 2
    change4, _, _ = diagnosis.tail_trend([0, 1, 2, 3, 10], [5, 4, 3, 2, 1], 4)
    assert change4 == pytest.approx(stats.linregress([1, 2, 3, 10], [4, 3, 2, 1]).slope * 5)


def test_the_evidence_of_a_real_run_counts_and_places_what_the_card_shows():
    """Experiment 4 of the recorded cpu run (underfitting): every number of its evidence that can be worked out
    by hand from its log, and the share its stored card quotes ("15% of its drop came in the second half")."""
    log = read_log(paths.RECORDINGS_DIR / "cpu" / "exp4")
    d = diagnose(log.train, log.evals, max_steps=log.max_steps, lr=log.learning_rate, last_step=log.last_step)
    ev = d.evidence
    low_step, low = min(log.evals, key=lambda p: p[1])
    assert d.state == "underfitting"
    assert (ev["n_train"], ev["n_eval"], ev["last_step"], ev["max_steps"]) == (len(log.train), len(log.evals), 125, 125)
    assert (ev["eval_first_step"], ev["eval_min_step"], ev["eval_last_step"]) == (0, low_step, 125)
    assert ev["eval_min"] == low and ev["eval_last"] == log.evals[-1][1] and ev["eval_first"] == log.evals[0][1]
    assert ev["eval_tolerance"] == pytest.approx(max(diagnosis.EVAL_REL_TOL * low, diagnosis.EVAL_ABS_TOL))
    assert round(ev["eval_tail_share"], 2) == 0.15 and ev["eval_next_run_change"] < -ev["eval_tolerance"]
    assert ev["time_axis"] == "learning done (the learning rate added up)"
    t_low_step = ev["train_min_step"]
    assert t_low_step in {s for s, _ in log.train} and ev["train_drop"] == pytest.approx(
        (ev["train_start"] - ev["train_end"]) / ev["train_start"])
    assert diagnose(log.train, log.evals).evidence["time_axis"] == "steps"  # no schedule: time in steps
    two = diagnose(log.train, log.evals, lr=log.learning_rate[:2]).evidence["time_axis"]
    assert two == "learning done (the learning rate added up)"  # two points of the schedule are enough


def test_the_evidence_without_an_eval_curve_and_at_the_edges():
    steps = log_steps(100)
    falling = pts(steps, 0.5 + np.exp(-np.asarray(steps) / 60.0))  # still falling clearly at the end
    ev = diagnose(falling).evidence
    assert ev["n_eval"] == 0 and ev["train_tail_t"] <= -diagnosis.MIN_TREND_T
    assert ev["train_tail_share"] >= diagnosis.STILL_FALLING and ev["train_next_run_change"] < 0
    assert diagnose(falling[:3]).state != "unknown" and diagnose(falling[:2]).state == "unknown"  # 3 points: a curve
    assert falling[5][0] == 25
    nan = diagnose(falling[:5] + [(25, float("nan"))] + falling[6:])
    assert nan.state == "failed" and nan.evidence["nan_step"] == 25
    assert nan.reason == "the training loss became NaN/inf at step 25: the weights blew up."
    assert falling[9][0] == 45
    assert diagnose(falling[:10], interrupted=True).notes[0] == "run was interrupted at step 45: judgement is provisional"
    assert diagnose(falling[:10], max_steps=100, interrupted=True).notes[0] == \
        "run was interrupted at step 45 of 100: judgement is provisional"


@pytest.mark.parametrize("steps,lr,expected", [
    ([0, 5, 10], [(0, 1.0), (10, 1.0)], [0.0, 0.5, 1.0]),  # a constant rate: learning done is the steps' share
    ([0, 2, 4], [(0, 1.0), (4, 0.0)], [0.0, 1.25 / 1.5, 1.0]),  # a falling rate: rates 1, .75, .5, .25, 0 summed
    ([1, 2, 3], [(0, 1e-4)], [1.0, 2.0, 3.0]),  # one logged rate is no schedule: the steps themselves
    ([1, 2, 3], [(0, 0.0), (3, 0.0)], [1.0, 2.0, 3.0]),  # no learning done at all: the steps
])
def test_progress_is_the_learning_rate_summed_up_as_a_share(steps, lr, expected):
    assert diagnosis.progress(steps, lr) == pytest.approx(expected)


def test_tail_trend_fits_the_second_half_by_hand():
    x = [0, 1, 2, 3, 4]
    change, next_run, t = diagnosis.tail_trend(x, [2 - 0.5 * v for v in x], 2)  # exact line: slope -0.5 over x 2..4
    assert (change, next_run, t) == (pytest.approx(-1.0), pytest.approx(-2.0), -999.0)  # no noise: t clipped at -999
    assert diagnosis.tail_trend(x, [0.5 * v for v in x], 2)[2] == 999.0
    y = [1.0, 0.8, 0.7, 0.5, 0.52, 0.41, 0.40]
    xs = list(range(7))  # the second half: x 3..6 (four points)
    slope, icept = np.polyfit(xs[3:], y[3:], 1)
    resid = np.asarray(y[3:]) - (slope * np.asarray(xs[3:]) + icept)
    se = math.sqrt((resid ** 2).sum() / 2 / ((np.asarray(xs[3:]) - 4.5) ** 2).sum())
    assert diagnosis.tail_trend(xs, y, 2) == (pytest.approx(slope * 3), pytest.approx(slope * 6), pytest.approx(slope / se))
    two = diagnosis.tail_trend([0, 1], [1.0, 0.5], 2)  # two points: no degrees of freedom, the slope's sign is all
    assert two == (pytest.approx(-0.25), pytest.approx(-0.5), -999.0)
    assert diagnosis.tail_trend([3, 3], [1.0, 0.5], 2) == (0.0, 0.0, 0.0)  # no time passed: no trend


def test_failed_reason_at_its_boundaries():
    def tr(end, gave_back=0.0):
        return diagnosis.TrainCurve(1.0, end, min(end, 0.5), 10, gave_back, 0.0, False)

    assert diagnosis.failed_reason(tr(0.95), None) is None  # exactly 5 % below the start passes
    assert diagnosis.failed_reason(tr(0.96), None) == "train loss 1 → 0.96: not even 5% below where it started."
    assert diagnosis.failed_reason(tr(0.9, gave_back=0.49), None) is None
    assert diagnosis.failed_reason(tr(0.9, gave_back=0.5), None) == \
        "train loss 1 → 0.9 after reaching 0.5 at step 10: it climbed back by 50% of its improvement."
    up = diagnosis.EvalCurve(1.0, 0.9, 5, 1.3, 0.05, 0.0, False, False)
    flat = diagnosis.EvalCurve(1.0, 0.9, 5, 1.05, 0.05, 0.0, False, False)  # at its start plus the tolerance: not "above"
    assert diagnosis.failed_reason(tr(0.96), up).endswith("; eval loss also ended above its start (1 → 1.3).")
    assert diagnosis.failed_reason(tr(0.96), flat).endswith("below where it started.")


def test_the_notes_the_observation_and_the_train_only_reasons_word_for_word():
    few = f"few eval points (n={{}} < {diagnosis.FEW_EVAL_POINTS}): low confidence"
    assert diagnosis.eval_notes(0) == [diagnosis.NO_EVAL_NOTE]
    assert diagnosis.eval_notes(1) == [few.format(1), diagnosis.NO_EVAL_NOTE]
    assert diagnosis.eval_notes(2) == [few.format(2)] and diagnosis.eval_notes(3) == []
    assert Diagnosis("unknown", "").observation() == "no curve yet"
    steps = log_steps(40)
    train = pts(steps, 0.5 + np.exp(-np.asarray(steps) / 20.0))
    later = diagnose(train, [(10, 1.2), (20, 0.9), (30, 0.8), (40, 0.75)])  # no evaluation before the first step
    assert later.observation().endswith("; eval loss 1.2 at the first evaluation → lowest 0.75 (step 40) → 0.75 at step 40")
    assert later.evidence["last_step"] == 40 and diagnose(train, last_step=45).evidence["last_step"] == 45
    curve = diagnosis.TrainCurve(1.0, 0.5, 0.5, 40, 0.0, 0.25, True)
    assert diagnosis.judge_train_only(curve) == ("underfitting", "train loss 1 → 0.5, still falling at the end (25% of "
                                                 "the drop came in the second half); no eval curve to confirm.")
    flat = diagnosis.TrainCurve(1.0, 0.5, 0.5, 40, 0.0, 0.04, False)
    assert diagnosis.judge_train_only(flat) == ("converged", "train loss 1 → 0.5, flat at the end (4% of the drop in "
                                                "the second half); no eval curve to confirm.")


def test_an_evaluation_before_training_is_left_out_of_the_still_falling_rule_from_three_evaluations_on():
    """The step-0 evaluation shows where the model started; with three evaluations it already drops out of the
    trend, so the big first fall does not make the later fall look small."""
    steps = log_steps(40)
    train = pts(steps, 0.5 + np.exp(-np.asarray(steps) / 20.0))
    three = [(0, 1.52), (20, 0.60), (40, 0.40)]
    with_start = diagnose(train, three).evidence["eval_tail_share"]
    assert with_start == pytest.approx(diagnose(train, three[1:]).evidence["eval_tail_share"])
    ev = diagnose(train, three).evidence
    assert (ev["eval_min_step"], ev["eval_last_step"], ev["n_eval"]) == (40, 40, 3)
