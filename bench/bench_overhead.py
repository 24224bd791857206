"""Helper overhead vs plain `swift sft`, and the delay from swift writing a log line to the curve update.

Runs the same small cpu-style training (embedded model) twice each way, alternating:
  A) `swift sft ...` started from a shell-like subprocess (the exact argv the helper printed),
  B) `helpers.sft(...)` (validation + launch + live watching + diagnosis),
and prints wall times and the overhead ratio (goal ≤ 3 %). While B runs, a side thread notes when each
new line appears in logging.jsonl (polling every 20 ms) and the helper's curve updates are timestamped:
the difference is the on-screen latency (goal ≤ 2 s).

Usage: .venv/bin/python bench/bench_overhead.py [--rows 48] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("FTLAB_TRACK", "cpu")

from helpers import curves, paths, swift_runner, training  # noqa: E402

PARAMS = dict(learning_rate=3e-4, lora_rank=8, num_train_epochs=1, batch_size=8, max_length=256, eval_steps=2,
              dataset="train_100", val_rows=8, gradient_accumulation_steps=1, dataloader_num_workers=0)


def plain_swift(argv: list[str], out_dir: Path) -> float:
    args = list(argv)
    args[args.index("--output_dir") + 1] = str(out_dir)
    t0 = time.time()
    subprocess.run([sys.executable, "-m", "swift.cli.main", "sft", *args], cwd=paths.COURSE_ROOT, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**os.environ, **swift_runner.SWIFT_ENV})
    return time.time() - t0


def helper_run(rows: int, label: str):
    """helpers.sft with its live figure replaced by a timestamping recorder; returns (seconds, run, latencies)."""
    updates: list[tuple[float, int]] = []
    real_update = curves.LiveCurves.update

    def timed_update(self, train, evals, subtitle=""):
        updates.append((time.time(), len(train) + len(evals)))
        return real_update(self, train, evals, subtitle)

    seen: list[float] = []
    stop = threading.Event()

    def watch_file():
        log, count = None, 0
        while not stop.is_set():
            if log is None:
                cands = sorted(paths.OUTPUT_DIR.glob(f"cpu/*-{label}/logging.jsonl"))
                log = cands[-1] if cands else None
            if log is not None and log.is_file():
                lines = [ln for ln in log.read_text().splitlines() if '"loss"' in ln or '"eval_loss"' in ln]
                for _ in range(len(lines) - count):
                    seen.append(time.time())
                count = len(lines)
            time.sleep(0.02)

    curves.LiveCurves.update = timed_update
    curves._in_notebook = lambda: False
    t = threading.Thread(target=watch_file, daemon=True)
    t.start()
    t0 = time.time()
    try:
        run = training.sft(**PARAMS, train_rows=rows, label=label, show=True)
    finally:
        curves.LiveCurves.update = real_update
        stop.set()
    wall = time.time() - t0
    latencies = []
    for k, when in enumerate(seen, 1):  # first update that shows at least k points
        shown = next((u for u, n in updates if n >= k and u >= when - 0.05), None)
        if shown is not None:
            latencies.append(shown - when)
    return wall, run, latencies


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=48)
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    plain, helper, lat = [], [], []
    for i in range(a.repeats):
        wall, run, latencies = helper_run(a.rows, f"bench-overhead-{i}")
        helper.append(wall)
        lat += latencies
        plain.append(plain_swift(run.argv, run.run_dir.parent / f"{run.run_dir.name}-plain"))
        print(f"repeat {i + 1}: helper {wall:.1f} s, plain swift {plain[-1]:.1f} s", flush=True)
    h, p = min(helper), min(plain)
    print(f"\nplain `swift sft` (best of {a.repeats}): {p:.1f} s")
    print(f"helpers.sft()      (best of {a.repeats}): {h:.1f} s")
    print(f"overhead: {100 * (h - p) / p:+.1f} %  (goal ≤ 3 %)")
    if lat:
        lat.sort()
        print(f"log line -> curve update: median {lat[len(lat) // 2]:.2f} s, worst {lat[-1]:.2f} s over "
              f"{len(lat)} points (goal ≤ 2 s)")


if __name__ == "__main__":
    main()
