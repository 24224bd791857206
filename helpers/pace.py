"""How fast this machine trains and examines, and so how long the lab will take here.

The lab's time is mostly training steps and exam answers, and both scale with how fast the processor does
one step of the same work. So the estimate is a recorded run of the whole lab notebook, scaled:

- `measure()` times a short piece of the lab's own work on the embedded model: LoRA training steps (rank 8,
  8 rows of the training data each, AdamW) in the mode the cpu track trains in here (bf16 with the LoRA sums
  in fp32, or fp32), and an fp32 forward pass (exams answer in fp32), each after a warm-up. A training step is the
  median of three: on a shared host one step's time swung between 2.6 and 23 s within minutes (2026-12-04), and one
  slow step alone would move the whole estimate. About 40 s on 2 cores.
- Every timed run of the lab (tools/record_lab_run.py) keeps
  its training time, the rest of its time and the same measurement, made on its machine just before it ran,
  in resources/recordings/lab_timing.json.
- `estimate()` = recorded training time x (training step here / there) x (today's training work / the timed run's)
  + the rest x (forward pass here / there) x (today's exam tokens / the timed run's), from the timed run of the same
  mode where there is one. The work is counted from the plan (`lab_work()`: steps, evaluations, the exams'
  questions x answer tokens), so a lab whose design changed is still estimated from a run of the earlier design.
- `lab_budget()`: that estimate per experiment and for the exams, a table to read before starting the lab.

A host that is busier than when it was recorded measures slower, so the estimate follows it too.
"""

from __future__ import annotations

import importlib.util
import json
import statistics
import time
from dataclasses import asdict, dataclass

from . import data, paths, swiftlog, tracks

TIMINGS = paths.RECORDINGS_DIR / "lab_timing.json"  # beside the track folders: a new recording moves cpu/ aside
BATCH, RANK = 8, 8  # the measured step: a cpu-track step (8 rows of the training data, LoRA rank 8)
_measured: dict[str, Pace] = {}  # one measurement per mode and kernel: a learner re-running the cell waits once


@dataclass
class Pace:
    mode: str  # "bf16" (bf16 products, LoRA sums in fp32, eager attention) or "fp32"
    train_step_s: float  # one LoRA training step on BATCH rows of the training data, in that mode
    forward_s: float  # one fp32 forward pass of those rows (exams answer in fp32)
    threads: int

    def to_json(self) -> dict:
        return {k: round(v, 3) if isinstance(v, float) else v for k, v in asdict(self).items()}


def _lora_fp32():
    spec = importlib.util.spec_from_file_location("ftlab_lora_fp32", paths.SWIFT_PLUGINS / "lora_fp32.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _batches(tokenizer, n_batches: int) -> list:
    """The first BATCH x n_batches rows of the cpu track's training data, as training sees them (padded per batch)."""
    import torch

    lines = (paths.DATA_DIR / "train_1k.jsonl").read_text(encoding="utf-8").splitlines()[: BATCH * n_batches]
    batches = []
    for b in range(n_batches):
        rows = [tokenizer.apply_chat_template(json.loads(ln)["messages"], tokenize=True) for ln in
                lines[b * BATCH:(b + 1) * BATCH]]
        rows = [r["input_ids"] if hasattr(r, "keys") else r for r in rows]
        width = max(map(len, rows))
        ids = torch.tensor([r + [0] * (width - len(r)) for r in rows])
        labels = torch.tensor([r + [-100] * (width - len(r)) for r in rows])
        batches.append((ids, labels))
    return batches


def measure(bf16: bool, steps: int = 3) -> Pace:
    """Time `steps` training steps on real rows (after one warm-up) in the cpu track's mode, each on its own, and an
    fp32 forward pass; the pace's step is their median."""
    mode = "bf16" if bf16 else "fp32"
    if mode in _measured:
        return _measured[mode]
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    folder = paths.embedded_model_dir()
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{paths.short(folder)} is missing. Fix: run `make setup` first.")
    hf_logging.disable_progress_bar()
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        # the cpu track's attention: eager with bf16 (its fused bf16 backward is slow on a CPU), the default else
        lm = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32,
                                                  attn_implementation="eager" if bf16 else "sdpa")
        batches = _batches(AutoTokenizer.from_pretrained(folder), steps + 1)
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()
    lm.eval()
    with torch.inference_mode():
        lm(input_ids=batches[0][0])  # warm-up
        t0 = time.perf_counter()
        lm(input_ids=batches[1][0])
        forward = time.perf_counter() - t0
    model = get_peft_model(lm, LoraConfig(r=RANK, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear",
                                          task_type="CAUSAL_LM"))
    if bf16:
        _lora_fp32().keep_lora_sums_in_fp32(model)
    model.train()
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def step(ids, labels):
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(input_ids=ids, labels=labels).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    step(*batches[0])  # warm-up
    seconds = []
    for ids, labels in batches[1:]:
        t0 = time.perf_counter()
        step(ids, labels)
        seconds.append(time.perf_counter() - t0)
    pace = Pace(mode, statistics.median(seconds), forward, torch.get_num_threads())
    _measured[mode] = pace
    return pace


