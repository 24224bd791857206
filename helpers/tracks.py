"""The lesson's five experiments, per track: the gpu track uses the lesson's exact values; the cpu
track scales them so each state still shows on SmolLM2-135M on 2 cores; the ci track runs every code
path in seconds (its scores mean nothing)."""

from __future__ import annotations

import html
import json
import os
import sys
from dataclasses import dataclass, field

from . import environment, swift_runner
from .view import table

# The lesson's values (section 3.3), the reference every track is compared with.
LESSON = [
    dict(learning_rate=0.1, lora_rank=4, num_train_epochs=1, batch_size=8, max_length=512, eval_steps=1, dataset="train_100"),
    dict(learning_rate=5e-5, lora_rank=4, num_train_epochs=1, batch_size=8, max_length=512, eval_steps=1, dataset="train_100"),
    dict(learning_rate=5e-5, lora_rank=4, num_train_epochs=50, batch_size=16, max_length=512, eval_steps=20, dataset="train_100"),
    dict(learning_rate=5e-5, lora_rank=8, num_train_epochs=3, batch_size=16, max_length=512, eval_steps=20, dataset="train_1k"),
    dict(learning_rate=5e-5, lora_rank=8, num_train_epochs=15, batch_size=16, max_length=512, eval_steps=20, dataset="train_1k"),
]
TITLES = [
    ("learning rate 0.1", "failed", "lower the learning rate a lot: 0.1 → 5e-5"),
    ("learning rate 5e-5", "underfitting", "train longer: 50 epochs, batch 16, evaluate every 20 steps"),
    ("50 epochs on 100 rows", "overfitting", "more data (1,000 rows), fewer epochs (3), LoRA rank 8"),
    ("1,000 rows, rank 8, 3 epochs", "underfitting", "train longer: 15 epochs"),
    ("15 epochs", "converged", "done: take best_model_checkpoint to the exam"),
]


CPU_BF16_PLUGIN = "helpers/swift_plugins/cpu_bf16.py"  # relative to the course folder, where swift runs
COMPILE_PLUGIN = "helpers/swift_plugins/compile_layers.py"
COMPILE_ENV = "FTLAB_COMPILE"  # =0: never compile the layers; =1: compile them on any CPU (the suite's code path)
COMPILED_EXPERIMENTS = (4, 5, 6)  # the long runs, where a compile (about 45 s) pays for itself


def cpu_speed_flags() -> dict:
    """ms-swift flags that make CPU training faster without changing what is learned (bench/bench_cpu_training.py).

    - gradient checkpointing off: it recomputes every layer's forward pass in the backward pass to save
      memory a 135 M model does not need;
    - LoRA dropout 0: drawing a random mask for the input of every LoRA layer took a fifth of each step
      on a CPU (the random-number generator runs on one core);
    (group_by_length, batching rows of similar length, was measured too and did not pay: left out;)
    - on macOS, the processor too (`use_cpu`): Apple's GPU (MPS) is not used, because ms-swift training on it
      was never tried here;
    - on a processor with AMX (bf16 matrix units) only, see environment.cpu_bf16: bf16 autocast for the matrix products,
      with the course's swift plugin (helpers/swift_plugins/cpu_bf16.py) so each LoRA update is added in
      fp32 (plain autocast rounds it away: eval loss +6 %), and eager attention (PyTorch's fused CPU
      attention is slow to differentiate in bf16). Where bf16 is emulated it is slower than fp32, so
      those machines stay in fp32.
    """
    flags = {"gradient_checkpointing": False, "lora_dropout": 0.0}
    if sys.platform == "darwin":  # transformers would train on Apple's GPU (MPS), a path this course has never tried
        flags["use_cpu"] = True
    if environment.cpu_bf16()[0] and environment.gpu_info() is None:  # never pin a run with a GPU to the CPU
        flags.update(fp16=False, bf16=True, use_cpu=True, attn_impl="eager",
                     external_plugins=CPU_BF16_PLUGIN, callbacks="ftlab_cpu_bf16")
    return flags


