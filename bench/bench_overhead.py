"""Helper overhead vs plain `swift sft`, and the delay from swift writing a log line to the curve update.

Runs the same small cpu-style training (embedded model) twice each way, alternating:
  A) `swift sft ...` started from a shell-like subprocess (the exact argv the helper printed),
  B) `helpers.sft(...)` (validation + launch + live watching + diagnosis),
and prints wall times and the overhead ratio (goal ≤ 3 %). While B runs, a side thread notes when each
new point appears in logging.jsonl (polling every 20 ms, with the package's own log reader) and sft's
`on_update` listener timestamps each update of the live curves: the difference is the on-screen latency
(goal ≤ 2 s).

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

from helpers import paths, swift_runner, training  # noqa: E402
from helpers.swiftlog import SwiftLog  # noqa: E402

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
    """helpers.sft with a timestamping update listener; returns (seconds, run, latencies)."""
    updates: list[tuple[float, int]] = []
    seen: list[float] = []
    stop = threading.Event()

    def on_update(run, log):  # called where the live figure is redrawn
        updates.append((time.time(), len(log.train) + len(log.evals)))

    def watch_file():
        log, count = None, 0
        while not stop.is_set():
            if log is None:
                cands = sorted(paths.OUTPUT_DIR.glob(f"cpu/*-{label}"))
                log = SwiftLog(cands[-1]) if cands else None
            if log is not None:
                state = log.read()
                n = len(state.train) + len(state.evals)
                seen.extend([time.time()] * (n - count))
                count = n
            time.sleep(0.02)

    t = threading.Thread(target=watch_file, daemon=True)
    t.start()
    t0 = time.time()
    try:
        run = training.sft(**PARAMS, train_rows=rows, label=label, show=True, on_update=on_update)
    finally:
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