def timings() -> list[dict]:
    """The timed runs of the lab kept with the course (oldest first); [] when there are none."""
    try:
        return json.loads(TIMINGS.read_text(encoding="utf-8"))["runs"]
    except (OSError, ValueError, KeyError):
        return []


@dataclass
class Estimate:
    seconds: float
    pace: Pace
    basis: str  # the timed run it scales, in words
    training_s: float | None = None  # of `seconds`, the training (when scaled from a timed run)

    def __str__(self) -> str:
        return (f"about {self.seconds / 60:.0f} min on this machine ({self.pace.mode}; a measured training step took "
                f"{self.pace.train_step_s:.1f} s here; scaled from {self.basis})")


def experiments(run: dict) -> int:
    """How many experiments a timed run of the lab had (runs timed before experiment 6 do not say: five)."""
    return run.get("experiments", 5)


def recorded_run() -> dict | None:
    """The recorded lab run whose outputs notebook 03 stores, as a timed run without a measured pace: its date, its
    wall time and swift's own seconds per step in its experiment 4 (a full epoch of cpu-track steps)."""
    rec = paths.RECORDINGS_DIR / "cpu"
    try:
        cells = json.loads((rec / "notebook_run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    summary = next((r for r in swiftlog.rows(rec / "exp4" / "logging.jsonl") if "train_runtime" in r), None)
    if summary is None:
        return None
    steps = swiftlog.step_of(summary)[0]
    return {"date": cells["date"], "wall_time_s": cells["wall_time_s"], "swift_step_s": summary["train_runtime"] / steps}


# What a training run costs, in training steps of BATCH rows: an evaluated row is a forward pass, about a third of a
# trained row (a forward and a backward pass); starting swift and loading the model cost about three steps.
EVAL_BATCH_STEPS, START_STEPS = 1 / 3, 3


def row_tokens(dataset: str, rows: int | None = None) -> list[int]:
    """Each row's length in tokens as training sees it (the embedded model's chat template), the first `rows` rows."""
    from transformers import AutoTokenizer

    key = (dataset, rows)
    if key not in _tokens:
        if "tokenizer" not in _tokens:
            _tokens["tokenizer"] = AutoTokenizer.from_pretrained(paths.embedded_model_dir())
        tok = _tokens["tokenizer"]
        out = []
        for row in data.read_rows(data.resolve_dataset(dataset))[:rows]:
            ids = tok.apply_chat_template(row["messages"], tokenize=True)
            out.append(len(ids["input_ids"] if hasattr(ids, "keys") else ids))
        _tokens[key] = out
    return _tokens[key]


_tokens: dict = {}


def experiment_work(params: dict, done_steps: int = 0) -> dict:
    """One experiment's work from its parameters: optimizer steps, evaluations, row passes and tokens (training and
    evaluation), and its cost in training steps. `done_steps`: the steps of the run it resumes (not done again)."""
    import math

    train = row_tokens(params["dataset"], params.get("train_rows"))
    val = row_tokens(params.get("val_dataset", "val"), params.get("val_rows"))
    batch = params["batch_size"]
    per_epoch = math.ceil(len(train) / batch)
    total = per_epoch * params["num_train_epochs"]
    steps = total - done_steps
    evals = total // params["eval_steps"] - done_steps // params["eval_steps"] + (0 if done_steps else 1)
    epochs = steps / per_epoch
    return {"steps": steps, "evals": evals, "total_steps": total,
            "train_rows": round(len(train) * epochs), "train_tokens": round(sum(train) * epochs),
            "eval_rows": evals * len(val), "eval_tokens": evals * sum(val),
            # in training steps of BATCH rows (the measured step): a step of 4 rows costs about half of one of 8
            "cost_steps": round((len(train) * epochs + evals * len(val) * EVAL_BATCH_STEPS) / BATCH + START_STEPS, 1)}


# ---- what the model computes: every row of a batch padded to the batch's longest (issue 40)

SWIFT_DATA_SEED = 42  # ms-swift's --data_seed default: its loader's shuffle and its batch sampler both start from it


def swift_lengths(dataset: str, rows: int | None = None) -> list[int]:
    """Each row's length as `swift sft` encodes it for training (the embedded model, swift's chatml template, train
    mode), in file order: the lengths its length-grouped sampler sorts by and its collator pads to."""
    key = ("swift", dataset, rows)
    if key not in _tokens:
        from .swift_runner import swift_template

        template = swift_template(paths.embedded_model_dir(), "llama", "chatml")
        template.set_mode("train")
        _tokens[key] = [len(template.encode(row)["input_ids"])
                        for row in data.read_rows(data.resolve_dataset(dataset))[:rows]]
    return _tokens[key]


def swift_load_order(dataset: str, rows: int | None = None, seed: int = SWIFT_DATA_SEED) -> list[int]:
    """The file rows in the order `swift sft` holds its training set: its own loader shuffles the file once
    (--dataset_shuffle, from --data_seed), before any sampler. Read from ms-swift's loader itself, on a copy of the
    rows, each found again by its messages."""
    import tempfile

    from swift.dataset import load_dataset

    key = ("order", dataset, rows, seed)
    if key not in _tokens:
        file_rows = data.read_rows(data.resolve_dataset(dataset))[:rows]
        where: dict[str, list[int]] = {}
        for i, row in enumerate(file_rows):
            where.setdefault(json.dumps(row["messages"], sort_keys=True), []).append(i)
        with tempfile.TemporaryDirectory() as tmp:
            copy = f"{tmp}/rows.jsonl"
            with open(copy, "w", encoding="utf-8") as f:
                f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in file_rows)
            loaded, _ = load_dataset(copy, split_dataset_ratio=0.0, shuffle=True, seed=seed, num_proc=1,
                                     load_from_cache_file=False)
        order = []
        for row in loaded:
            messages = [{k: m[k] for k in ("role", "content")} for m in row["messages"]]
            order.append(where[json.dumps(messages, sort_keys=True)].pop(0))
        _tokens[key] = order
    return _tokens[key]


def batch_order(params: dict, seed: int = SWIFT_DATA_SEED) -> list[list[int]]:
    """Every training step's rows (file row numbers), epoch after epoch, as ms-swift 4.6 batches them: its loader's
    order, then its BatchSamplerShard (a permutation per epoch from data_seed + epoch, or transformers' length-grouped
    megabatches with --group_by_length)."""
    from swift.dataloader import BatchSamplerShard

    order = swift_load_order(params["dataset"], params.get("train_rows"), seed)
    lengths = swift_lengths(params["dataset"], params.get("train_rows"))
    grouped = bool(params.get("group_by_length"))
    sampler = BatchSamplerShard(len(order), params["batch_size"], shuffle=True, drop_last=False, data_seed=seed,
                                group_by_length=grouped, lengths=[lengths[i] for i in order] if grouped else None)
    steps = []
    for epoch in range(params["num_train_epochs"]):
        sampler.set_epoch(epoch)
        steps += [[order[i] for i in batch] for batch in sampler]
    return steps


def computed_work(params: dict, done_steps: int = 0) -> dict:
    """The tokens the model computes in one experiment, padding included: its training steps as `batch_order` makes
    them (the steps of the run it resumes not done again) and its evaluations (ungrouped: the validation rows in file
    order, batches of the same size). -> {"train_computed", "eval_computed", "train_real"}"""
    lengths = swift_lengths(params["dataset"], params.get("train_rows"))
    steps = batch_order(params)[done_steps:]
    val = swift_lengths(params.get("val_dataset", "val"), params.get("val_rows"))
    size = params["batch_size"]
    one_eval = sum(len(val[i:i + size]) * max(val[i:i + size]) for i in range(0, len(val), size))
    evals = experiment_work(params, done_steps)["evals"]
    return {"train_computed": sum(len(b) * max(lengths[i] for i in b) for b in steps),
            "train_real": sum(lengths[i] for b in steps for i in b),
            "eval_computed": evals * one_eval}


def plan_computed(plan: list[tuple[str, dict]]) -> list[dict]:
    """computed_work for each (label, params) of a plan, a resumed run counting only its own steps (plan_work's)."""
    return [{"label": w["label"], **computed_work(params, w["total_steps"] - w["steps"])}
            for (_, params), w in zip(plan, plan_work(plan))]


def plan_work(plan: list[tuple[str, dict]]) -> list[dict]:
    """experiment_work for each (label, params) of a plan; a run that resumes another counts only its own steps."""
    out, steps = [], {}
    for label, params in plan:
        w = experiment_work(params, steps.get(params.get("resume_from"), 0))
        steps[label] = w["total_steps"]
        out.append({"label": label, **w})
    return out


def exam_work(exams: list[tuple]) -> list[dict]:
    """(what, dataset, questions (None: all), answer tokens[, answers per question]) -> how many answers each exam
    generates and the tokens it may generate."""
    out = []
    for what, dataset, limit, max_new, *per in exams:
        n = len(data.read_rows(data.resolve_dataset(dataset))[:limit]) * (per[0] if per else 1)
        out.append({"what": what, "questions": n, "max_new_tokens": max_new, "tokens": n * max_new})
    return out


def lab_work(track: str = "cpu") -> dict:
    """Today's lab on a track, counted from its plan and its data (tracks.lab_plan, tracks.lab_exams)."""
    experiments_ = plan_work(tracks.lab_plan(track))
    exams = exam_work(tracks.lab_exams(track))
    return {"experiments": experiments_, "exams": exams, "totals": totals(experiments_, exams)}


def totals(experiments_: list[dict], exams: list[dict]) -> dict:
    return {"train_tokens": sum(e["train_tokens"] + e["eval_tokens"] for e in experiments_),
            "cost_steps": round(sum(e["cost_steps"] for e in experiments_), 1),
            "exam_tokens": sum(e["tokens"] for e in exams)}


def scaled(basis: dict, pace: Pace, work: dict | None = None) -> tuple[float, float]:
    """(training seconds, other seconds) of `work` here, from a timed run: by its pace, and by the work it did where it
    says (runs timed before the work was counted are scaled as they are)."""
    there = basis["pace"]
    train = basis["training_s"] * pace.train_step_s / there["train_step_s"]
    other = basis["other_s"] * pace.forward_s / there["forward_s"]
    done = basis.get("work")
    if work and done:
        train *= work["cost_steps"] / done["cost_steps"]
        other *= work["exam_tokens"] / done["exam_tokens"]
    return train, other


def estimate(bf16: bool, runs: list[dict] | None = None, work: dict | None = None) -> Estimate | None:
    """How long the whole lab notebook will take here on the cpu track, or None with nothing to scale.

    Scales the newest timed run of the same mode (else of the other mode) by this machine's measured pace and by
    today's work against the work that run did (`work`: lab_work()'s totals, counted here when not given), among
    the runs that say what work they did (else, those of the lab with the most experiments); with no timed run yet,
    the recorded run of notebook 03, all of it by the ratio of a measured step here to swift's own seconds per step in
    that run's experiment 4 (on one machine, swift's step took 1.14x the measured one: 7.48 s against 6.59 s in the
    fp32 run of 2026-12-01; tools/record_lab_run.py prints both).
    """
    runs = timings() if runs is None else runs
    mode = "bf16" if bf16 else "fp32"
    counted = [r for r in runs if r.get("work")]
    if counted:
        runs = counted
    else:
        most = max((experiments(r) for r in runs), default=0)
        runs = [r for r in runs if experiments(r) == most]
    basis = ([r for r in runs if r["pace"]["mode"] == mode] or runs or [None])[-1]
    fallback = recorded_run() if basis is None else None
    if basis is None and fallback is None:
        return None
    pace = measure(bf16)
    if basis is not None:
        if work is None and basis.get("work"):
            work = lab_work("cpu")["totals"]
        train, other = scaled(basis, pace, work)
        return Estimate(train + other, pace, f"the timed {basis['pace']['mode']} run of {basis['date']} "
                                            f"({experiments(basis)} experiments), "
                                            f"{basis['wall_time_s'] / 60:.0f} min where a step took "
                                            f"{basis['pace']['train_step_s']:.1f} s"
                                            + (", and the work it did" if work and basis.get("work") else ""),
                        train)
    ratio = pace.train_step_s / fallback["swift_step_s"]
    return Estimate(fallback["wall_time_s"] * ratio, pace,
                    f"the recorded run of {fallback['date']}, {fallback['wall_time_s'] / 60:.0f} min where swift took "
                    f"{fallback['swift_step_s']:.1f} s a step")


def lab_budget(track: str | None = None, bf16: bool | None = None) -> str:
    """The lab's work, experiment by experiment, and the minutes each will take here (the cpu track's estimate from a
    measured step; other tracks: the work only)."""
    from . import environment
    from .view import text_table

    track = track or environment.detect_track().name
    work = lab_work(track)
    est = None
    if track == "cpu":
        bf16 = environment.cpu_bf16()[0] if bf16 is None else bf16
        est = estimate(bf16, work=work["totals"])
    per_step = getattr(est, "training_s", 0) / work["totals"]["cost_steps"] if est else None
    rows = []
    for e, (title, _) in zip(work["experiments"], tracks.lab_plan(track, titles=True)):
        rows.append((title, e["steps"], e["evals"], f"{e['train_rows']:,}",
                     f"{e['cost_steps'] * per_step / 60:.1f}" if per_step else "-"))
    exams = work["exams"]
    exam_min = (est.seconds - est.training_s) / 60 if per_step else None
    rows.append((f"exams, merge, serving, GGUF ({sum(x['questions'] for x in exams)} answers of "
                 f"≤{max(x['max_new_tokens'] for x in exams)} tokens)", "", "", "",
                 f"{exam_min:.1f}" if exam_min is not None else "-"))
    rows.append(("the whole lab", sum(e["steps"] for e in work["experiments"]),
                 sum(e["evals"] for e in work["experiments"]), f"{sum(e['train_rows'] for e in work['experiments']):,}",
                 f"{est.seconds / 60:.0f}" if est else "-"))
    note = (f"\nEstimated here: {est}" if est else
            "\n(minutes are estimated on the cpu track only)")
    return text_table(rows, ["", "steps", "evaluations", "training rows", "minutes here"]) + note


def check_environment(show: bool = True):
    """environment.check_environment's table, and on the cpu track a last row: how long the lab will take here."""
    from . import environment

    rep = environment.check_environment(show=False)
    if rep.track.name == "cpu":
        rep.rows.append(("Lab estimate", lab_estimate(environment.cpu_bf16()[0])))
    return rep.show() if show else rep


def lab_estimate(bf16: bool) -> str:
    """How long the cpu-track lab will take here, from a measured step and a timed run, in words."""
    try:
        est = estimate(bf16)
    except (OSError, RuntimeError, ValueError) as e:  # no model yet, or a broken install: say so, never fail here
        return f"not measured ({e})"
    return str(est) if est else "not measured: the course has no timed run of the lab to scale"