def compile_layers() -> tuple[bool, str]:
    """Do the cpu track's long runs (experiments 4-6) compile their decoder layers here? Where bf16 is native (AMX):
    measured on a 2-core Xeon with AMX (bench/bench_cpu_training.py --steps 12 --rows 96, 2026-12-03), the cpu track
    with compiled layers made 4.09x the steps of ms-swift's defaults from step 2 on, against 2.04-2.25x without, and
    the first compile took about 45 s (torch's compile cache, shared by the runs of one machine, shortens the next
    runs' compiles). In fp32 it did not pay (1.91x against 1.99x), so there it stays off. FTLAB_COMPILE=0 turns it
    off anywhere; FTLAB_COMPILE=1 turns it on anywhere (the test suite runs the code path on any CPU)."""
    switch = os.environ.get(COMPILE_ENV, "").strip()
    if switch not in ("", "0", "1"):
        raise ValueError(f"{COMPILE_ENV}={switch!r}: use 0 (never compile) or 1 (always); unset: where bf16 is native.")
    if switch:
        return switch == "1", f"{COMPILE_ENV}={switch}"
    if environment.gpu_info() is not None:
        return False, "a GPU trains here"
    native = environment.cpu_bf16()[0]
    return native, ("bf16 is native here (AMX): the long runs compile their layers" if native
                    else "fp32 here: compiling the layers did not pay in fp32")


def with_compiled_layers(params: dict) -> dict:
    """The parameters plus the course's swift plugin that torch.compiles each decoder layer (after the cpu_bf16
    plugin's callback where that is loaded, so the compiled layers include its fp32 hooks)."""
    as_list = lambda v: [] if v is None else list(v) if isinstance(v, (list, tuple)) else [v]  # noqa: E731
    return {**params, "external_plugins": as_list(params.get("external_plugins")) + [COMPILE_PLUGIN],
            "callbacks": as_list(params.get("callbacks")) + ["ftlab_compile_layers"]}


