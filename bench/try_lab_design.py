"""Try a design for the cpu track's experiments 4-5 before changing the plan: one real training run through the course's
own sft() (the cpu track's flags, the validation subset it evaluates on), its diagnosis, and its best checkpoint's
strict scores on the lesson's ten and on exam_100 (the exam settings of notebook 03, answers up to --max-new-tokens).

    .venv/bin/python bench/try_lab_design.py --rows 896 --epochs 1 --lr 2e-3 --eval-steps 16   # 2026-12-04: 3/10, 36/100
    .venv/bin/python bench/try_lab_design.py --rows 400 --epochs 2 --lr 2e-3 --eval-steps 25   # ~ design A of issue 34
    .venv/bin/python bench/try_lab_design.py --group-by-length   # experiments 4-5 as planned, length-grouped batches

One run with a whole cosine schedule (experiments 4 and 5 of the lab split such a schedule in two: experiment 5
resumes experiment 4, so their curve is this one). It prints the eval curve with the row passes behind each point, so
designs compare by the rows they trained on. Tens of minutes on 2 cores; keep the machine otherwise idle. The run is
kept under output/cpu/ like any other (label try-...).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("FTLAB_TRACK", "cpu")

from helpers import DATA_DIR, exam, get_model, sft, swiftlog, tracks  # noqa: E402


def train_and_show(params: dict, label: str, **more):
    """One real sft() run of `params`; prints its state, swift's own runtime and its eval curve by row passes, and
    stops the script with swift's error where it did not finish. -> the Run"""
    t0 = time.time()
    run = sft(get_model(), **params, **more, label=label, show=False)
    print(f"{run.status} in {time.time() - t0:.0f} s: {run.diagnosis.state}: {run.diagnosis.reason}")
    log = swiftlog.rows(run.run_dir / "logging.jsonl")
    runtime = [r["train_runtime"] for r in log if "train_runtime" in r]
    print(f"  {run.run_dir}  (swift's own train_runtime, evaluations included: {runtime[-1] if runtime else '?'} s)")
    if run.status != "finished":
        raise SystemExit(run.error[-2000:])
    for r in log:
        if "eval_loss" in r:
            step = swiftlog.step_of(r)[0]
            print(f"  step {step:4d}  row passes {step * params['batch_size']:5d}  eval loss {r['eval_loss']:.4f}")
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=1000, help="the first N rows of train_1k")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--eval-steps", type=int, default=25)
    ap.add_argument("--max-new-tokens", type=int, default=tracks.EXAM["cpu"]["max_new_tokens"])
    ap.add_argument("--exam-limit", type=int, default=None, help="only the first N questions of each exam")
    ap.add_argument("--group-by-length", action="store_true",
                    help="swift's --group_by_length: batches of similar lengths (less padding; evaluation ungrouped)")
    ap.add_argument("--seed", type=int, default=None, help="swift's --seed and --data_seed (default: swift's own)")
    ap.add_argument("--lr-scheduler", default=None,
                    help="transformers' --lr_scheduler_type, e.g. constant (default: swift's cosine to zero)")
    a = ap.parse_args()
    # experiment 4 on this track (its flags and validation subset), with the design's knobs and a whole schedule
    params = {k: v for k, v in tracks.experiments()[3].params.items() if k != "lr_scheduler_kwargs"}
    params.update(learning_rate=a.lr, lora_rank=a.rank, num_train_epochs=a.epochs, batch_size=a.batch,
                  eval_steps=a.eval_steps, dataset="train_1k", train_rows=a.rows)
    label = f"try-{a.rows}x{a.epochs}-lr{a.lr}-b{a.batch}"
    if a.group_by_length:
        params["group_by_length"] = True
        label += "-grouped"
    if a.seed is not None:
        params.update(seed=a.seed, data_seed=a.seed)
        label += f"-seed{a.seed}"
    if a.lr_scheduler:
        params["lr_scheduler_type"] = a.lr_scheduler
        label += f"-{a.lr_scheduler}"
    run = train_and_show(params, label)
    settings = dict(tracks.EXAM["cpu"], max_new_tokens=a.max_new_tokens, limit=a.exam_limit)
    for name in ("test", "exam_100"):
        t0 = time.time()
        result = exam(run, DATA_DIR / f"{name}.jsonl", progress=False, **settings)
        print(f"{name}: {result.strict_score} % strict ({result.n} questions, {time.time() - t0:.0f} s)")


if __name__ == "__main__":
    main()
