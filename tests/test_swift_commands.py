"""Every command the course builds uses flags that the installed ms-swift really has."""

import dataclasses
import typing
from pathlib import Path

import pytest

from helpers import knobs, models, swift_runner, tracks
from helpers.data import resolve_dataset


def _flags(args):
    return [a[2:] for a in args if a.startswith("--")]


@pytest.mark.parametrize("track", ["gpu", "cpu", "ci"])
def test_every_experiment_command_uses_real_sft_flags(track, tmp_path):
    model = models.lesson_model(Path("model")) if track == "gpu" else models.get_model("embedded")
    known = swift_runner.known_flags("sft")
    for e in tracks.experiments(track):
        params = dict(e.params)
        checked = knobs.check(**{k: params.pop(k) for k in knobs.NAMES})
        dataset = params.pop("dataset")
        extra = {k: v for k, v in params.items() if k not in ("train_rows", "val_rows", "resume_from")}  # sft() options
        if "resume_from" in params:  # sft() turns it into this flag
            extra["resume_from_checkpoint"] = tmp_path / "exp4" / "checkpoint-1"
        args = swift_runner.sft_command(model, resolve_dataset(dataset), resolve_dataset("val"), checked,
                                        tmp_path / f"exp{e.number}", extra)
        missing = [f for f in _flags(args) if f not in known]
        assert not missing, f"{track} experiment {e.number}: ms-swift has no {missing}"


def test_a_list_value_is_a_flag_with_several_values():
    from swift.arguments import SftArguments

    args = swift_runner.sft_command(models.get_model("embedded"), resolve_dataset("train_100"), None,
                                    knobs.check(**{k: tracks.LESSON[1][k] for k in knobs.NAMES}), Path("out"),
                                    {"callbacks": ["ftlab_cpu_bf16", "ftlab_compile_layers"], "use_cpu": True})
    i = args.index("--callbacks")
    assert args[i + 1:i + 5] == ["ftlab_cpu_bf16", "ftlab_compile_layers", "--use_cpu", "true"]
    fields = {f.name: f for f in dataclasses.fields(SftArguments)}
    assert all(typing.get_origin(fields[k].type) is list for k in ("callbacks", "external_plugins"))


def test_gpu_track_is_the_lessons_exact_command():
    model = models.lesson_model(Path("model"))
    e = tracks.experiments("gpu")[2]
    args = swift_runner.sft_command(model, resolve_dataset("train_100"), resolve_dataset("val"),
                                    knobs.check(**{k: e.params[k] for k in knobs.NAMES}),
                                    Path("output/gpu/003-exp3"))
    text = swift_runner.printable("sft", args)
    for piece in ("--learning_rate 5e-5", "--lora_rank 4", "--num_train_epochs 50",
                  "--per_device_train_batch_size 16", "--max_length 512", "--eval_steps 20",
                  "--model model --model_type qwen2 --template qwen2_5", "--check_model false"):
        assert piece in text, piece


def test_export_and_multi_gpu_flags_exist():
    known = swift_runner.known_flags("export")
    assert all(f in known for f in _flags(swift_runner.export_command(Path("output/x/checkpoint-5"))))
    assert all(f in swift_runner.known_flags("sft") for f in ("deepspeed", "fsdp"))


def test_renamed_lesson_flags_get_a_fix():
    with pytest.raises(ValueError, match=r"--eval_step \(renamed: use eval_steps\)"):
        swift_runner.check_flags(["eval_step"])
    with pytest.raises(ValueError, match="--ckpt_dir"):
        swift_runner.check_flags(["ckpt_dir"], "export")


@pytest.mark.parametrize("bad,match", [
    (dict(learning_rate=0), "must be > 0"),
    (dict(learning_rate=-1e-4), "must be > 0"),
    (dict(learning_rate="fast"), "not a number"),
    (dict(lora_rank=0), "must be > 0"),
    (dict(lora_rank=2.5), "whole number"),
    (dict(batch_size=0), "must be > 0"),
    (dict(num_train_epochs=float("nan")), "must be"),
    (dict(max_length=8), "must be >= 16"),
])
def test_bad_parameters_are_rejected_with_a_reason(bad, match):
    params = dict(learning_rate=1e-4, lora_rank=8, num_train_epochs=1, batch_size=8, max_length=512, eval_steps=20)
    with pytest.raises(ValueError, match=match):
        knobs.check(**params | bad)