# Experiment 4 trains the first epoch of a cosine schedule over EXP5_EPOCHS epochs, so that experiment 5, which
# continues it to the end, goes on down the same curve to zero: no warm restart of the learning rate in the middle.
# transformers' cosine is 0.5·(1 + cos(2π·num_cycles·t/T)); over experiment 4's T steps, num_cycles = 1/(2·n) is
# exactly the first T steps of the half cycle over n·T steps that experiment 5's resumed run follows (ms-swift's
# warmup is 0). Two epochs in all converge in bf16 (the recording); in fp32 (a Xeon without AMX, 2026-12-02) the
# eval loss was still falling at the end of the second epoch (0.0509, 0.0493, 0.0482, 0.0478 at steps 175-250), so
# a recording made on such a machine needs another design (issue 40's measurements below: none found yet).
#
# Shorter designs for experiments 4-5 (issue 34, 2 cores; the shorter ones in fp32 on 2026-12-04; eval loss on the
# 20 validation rows, exams strict with experiment 5's best): the eval loss follows the rows trained on (row
# passes), not the learning rate or the schedule, and the floors need what only the full design reaches:
#   this one, 1,000 rows x 2 epochs, 8 a step, 1e-3 (bf16): eval 0.088 after 400 passes, 0.070 after 800, 0.056
#       after 1,000, min 0.046 after 1,600, then flat: converged, 5/10, 47/100
#   400 rows x 2 epochs, 8 a step, 2e-3: 0.091 after 400, min 0.059 at its end (800): underfitting, 2/10, 38/100
#   896 rows x 1 epoch, 8 a step, 2e-3 down to 0: 0.090 after 384, min 0.059 at its end: underfitting, 3/10, 36/100
#   456 rows x 2 epochs, 4 a step, 2e-3: 0.100 after 456, 0.080 after 684 (stopped there)
# (bench/try_lab_design.py runs such a design again: one run with the whole schedule, its curve, state and scores)
#
# Issue 40, fp32 on a 2-core Xeon without AMX (2026-12-07; one whole schedule each, swift's seed 42, eval loss on the
# 20 validation rows by row passes; exams strict, experiment 5's best):
#   this design, random batches: 0.174 @200, 0.087 @400, 0.069 @600, 0.058 @1,000, 0.051 @1,400, min 0.0478 at its
#       end (2,000): underfitting (19 % of the drop in the second half), 3/10, 52/100; 936 s in swift
#   the same, --group_by_length: 0.350 @200, 0.227 @400, 0.202 @600, 0.126 @1,000, 0.064 @1,400, min 0.0538 at its
#       end: underfitting, 3/10, 45/100; 955 s in swift (no faster here). Batches of one length are rows of one kind
#       (train_1k's problem types differ in length), and each step learned less: grouping stays off.
#   three epochs, random batches: 0.066 @1,000, 0.051 @2,000, 0.0454 @2,400, 0.0444 @2,800 and @3,000 (its min, at its
#       end): underfitting by the course's rule (17 % of the drop in the second half), 5/10, 53/100; 1,771 s
#   So in fp32 the floors' scores need three epochs (or two at 2e-3, below), and the "converged" card needs the
#   plateau the bf16 recording showed, which three fp32 epochs with the learning rate falling to zero still do not give.
#   two epochs at 2e-3: 0.176 @200, 0.094 @600 and @800, 0.071 @1,000, 0.053 @1,400, 0.0464 @1,800, min 0.0457 at its
#       end: underfitting (48 %), 5/10, 52/100; 983 s. Every fp32 run here ends at its minimum: with the rate falling
#       to zero the eval loss keeps creeping down to the last step.
#   four epochs as one schedule (experiment 4 its first quarter, num_cycles 1/8): experiment 4 ends at 85 % of its
#       rate, its eval wobbling (0.174, 0.088, 0.076, 0.078, 0.067), and its card says "converged" (7.5 % of the drop
#       in the second half): the lesson's experiment 4 must still be falling. As one whole epoch of its own (rate to
#       zero): 0.175, 0.084, 0.064, 0.057, 0.054, underfitting (25 %), as it should be.
#   four fresh epochs (the notebook recorded whole this way in fp32, 62 min 19 s, branch issue-40-wip): eval 0.0476
#       @2,000, up to 0.0563 @2,600, then down with the rate to 0.0464 @3,400 and min 0.0441 at its end (4,000):
#       underfitting (18 %); 6/10, 52/100. Experiment 6 from the base model (1,000 calculator rows, one epoch) in
#       fp32: with its calculator 9/10, 84/100, the radish field right; without it 30/100.
#   two epochs at a constant 1e-3 (bench/try_lab_design.py --lr-scheduler constant; no annealing): eval 0.071 @1,000,
#       0.079, 0.085, min 0.0656 @1,600, 0.0660, 0.0680: "converged" by the rule, but 2/10, 32/100 (below the floors).
#   So in fp32 a cosine schedule puts the eval minimum at the last step up to four epochs: the course's rule (the
#   minimum among the last two evaluations and a trend in learning done) reads that as still falling, and the bf16
#   recording's "converged" came from an eval curve that bottomed out at step 200 and crept up.
# Experiment 6 as option 1 would run it (bench/try_calc_design.py, from the two-epoch fp32 run's best adapter, one
# epoch, 1e-3): 160 calculator rows: eval 1.62 -> 0.160 (still falling); with its calculator 5/10, 63/100, the radish
# field right; without it 2/10, 19/100. 400 rows: eval 0.089 (still falling; the 2026-12-02 recording's experiment 6,
# 1,000 rows from the base model, ended at 0.096), with its calculator 4/10, 75/100, the radish field right: below
# the floors (8/10, 80/100) either way.
EXP5_EPOCHS = 2
FIRST_EPOCH = {"lr_scheduler_kwargs": json.dumps({"num_cycles": 1 / (2 * EXP5_EPOCHS)})}

