"""The lesson's five experiments, per track: the gpu track uses the lesson's exact values; the cpu
track scales them so each state still shows on SmolLM2-135M on 2 cores; the ci track runs every code
path in seconds (its scores mean nothing)."""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from . import environment

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
# cpu track: rows ≤160 tokens, one optimizer step per batch (the default would accumulate 2 batches),
# a 20-row validation subset so evaluation stays cheap, no dataloader worker process.
_CPU_COMMON = dict(max_length=256, val_rows=20, gradient_accumulation_steps=1, dataloader_num_workers=0)
CPU = [
    dict(learning_rate=0.1, lora_rank=4, num_train_epochs=1, batch_size=8, eval_steps=2, dataset="train_100"),
    dict(learning_rate=3e-4, lora_rank=4, num_train_epochs=1, batch_size=8, eval_steps=2, dataset="train_100"),
    dict(learning_rate=1e-3, lora_rank=4, num_train_epochs=12, batch_size=8, eval_steps=4, dataset="train_100",
         train_rows=30),
    dict(learning_rate=3e-4, lora_rank=8, num_train_epochs=1, batch_size=8, eval_steps=10, dataset="train_1k",
         train_rows=400),
    dict(learning_rate=3e-4, lora_rank=8, num_train_epochs=2, batch_size=8, eval_steps=10, dataset="train_1k",
         train_rows=400),
]
CPU_WHY = [
    "same learning rate 0.1; evaluate every 2 steps on 20 rows",
    "5e-5 barely moves a 135 M model in 13 steps on a CPU; 3e-4 shows the same still-falling curves",
    "50 epochs of 100 rows would take an hour here: 30 rows × 12 epochs at 1e-3 memorises just as well",
    "400 of the 1,000 rows, 1 epoch (the lesson's 3 epochs of 1,000 rows would take 25 min here)",
    "400 rows × 2 epochs (11 min): the curves flatten, eval still creeping down at the very end",
]
_CI_COMMON = dict(max_length=256, train_rows=12, val_rows=4, gradient_accumulation_steps=1,
                  dataloader_num_workers=0, batch_size=4, eval_steps=1, num_train_epochs=1)
CI = [dict(learning_rate=lesson["learning_rate"], lora_rank=lesson["lora_rank"], dataset=lesson["dataset"])
      for lesson in LESSON]


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
        keys = list(self.lesson) + [k for k in self.params if k not in self.lesson]
        rows = "".join(f"<tr><td>{k}</td><td>{html.escape(str(self.lesson.get(k, '')))}</td>"
                       f"<td>{html.escape(str(self.params.get(k, '')))}</td></tr>" for k in keys)
        return (f"<b>Experiment {self.number}: {html.escape(self.title)}</b> — the lesson saw "
                f"<i>{self.lesson_state}</i>.<table><tr><th>parameter</th><th>lesson (gpu)</th><th>this track</th></tr>"
                f"{rows}</table><p>{html.escape(self.why)}</p>")


def experiments(track: str | None = None) -> list[Experiment]:
    track = track or environment.detect_track().name
    out = []
    for i, lesson in enumerate(LESSON):
        title, state, move = TITLES[i]
        if track == "gpu":
            params, why = dict(lesson), "the lesson's exact values"
        elif track == "cpu":
            params, why = {**_CPU_COMMON, **CPU[i]}, CPU_WHY[i]
        else:
            params, why = {**_CI_COMMON, **CI[i]}, "ci track: 12 rows, 3 steps — exercises the code path only"
        out.append(Experiment(i + 1, title, state, move, lesson, params, why))
    return out


# How each track examines: how many questions of each exam (None = all) and the answer length limit
EXAM = {"gpu": dict(limit=None, max_new_tokens=256), "cpu": dict(limit=None, max_new_tokens=128),
        "ci": dict(limit=2, max_new_tokens=24)}
