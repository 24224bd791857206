"""CPU training and exam speed, setting by setting, in one run (ratios, never numbers from another day).

Training: the same small `swift sft` run (embedded model, LoRA r8, batch 8, rows of the cpu track's
length) under each setting, one after the other, then repeated in reverse order so a host that gets
busier or quieter during the bench does not favour one setting. For each setting it prints seconds per
optimizer step, training tokens per second, the ratio to today's setting (fp32 with ms-swift's default
gradient checkpointing), the same ratio from step 2 to the first evaluation (the first step's compile or
warm-up left out; swift logs whole seconds), the final eval loss and the largest difference between its
loss curves and fp32's.

Exam: base-model greedy answers to the same questions in fp32 and bf16; seconds and how many answers
are identical.

Usage: .venv/bin/python bench/bench_cpu_training.py [--rows 48] [--steps 6] [--exam 32] [--repeats 1]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("FTLAB_TRACK", "cpu")

from helpers import data, environment, exams, models, paths, swift_runner, tracks  # noqa: E402
from helpers.swiftlog import SwiftLog, elapsed_seconds, step_of  # noqa: E402

TODAY = "before: ms-swift defaults (fp32)"
SETTINGS = {
    TODAY: {},
    "no gradient checkpointing": {"gradient_checkpointing": False},
    "+ LoRA dropout 0 (cpu track, no native bf16)": {"gradient_checkpointing": False, "lora_dropout": 0.0},
}
_track = tracks.cpu_speed_flags()  # what the cpu track runs with on this machine
# bf16 pays only where the CPU computes it natively; elsewhere torch emulates it (measured 2-3x slower)
if environment.cpu_bf16()[0]:
    SETTINGS["+ plain bf16 autocast"] = {"gradient_checkpointing": False, "lora_dropout": 0.0, "fp16": False,
                                         "bf16": True, "use_cpu": True}
    SETTINGS["+ bf16, LoRA sums in fp32, eager attention (cpu track)"] = _track
# torch.compile of each decoder layer (helpers/swift_plugins/compile_layers.py; compile time inside train_runtime)
SETTINGS["+ torch.compile of each decoder layer"] = {
    **_track, "external_plugins": [*filter(None, [_track.get("external_plugins")]), "helpers/swift_plugins/compile_layers.py"],
    "callbacks": [*filter(None, [_track.get("callbacks")]), "ftlab_compile_layers"]}
REFERENCE = TODAY  # loss curves are compared with this one


def train_once(model, rows: int, steps: int, extra: dict, work: Path) -> dict:
    train = work / "train.jsonl"
    val = work / "val.jsonl"
    out = Path(tempfile.mkdtemp(dir=work))
    batch = 8
    params = dict(learning_rate=3e-4, lora_rank=8, num_train_epochs=max(1, steps * batch // rows),
                  batch_size=batch, max_length=256, eval_steps=max(1, steps // 2))
    flags = {"gradient_accumulation_steps": 1, "dataloader_num_workers": 0, "logging_steps": 1,
             "max_steps": steps, "save_only_model": True, **extra}
    argv = swift_runner.sft_command(model, train, val, params, out, flags)
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "swift.cli.main", "sft", *argv], cwd=paths.COURSE_ROOT,
                          capture_output=True, text=True, env={**os.environ, **swift_runner.SWIFT_ENV})
    wall = time.time() - t0
    if proc.returncode:
        raise SystemExit(f"swift sft failed for {extra}:\n{proc.stdout[-3000:]}")
    log = SwiftLog(out)  # the package's one reader of swift's logging.jsonl
    state = log.read()
    train_pts, eval_pts = state.train, state.evals
    summary = next(r for r in log.rows if "train_runtime" in r)
    # steps 2 to the first evaluation: what a step costs once the first one (a compile, a warm-up) is behind it
    at = {step_of(r)[0]: elapsed_seconds(r["elapsed_time"]) for r in log.rows
          if "loss" in r and "elapsed_time" in r and step_of(r)}
    first_eval = max(2, steps // 2)
    steady = (at[first_eval] - at[2]) / (first_eval - 2) if first_eval > 2 and {2, first_eval} <= set(at) else float("nan")
    shutil.rmtree(out, ignore_errors=True)
    return {"wall": wall, "runtime": float(summary["train_runtime"]), "train": train_pts, "eval": eval_pts,
            "steady": steady}


def bench_training(args) -> None:
    model = models.embedded_model()
    work = Path(tempfile.mkdtemp(prefix="ftlab-bench-"))
    try:
        src = data.read_rows(paths.DATA_DIR / "train_1k.jsonl")[: args.rows]
        val = data.read_rows(paths.DATA_DIR / "val.jsonl")[:16]
        (work / "train.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in src))
        (work / "val.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in val))
        lengths = data.token_lengths(model.path, src)
        tokens_per_step = sum(lengths) / len(lengths) * 8  # batch 8, mean row length
        order = list(SETTINGS)
        results: dict[str, list[dict]] = {k: [] for k in order}
        for rep in range(args.repeats):
            sequence = order if rep % 2 == 0 else order[::-1]
            if args.repeats == 1 and not args.no_reverse:
                sequence = order + order[::-1]
            for name in sequence:
                print(f"  running: {name} ...", flush=True)
                r = train_once(model, args.rows, args.steps, SETTINGS[name], work)
                results[name].append(r)
                print(f"    train_runtime {r['runtime']:.1f} s, eval losses {[round(v, 4) for _, v in r['eval']]}",
                      flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def mean(name, key):
        vals = [r[key] for r in results[name]]
        return sum(vals) / len(vals)

    ref = results[REFERENCE][0]
    base_rt = mean(TODAY, "runtime")
    print(f"\nTraining: {args.rows} rows, batch 8, {args.steps} steps, 2 evals of 16 rows, "
          f"≈{tokens_per_step:.0f} tokens per step; each setting run {len(results[TODAY])}× (forward and reverse order)")
    print(f"{'setting':56} {'s/step':>7} {'tokens/s':>9} {'speed-up':>9} {'steps 2+':>9} {'final eval':>11} "
          f"{'max |Δ loss| vs before':>24}")
    base_steady = mean(TODAY, "steady")
    for name in order:
        rt = mean(name, "runtime")
        r = results[name][0]
        steady = mean(name, "steady")
        d_train = max(abs(a[1] - b[1]) for a, b in zip(r["train"], ref["train"]))
        d_eval = max((abs(a[1] - b[1]) for a, b in zip(r["eval"], ref["eval"])), default=float("nan"))
        final = r["eval"][-1][1]
        rel = (final - ref["eval"][-1][1]) / ref["eval"][-1][1]
        print(f"{name:56} {rt / args.steps:7.2f} {tokens_per_step * args.steps / rt:9.0f} {base_rt / rt:8.2f}× "
              f"{base_steady / steady:8.2f}× {final:7.4f} ({rel:+.1%}) train {d_train:.4f} / eval {d_eval:.4f}")


def bench_exam(args) -> None:
    import torch

    from helpers import inference

    answers = {}
    for dtype in ("float32", "bfloat16"):  # the course's own exam, only the weights' dtype differs
        loaded = inference.load(models.embedded_model(), dtype=getattr(torch, dtype))
        answers[dtype] = exams.exam(None, paths.DATA_DIR / "exam_100.jsonl", batch_size=32,
                                    max_new_tokens=args.max_new_tokens, save_to=False, limit=args.exam,
                                    progress=False, loaded=loaded)
    r32, r16 = answers["float32"], answers["bfloat16"]
    same = sum(a.response == b.response for a, b in zip(r32.items, r16.items))
    print(f"\nExam: {r32.n} questions of exam_100, {args.max_new_tokens} new tokens, batch 32, base model")
    print(f"  fp32 {r32.seconds:.1f} s, bf16 {r16.seconds:.1f} s ({r32.seconds / r16.seconds:.2f}×); "
          f"identical greedy answers: {same}/{r32.n}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=48)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--exam", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--skip-exam", action="store_true")
    ap.add_argument("--no-reverse", action="store_true", help="run each setting once (quicker, less fair)")
    ap.add_argument("--only", nargs="*", help="train only these settings (names as printed)")
    args = ap.parse_args()
    if args.only:
        for k in list(SETTINGS):
            if k not in args.only and k not in (TODAY, REFERENCE):
                SETTINGS.pop(k)
    print(f"CPU: {os.cpu_count()} cores, {environment.cpu_bf16()[1]}")
    bench_training(args)
    if not args.skip_exam:
        bench_exam(args)


if __name__ == "__main__":
    main()