# cpu track: rows ≤192 tokens (max_length 256 keeps them all), one optimizer step per batch (the default would accumulate 2 batches),
# a 20-row validation subset so evaluation stays cheap, no dataloader worker process.
_CPU_COMMON = dict(max_length=256, val_rows=20, gradient_accumulation_steps=1, dataloader_num_workers=0)
CPU = [
    dict(learning_rate=0.1, lora_rank=4, num_train_epochs=1, batch_size=8, eval_steps=2, dataset="train_100",
         train_rows=64, logging_steps=1),
    dict(learning_rate=3e-4, lora_rank=4, num_train_epochs=1, batch_size=8, eval_steps=2, dataset="train_100",
         train_rows=64, logging_steps=1),
    dict(learning_rate=1e-3, lora_rank=4, num_train_epochs=12, batch_size=8, eval_steps=3, dataset="train_100",
         train_rows=16),
    dict(learning_rate=1e-3, lora_rank=8, num_train_epochs=1, batch_size=8, eval_steps=25, dataset="train_1k",
         **FIRST_EPOCH),
    dict(learning_rate=1e-3, lora_rank=8, num_train_epochs=EXP5_EPOCHS, batch_size=8, eval_steps=25,
         dataset="train_1k", resume_from="exp4"),
]
CPU_WHY = [
    "the same learning rate 0.1, on 64 rows; evaluate every 2 steps on 20 rows",
    "5e-5 barely moves a 135 M model in the 8 steps a CPU can spare; 3e-4 shows the same still-falling curves",
    "50 epochs of 100 rows would take hours here: 16 rows × 12 epochs at 1e-3 are memorised just as surely",
    "all 1,000 rows for 1 epoch at 1e-3, evaluated every 25 steps (the lesson's 3 epochs at 5e-5 would take "
    "hours here); its learning rate follows the first half of a two-epoch schedule, so experiment 5 can go on",
    "continues experiment 4's run into a second epoch (ms-swift --resume_from_checkpoint) instead of starting "
    "over, with the learning rate going on down to zero: the lesson's 15 fresh epochs would take a day here",
]

_CI_COMMON = dict(max_length=256, train_rows=12, val_rows=4, gradient_accumulation_steps=1,
                  dataloader_num_workers=0, batch_size=4, eval_steps=1, num_train_epochs=1)
CI = [dict(learning_rate=lesson["learning_rate"], lora_rank=lesson["lora_rank"], dataset=lesson["dataset"])
      for lesson in LESSON]
CI[3].update(FIRST_EPOCH)
CI[4].update(num_train_epochs=EXP5_EPOCHS, resume_from="exp4")  # the cpu track's continuation, exercised


# what a track changes besides the lesson's knobs that a learner should see: how much data, where it continues,
# how its learning rate falls (the rest of a track's flags only make it faster)
LESSON_EXTRAS = ("train_rows", "val_dataset", "val_rows", "resume_from", "start_from", "lr_scheduler_kwargs")


@dataclass
class Experiment:
    number: int
    title: str
    lesson_state: str
    next_move: str
    lesson: dict
    params: dict = field(default_factory=dict)
    why: str = ""

    def _repr_html_(self) -> str:
        """The lesson's knobs beside this track's; the plumbing (speed flags, workers, logging) folded away."""
        shown = list(self.lesson) + [k for k in LESSON_EXTRAS if k in self.params]
        rows = [(k, self.lesson.get(k, ""), self.params.get(k, "")) for k in shown]
        rest = [(k, self.params[k]) for k in self.params if k not in shown]
        folded = (f"<details><summary>{len(rest)} more flags this track sets (speed and plumbing, not what is "
                  "learned)</summary>" + table(rest, ["flag", "value"]) + "</details>") if rest else ""
        return (f"<b>Experiment {self.number}: {html.escape(self.title)}</b> — the lesson saw "
                f"<i>{self.lesson_state}</i>." + table(rows, ["parameter", "lesson (gpu)", "this track"])
                + f"<p>{html.escape(self.why)}</p>" + folded)


