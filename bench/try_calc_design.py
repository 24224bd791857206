"""Try a design for experiment 6 on the cpu track before changing the plan (issue 40's option 1): continue a run's
best adapter (sft start_from, --adapters: its weights, a fresh optimizer and schedule) on the first N calculator rows,
then its diagnosis and its strict scores with and without its calculator, and its answer to the radish field.

    .venv/bin/python bench/try_calc_design.py --from output/cpu/002-try-1000x2-lr0.001-b8 --rows 160 --epochs 1

The floors of issue 40: with its calculator >= 8/10 and >= 80/100 strict and the radish question right; without it
at least 20 points lower on exam_100. Minutes on 2 cores; keep the machine otherwise idle.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("FTLAB_TRACK", "cpu")

sys.path.insert(0, str(ROOT / "bench"))

from try_lab_design import train_and_show  # noqa: E402  (the same run, state and curve printout)

from helpers import DATA_DIR, Run, calculator_experiment, exam, tracks  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--from", dest="start", required=True, help="the run whose best adapter experiment 6 continues")
    ap.add_argument("--rows", type=int, default=160, help="the first N rows of train_1k_calc")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--eval-steps", type=int, default=5)
    a = ap.parse_args()
    params = dict(calculator_experiment("cpu").params, learning_rate=a.lr, num_train_epochs=a.epochs,
                  train_rows=a.rows, eval_steps=a.eval_steps)
    run = train_and_show(params, f"try-calc-{a.rows}x{a.epochs}-lr{a.lr}", start_from=Run.load(Path(a.start)))
    settings = tracks.EXAM["cpu"]
    for tool in (True, False):
        for name in ("test", "exam_100"):
            result = exam(run, DATA_DIR / f"{name}.jsonl", tool=tool, save_to=False, progress=False, **settings)
            print(f"{'with' if tool else 'without'} its calculator, {name}: {result.strict_score} % strict "
                  f"({result.n} questions, {result.seconds:.0f} s)")
        radish = exam(run, DATA_DIR / "demo.jsonl", tool=tool, max_new_tokens=settings["max_new_tokens"],
                      save_to=False, progress=False)
        print(f"  radish field ({'right' if radish.items[0].strict else 'wrong'}): {radish.items[0].response!r}")


if __name__ == "__main__":
    main()