def test_printed_command_quotes_awkward_paths():
    text = swift_runner.printable("sft", ["--dataset", "p2_Build LLM Q&A System/data.jsonl"])
    assert "'p2_Build LLM Q&A System/data.jsonl'" in text


def test_multi_gpu_env_is_shown_in_the_command():
    text = swift_runner.printable("sft", ["--deepspeed", "zero2"], {"NPROC_PER_NODE": "4"})
    assert text.startswith("NPROC_PER_NODE=4 swift sft") and "--deepspeed zero2" in text


@pytest.mark.parametrize("track", ["cpu", "ci"])
def test_experiment_5_goes_on_down_experiment_4s_learning_rate(track):
    """Experiment 4 is the first epoch; experiment 5 resumes it with swift's default schedule over all its epochs.
    The learning rates transformers computes for the two schedules agree step by step: no warm restart."""
    import json

    import torch
    from transformers import get_cosine_schedule_with_warmup

    exp4, exp5 = (e.params for e in tracks.experiments(track)[3:5])
    assert exp5["resume_from"] == "exp4" and "lr_scheduler_kwargs" not in exp5
    assert exp4["num_train_epochs"] == 1 and exp5["num_train_epochs"] == tracks.EXP5_EPOCHS >= 2

    def rates(steps, **kwargs):
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
        sched = get_cosine_schedule_with_warmup(opt, 0, steps, **kwargs)
        out = []
        for _ in range(steps):
            out.append(sched.get_last_lr()[0])
            opt.step()
            sched.step()
        return out

    first = rates(125, **json.loads(exp4["lr_scheduler_kwargs"]))
    whole = rates(125 * tracks.EXP5_EPOCHS)
    assert first == pytest.approx(whole[:125], abs=1e-12)
    assert whole[125] < first[-1] and whole[-1] < 1e-4  # experiment 5 carries on falling, to about zero


def test_the_experiment_table_shows_the_lessons_knobs_and_folds_the_plumbing():
    exp4 = tracks.experiments("cpu")[3]
    html = exp4._repr_html_()
    shown, _, folded = html.partition("<details>")
    for knob in ("learning_rate", "lora_rank", "num_train_epochs", "batch_size", "max_length", "eval_steps",
                 "dataset", "train_rows" if "train_rows" in exp4.params else "lr_scheduler_kwargs"):
        assert f"<td>{knob}</td>" in shown, knob
    for plumbing in ("dataloader_num_workers", "gradient_checkpointing", "lora_dropout"):
        assert plumbing in folded and plumbing not in shown, plumbing


def test_experiment_6_is_the_best_runs_knobs_on_the_calculator_data():
    from helpers import tracks

    e4, e6 = tracks.experiments("cpu")[3].params, tracks.calculator_experiment("cpu").params
    for knob in ("learning_rate", "lora_rank", "batch_size", "eval_steps", "max_length", "val_rows"):
        assert e6[knob] == e4[knob], knob
    assert (e6["dataset"], e6["val_dataset"], e6["num_train_epochs"]) == ("train_1k_calc", "val_calc", 1)
    assert "lr_scheduler_kwargs" not in e6  # one whole schedule, down to 0 at its last step
    gpu = tracks.calculator_experiment("gpu").params
    assert {k: v for k, v in gpu.items() if k not in ("dataset", "val_dataset")} == \
        {k: v for k, v in tracks.LESSON[4].items() if k != "dataset"}
    assert gpu["dataset"] == "train_1k_calc"


def test_start_from_is_checked_before_anything_starts(tmp_path, monkeypatch):
    """start_from (experiment 6 on the cpu track) takes a run's best adapter; with resume_from, or naming no run,
    the call stops with one sentence and nothing is written."""
    from helpers import paths, training

    monkeypatch.setattr(paths, "OUTPUT_DIR", tmp_path / "output")
    p = tracks.experiments("ci")[1].params
    with pytest.raises(ValueError, match="resume_from and start_from together"):
        training.sft(**p, resume_from="exp4", start_from="exp5", show=False)
    with pytest.raises(ValueError, match="start_from='exp5': no finished ci-track run has that label"):
        training.sft(**p, start_from="exp5", show=False)
    with pytest.raises(ValueError, match="start_from: .* is not a training checkpoint"):
        training.sft(**p, start_from=tmp_path, show=False)
    assert not (tmp_path / "output").exists() or not any((tmp_path / "output").rglob("ftlab_run.json"))