CI_WHY = "ci track: 12 rows, 3 steps — exercises the code path only"


def _on_track(track: str, own: dict, number: int = 0) -> dict:
    """An experiment's own values with what its track adds: nothing on the gpu track; on the cpu and ci tracks
    their common settings and the CPU speed flags (the experiment's own values win over the common ones), and on
    the cpu track's long runs, compiled layers where they pay (compile_layers())."""
    if track == "gpu":
        return dict(own)
    params = {**(_CPU_COMMON if track == "cpu" else _CI_COMMON), **own, **cpu_speed_flags()}
    if track == "cpu" and number in COMPILED_EXPERIMENTS and compile_layers()[0]:
        params = with_compiled_layers(params)
    return params


def experiments(track: str | None = None) -> list[Experiment]:
    track = track or environment.detect_track().name
    out = []
    for i, lesson in enumerate(LESSON):
        title, state, move = TITLES[i]
        own = {"gpu": lesson, "cpu": CPU[i], "ci": CI[i]}[track]
        why = {"gpu": "the lesson's exact values", "cpu": CPU_WHY[i], "ci": CI_WHY}[track]
        out.append(Experiment(i + 1, title, state, move, lesson, _on_track(track, own, i + 1), why))
    return out


# How each track examines: how many questions of each exam (None = all) and the answer length limit
# (cpu: the longest worked solution in the data is 92 tokens, so 112 cuts off only rambling; on 2 cores a
# decoding step for 64 questions costs about what one for 32 does, so 64 share a batch)
EXAM = {"gpu": dict(limit=None, max_new_tokens=256), "cpu": dict(limit=None, max_new_tokens=112, batch_size=64),
        "ci": dict(limit=2, max_new_tokens=24)}
# exam_settings(base=True): how many of exam_100's questions the base model answers (None: all). A sampled base exam
# is one of the ways to a shorter lab (issue 34: 0 of 20 still says "under about 14 %" with 95 % confidence); no
# track samples it yet.
BASE_SAMPLE = {"gpu": None, "cpu": None, "ci": None}
# Notebook 03 section 9 scores the q8_0 GGUF through llama.cpp on exam_100's first GGUF_SAMPLE questions (one at a
# time: 40 answers of 112 tokens took 80 s on 2 cores); the notebook writes the same number.
GGUF_SAMPLE = 40


# Going further: experiment 6 trains the best run's knobs on the calculator version of the data (the same rows,
# each calculation written as a call; helpers/calculator.py). On the gpu track: experiment 5's values. On the
# cpu track: experiment 4's one epoch over all 1,000 rows at 1e-3, with a whole cosine schedule of its own (ten
# minutes on 2 cores, where experiments 4 and 5 together take twenty).
CALC_LESSON = dict(LESSON[4], dataset="train_1k_calc")
CALC = {"gpu": dict(CALC_LESSON, val_dataset="val_calc"),
        "cpu": {**{k: v for k, v in CPU[3].items() if k != "lr_scheduler_kwargs"},  # one whole schedule
                "dataset": "train_1k_calc", "val_dataset": "val_calc"},
        "ci": dict(learning_rate=1e-3, lora_rank=8, dataset="train_1k_calc", val_dataset="val_calc")}
CALC_WHY = {"gpu": "experiment 5's values, on the calculator data",
            "cpu": "experiment 4's knobs for one whole epoch of the calculator data, its learning rate falling to 0",
            "ci": CI_WHY}


def calculator_experiment(track: str | None = None) -> Experiment:
    """Experiment 6, after the lesson's five: the best knobs, trained on the calculator data."""
    track = track or environment.detect_track().name
    return Experiment(6, "a calculator", "(going further: not in the lesson)",
                      "compare it with and without its calculator", CALC_LESSON, _on_track(track, CALC[track], 6),
                      CALC_WHY[track])


