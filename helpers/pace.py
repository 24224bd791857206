"""How fast this machine trains and examines, and so how long the lab will take here.

The lab's time is mostly training steps and exam answers, and both scale with how fast the processor does
one step of the same work. So the estimate is a recorded run of the whole lab notebook, scaled:

- `measure()` times a short piece of the lab's own work on the embedded model: two LoRA training steps (rank 8,
  8 rows of the training data each, AdamW) in the mode the cpu track trains in here (bf16 with the LoRA sums
  in fp32, or fp32), and an fp32 forward pass (exams answer in fp32), each after a warm-up. About 30 s on 2 cores.
- Every timed run of the lab (tools/record_lab_run.py) keeps
  its training time, the rest of its time and the same measurement, made on its machine just before it ran,
  in resources/recordings/lab_timing.json.
- `estimate()` = recorded training time x (training step here / there) + the rest x (forward pass here / there),
  from the recording of the same mode where there is one.

A host that is busier than when it was recorded measures slower, so the estimate follows it too.
"""

from __future__ import annotations

import importlib.util
import json
import time
from dataclasses import asdict, dataclass

from . import paths, swiftlog

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


def measure(bf16: bool, steps: int = 1) -> Pace:
    """Time `steps` training steps on real rows (after one warm-up) in the cpu track's mode, and an fp32 forward pass."""
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
    t0 = time.perf_counter()
    for ids, labels in batches[1:]:
        step(ids, labels)
    pace = Pace(mode, (time.perf_counter() - t0) / steps, forward, torch.get_num_threads())
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

    def __str__(self) -> str:
        return (f"about {self.seconds / 60:.0f} min on this machine ({self.pace.mode}; a measured training step took "
                f"{self.pace.train_step_s:.1f} s here; scaled from {self.basis})")


def experiments(run: dict) -> int:
    """How many experiments a timed run of the lab had (runs timed before experiment 6 do not say: five)."""
    return run.get("experiments", 5)


def scale(run: dict, pace: Pace) -> float:
    """A timed run's time on a machine that measures `pace`: training by the training step, the rest by the forward pass."""
    there = run["pace"]
    return (run["training_s"] * pace.train_step_s / there["train_step_s"]
            + run["other_s"] * pace.forward_s / there["forward_s"])


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


def estimate(bf16: bool, runs: list[dict] | None = None) -> Estimate | None:
    """How long the whole lab notebook will take here on the cpu track, or None with nothing to scale.

    Scales the newest timed run of the same mode (else of the other mode) by this machine's measured pace, among the
    runs of today's lab (those with the most experiments: a run of an earlier, shorter lab would undershoot); with no
    timed run yet, the recorded run of notebook 03, all of it by the ratio of a measured step here to swift's own
    seconds per step in that run's experiment 4 (on one machine, swift's step took 1.14x the measured one: 7.48 s
    against 6.59 s in the fp32 run of 2026-12-01; tools/record_lab_run.py prints both).
    """
    runs = timings() if runs is None else runs
    mode = "bf16" if bf16 else "fp32"
    most = max((experiments(r) for r in runs), default=0)
    runs = [r for r in runs if experiments(r) == most]
    basis = ([r for r in runs if r["pace"]["mode"] == mode] or runs or [None])[-1]
    fallback = recorded_run() if basis is None else None
    if basis is None and fallback is None:
        return None
    pace = measure(bf16)
    if basis is not None:
        return Estimate(scale(basis, pace), pace, f"the timed {basis['pace']['mode']} run of {basis['date']} "
                                                  f"({experiments(basis)} experiments), "
                                                  f"{basis['wall_time_s'] / 60:.0f} min where a step took "
                                                  f"{basis['pace']['train_step_s']:.1f} s")
    ratio = pace.train_step_s / fallback["swift_step_s"]
    return Estimate(fallback["wall_time_s"] * ratio, pace,
                    f"the recorded run of {fallback['date']}, {fallback['wall_time_s'] / 60:.0f} min where swift took "
                    f"{fallback['swift_step_s']:.1f} s a step")
