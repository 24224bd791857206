"""Batched `exam()` vs the lesson's one-question-at-a-time loop, on the embedded model.

    .venv/bin/python bench/bench_exam.py            # 10-question and 100-question exams
    .venv/bin/python bench/bench_exam.py --n 10     # only the lesson's ten questions

Both paths use the same loaded model, the same swift-encoded prompts and greedy decoding, so their
answers must be identical; the script reports any mismatch and the wall time of each path.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import helpers.exams as ex  # noqa: E402
import helpers.inference as inference  # noqa: E402
from helpers.models import embedded_model  # noqa: E402

DATASETS = {10: ROOT / "resources/2_7/test.jsonl", 100: ROOT / "resources/2_7/exam_100.jsonl"}
GOALS = {10: 3.0, 100: 5.0}


def run(n: int, loaded, batch_sizes: list[int], max_new_tokens: int, threads: int) -> list[dict]:
    data = DATASETS[n]
    t0 = time.time()
    loop = ex.lesson_loop_exam(None, data, max_new_tokens=max_new_tokens, limit=n, loaded=loaded,
                               threads=threads)
    t_loop = time.time() - t0
    out = []
    for bs in batch_sizes:
        t0 = time.time()
        batched = ex.exam(None, data, batch_size=bs, max_new_tokens=max_new_tokens, save_to=False,
                          limit=n, progress=False, loaded=loaded, threads=threads)
        t_batched = time.time() - t0
        mismatches = [k for k, (a, b) in enumerate(zip(batched.items, loop.items)) if a.response != b.response]
        for k in mismatches:
            a, b = batched.items[k].response, loop.items[k].response
            same = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            print(f"  mismatch on question {k + 1}: identical for {same} characters, then\n"
                  f"    batched: {a[same:same + 60]!r}\n    loop:    {b[same:same + 60]!r}")
        out.append({"n": n, "batch_size": bs, "loop_s": t_loop, "batched_s": t_batched,
                    "speedup": t_loop / t_batched, "mismatches": len(mismatches),
                    "scores": (batched.seed_score, batched.strict_score, loop.seed_score)})
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, action="append", choices=sorted(DATASETS), help="exam size (repeatable)")
    ap.add_argument("--batch-size", type=int, action="append", help="batched exam batch size (repeatable; default 32, as exam())")
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: idle cores)")
    args = ap.parse_args(argv)
    threads = args.threads or inference.cpu_threads()  # fixed once, so both paths run with the same threads
    sizes = args.batch_size or [32]
    print(f"torch threads: {threads} (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores), "
          f"batch sizes {sizes}, max_new_tokens {args.max_new_tokens}", flush=True)
    loaded = inference.load(embedded_model())
    results = []
    for n in args.n or sorted(DATASETS):
        for r in run(n, loaded, sizes, args.max_new_tokens, threads):
            results.append(r)
            print(f"n={n:>3}: loop {r['loop_s']:7.1f} s   batched (batch {r['batch_size']}) {r['batched_s']:6.1f} s   "
                  f"speed-up {r['speedup']:4.1f}x (goal {GOALS[n]:.0f}x)   answer mismatches {r['mismatches']}/{n}   "
                  f"seed/strict {r['scores'][0]}/{r['scores'][1]}", flush=True)
    ok = all(r["speedup"] >= GOALS[r["n"]] for r in results)
    print("all speed-up goals met" if ok else "speed-up goal missed (see numbers above)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
