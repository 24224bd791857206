"""The lesson's knobs are defined once (helpers/knobs.py); sft(), the CLI, the argv and the runs table follow it."""

import inspect

import pytest

from helpers import cli, history, knobs, models, swift_runner, training
from helpers.swiftlog import LogState


def test_the_table_holds_the_lessons_six_knobs_and_their_ms_swift_4_flags():
    assert knobs.NAMES == ("learning_rate", "lora_rank", "num_train_epochs", "batch_size", "max_length", "eval_steps")
    assert knobs.FLAGS["batch_size"] == "per_device_train_batch_size"  # the lesson's name, swift 4.x's flag
    assert [k for k, flag in knobs.FLAGS.items() if flag != k] == ["batch_size"]


def test_sft_takes_the_knobs_in_table_order_with_the_tables_defaults_and_documents_them():
    params = list(inspect.signature(training.sft).parameters.values())
    assert [p.name for p in params[2:8]] == list(knobs.NAMES)  # sft(model, dataset, learning_rate, ...)
    assert {p.name: p.default for p in params[2:8]} == {"learning_rate": 1e-4, "lora_rank": 8, "num_train_epochs": 1,
                                                        "batch_size": 8, "max_length": 512, "eval_steps": 20}
    for knob in knobs.KNOBS:
        assert f"{knob.name} (--{knob.flag}, default" in training.sft.__doc__


def test_the_cli_offers_every_knob_with_its_type_and_default():
    sub = next(a for a in cli.build_parser()._actions if a.dest == "verb").choices["sft"]
    options = {a.dest: a for a in sub._actions}
    for knob in knobs.KNOBS:
        assert options[knob.name].type is knob.kind and options[knob.name].default == knob.default, knob.name
        assert knob.flag in options[knob.name].help
    args = sub.parse_args(["--learning_rate", "5e-5", "--batch_size", "16"])
    assert (args.learning_rate, args.batch_size, args.eval_steps) == (5e-5, 16, 20)


def test_the_argv_carries_each_knob_as_its_swift_flag(tmp_path):
    model = models.Model("m", tmp_path / "model", "llama", "chatml", 0.1, False)
    params = knobs.check(5e-5, 4, 3.0, 16, 512, 20)
    argv = swift_runner.sft_command(model, tmp_path / "train.jsonl", None, params, tmp_path / "out")
    text = " ".join(argv)
    for piece in ("--learning_rate 5e-5", "--lora_rank 4", "--num_train_epochs 3", "--per_device_train_batch_size 16",
                  "--max_length 512", "--eval_steps 20", "--save_steps 20", "--per_device_eval_batch_size 16"):
        assert piece in text, piece


def test_check_takes_the_knobs_by_position_or_name_and_names_what_is_wrong():
    by_position = knobs.check(1e-4, 8, 2.0, 8, 256, 5)
    assert by_position == knobs.check(learning_rate=1e-4, lora_rank=8, num_train_epochs=2, batch_size=8,
                                      max_length=256, eval_steps=5)
    assert type(by_position["num_train_epochs"]) is int and knobs.check(1e-4, 8, 1.5, 8, 256, 5)["num_train_epochs"] == 1.5
    with pytest.raises(TypeError, match="missing: eval_steps"):
        knobs.check(1e-4, 8, 1, 8, 256)
    with pytest.raises(TypeError, match="given twice: learning_rate"):
        knobs.check(1e-4, 8, 1, 8, 256, 5, learning_rate=1e-3)
    with pytest.raises(TypeError, match="unknown: lr"):
        knobs.check(1e-4, 8, 1, 8, 256, 5, lr=1e-3)
    with pytest.raises(ValueError, match="learning_rate=10 is absurd"):
        knobs.check(10, 8, 1, 8, 256, 5)
    with pytest.raises(ValueError, match=r"max_length=15 must be >= 16.*max_length=512"):
        knobs.check(1e-4, 8, 1, 8, 15, 5)
    assert knobs.check(1e-4, 8, 1, 8, 16, 5)["max_length"] == 16  # its bound is inclusive


def test_the_runs_table_has_a_column_for_every_knob():
    assert history.PARAM_KEYS[:len(knobs.NAMES)] == list(knobs.NAMES)


def test_pick_best_takes_the_finished_run_with_the_lowest_eval_loss_and_a_checkpoint(tmp_path):
    """The one best-run choice (notebook 03 and the rehearsal use it): a failed or interrupted run, or one with no
    checkpoint kept, never takes the exam, however low its eval loss."""
    from types import SimpleNamespace

    def run(label, status, evals, checkpoint=True):
        return SimpleNamespace(label=label, status=status, best_checkpoint=tmp_path / label if checkpoint else None,
                               curves=lambda: LogState(path=label, evals=evals))

    runs = [run("a", "finished", [(0, 1.5), (20, 0.30)]), run("b", "finished", [(0, 1.5), (20, 0.20), (40, 0.25)]),
            run("c", "interrupted", [(0, 1.5), (20, 0.10)]), run("d", "finished", [(0, 1.5), (20, 0.05)], checkpoint=False),
            run("e", "finished", [])]
    assert history.pick_best(runs).label == "b"  # its minimum 0.20 counts, not its last 0.25
    with pytest.raises(ValueError, match="no run finished"):
        history.pick_best(runs[2:])