def exam_settings(track: str | None = None, base: bool = False) -> dict:
    """How this track examines (keyword arguments for exam()); base=True: the base model's exam_100, which the cpu
    track samples (BASE_SAMPLE)."""
    track = track or environment.detect_track().name
    settings = dict(EXAM[track])
    if base and BASE_SAMPLE[track]:
        settings["limit"] = BASE_SAMPLE[track]
    return settings


def plan_table() -> str:
    """The lesson's five experiments beside the cpu track's, the same on every track (the notebook checks it)."""
    def rows(p: dict) -> str:
        data = p["dataset"] + (f"[:{p['train_rows']}]" if p.get("train_rows") else "")
        resume = f", continuing {p['resume_from']}" if p.get("resume_from") else ""
        return (f"lr {swift_runner.flag_text(p['learning_rate'])}, r{p['lora_rank']}, {p['num_train_epochs']} ep, "
                f"batch {p['batch_size']}, {data}, eval every {p['eval_steps']}{resume}")

    lines = []
    for i, lesson in enumerate(LESSON):
        title, state, _ = TITLES[i]
        cpu = {**_CPU_COMMON, **CPU[i]}
        lines += [f"{i + 1}. {title} — the lesson saw {state}",
                  f"   lesson / gpu track: {rows(lesson)}",
                  f"   cpu track:          {rows(cpu)}",
                  f"   why: {CPU_WHY[i]}"]
    lines.append("Every cpu-track run also gets the CPU speed flags of tracks.cpu_speed_flags() (shown in its command).")
    lines.append("The ci track runs every experiment for 3 steps on 12 rows: it tests the code, not the model.")
    return "\n".join(lines)


def lab_plan(track: str, titles: bool = False) -> list[tuple[str, dict]]:
    """Notebook 03's six training runs on a track, as (label, parameters), or (title, parameters) with titles=True."""
    runs = experiments(track) + [calculator_experiment(track)]
    return [(f"experiment {e.number}: {e.title if e.number == 6 else e.lesson_state}" if titles else f"exp{e.number}",
             {"val_dataset": "val", **e.params}) for e in runs]


def lab_exams(track: str) -> list[tuple]:
    """Every answer notebook 03 generates on a track, in order: (what, dataset, questions (None: all), answer tokens,
    [answers per question]). pace.lab_work and bench/count_lab_work.py count from this list."""
    settings = EXAM[track]
    n, limit = settings["max_new_tokens"], settings["limit"]
    base = exam_settings(track, base=True)["limit"]
    out = [("base model: the radish field", "demo", None, n),
           ("base model: the lesson's ten", "test", limit, n),
           ("base model: exam_100" + (f" (first {base})" if base else ""), "exam_100", base, n),
           ("fine-tuned: the lesson's ten", "test", limit, n),
           ("fine-tuned: exam_100", "exam_100", limit, n),
           ("fine-tuned: the radish field", "demo", None, n),
           ("merged: the lesson's ten (same answers?)", "test", limit, n),
           ("base model: the radish field, again for the scores table", "demo", None, n)]
    for tool in ("with", "without"):
        out += [(f"experiment 6 {tool} its calculator: the lesson's ten", "test", limit, n),
                (f"experiment 6 {tool} its calculator: exam_100", "exam_100", limit, n),
                (f"experiment 6 {tool} its calculator: the radish field", "demo", None, n)]
    out += [("served: the radish field to base, tuned, calculator (raw, and closed: 2 calls)", "demo", None, n, 5),
            ("GGUF f16 read back by transformers, beside the merged folder: the lesson's ten", "test", None, n, 2),
            ("llama.cpp: the f16 file, two ways, beside the merged exam: the lesson's ten", "test", limit, n, 2),
            (f"llama.cpp: the q8_0 file, exam_100's first {GGUF_SAMPLE}", "exam_100", min(GGUF_SAMPLE, limit or 100), n)]
    return out
