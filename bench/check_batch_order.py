"""Check pace.batch_order against ms-swift itself: two short real trainings through the course's sft() (48 rows of
train_1k, 2 epochs, 8 a step: random batches, then --group_by_length) with transformers' own counter of the tokens
the model took in (--include_num_input_tokens_seen true: every token of each padded batch), beside the count that
bench/count_lab_work.py makes from the data and the batch order alone.

    .venv/bin/python bench/check_batch_order.py      # about 3 minutes on 2 cores; needs no other training running

Prints, per variant, swift's counter after each step and the predicted one, and whether they are equal.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("FTLAB_TRACK", "cpu")

from helpers import get_model, pace, sft, swiftlog, tracks  # noqa: E402


def main() -> int:
    base = {k: v for k, v in tracks.experiments("cpu")[3].params.items() if k != "lr_scheduler_kwargs"}
    ok = True
    for grouped in (False, True):
        params = dict(base, dataset="train_1k", train_rows=48, num_train_epochs=2, eval_steps=100, logging_steps=1)
        if grouped:
            params["group_by_length"] = True
        run = sft(get_model(), **params, label=f"check-order-{'grouped' if grouped else 'random'}", show=False,
                  include_num_input_tokens_seen=True)  # transformers: True is "all" (padding counted)
        logged = [r["num_input_tokens_seen"] for r in swiftlog.rows(run.run_dir / "logging.jsonl")
                  if "num_input_tokens_seen" in r and "loss" in r]
        lengths = pace.swift_lengths("train_1k", 48)
        predicted, total = [], 0
        for batch in pace.batch_order(params):
            total += len(batch) * max(lengths[i] for i in batch)
            predicted.append(total)
        same = logged == predicted
        ok &= same
        print(f"{'grouped' if grouped else 'random '} ({run.status}): swift counted {logged}\n"
              f"          predicted     {predicted}\n          {'EQUAL' if same else 'DIFFERENT'}; real tokens "
              f"{sum(lengths) * 2:,}, computed {total:,} ({total / (sum(lengths) * 2):.3f}x)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
