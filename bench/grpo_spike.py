"""Issue 41's spike: can GRPO (`swift rlhf --rlhf_type grpo`) raise the fine-tuned model's reward by more than its
noise in at most 15 minutes on 2 CPU cores? Measured before anything is built for learners.

    .venv/bin/python bench/grpo_spike.py pick  --model M --questions 96          # offline: which prompts have spread
    .venv/bin/python bench/grpo_spike.py select --low 3 --high 5 --keep 16 --out output/grpo-spike/prompts16.jsonl
    .venv/bin/python bench/grpo_spike.py select --low 3 --high 5 --keep 8 --out output/grpo-spike/prompts8.jsonl
    .venv/bin/python bench/grpo_spike.py train --model M --prompts output/grpo-spike/prompts8.jsonl \
        --generations 4 --prompts-per-step 8 --steps 16 --lr 2e-4 --seed 42 --label e8x4-lr2e-4-s42   # design E
    .venv/bin/python bench/grpo_spike.py exam  --model M [--adapter RUN/checkpoint-N]
    .venv/bin/python bench/grpo_spike.py report RUN [RUN ...] [--window K]

The designs tried and their numbers: bench/grpo_spike.md.

M is a merged fine-tuned model folder (experiment 5's best checkpoint merged, e.g. `merge(run)`); GRPO trains a fresh
LoRA on top of it. The reward is `helpers/swift_plugins/exam_reward.py`: the exam's strict rule, imported.

`pick` samples each of train_1k's first N questions `--samples` times at GRPO's temperature and keeps those answered
right between --low and --high times: a group whose answers are all right or all wrong has no spread, so GRPO's
advantage is zero for all of it and the step learns nothing from that group. Training questions only: no exam
question can reach the reward data (train_1k shares no question with exam_100: tests/test_problems.py).

`report` prints, per run: the correctness reward by step (raw and a trailing 5-step mean), the fraction of groups with
zero spread, the mean completion length, the wall time, and the verdict: rise = mean of the last 5 steps minus the
mean of the first 5; noise = the step-to-step standard deviation of the raw reward (sd of successive differences /
sqrt 2, which a steady trend does not inflate); the run passes when rise > noise.
Runs are kept under output/grpo-spike/ (git-ignored). swift's GRPO trainer needs `msgspec` (in requirements.txt).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("FTLAB_TRACK", "cpu")

from helpers import data, process, scoring, swift_runner, swiftlog  # noqa: E402

OUT = ROOT / "output" / "grpo-spike"
PLUGIN = "helpers/swift_plugins/exam_reward.py"
CORRECT = "rewards/ExamCorrect/mean"


def grpo_row(question: str, answer: str) -> dict:
    row = data.prompt_row(question)
    row["solution"] = answer
    return row


def pick(args) -> None:
    import torch

    from helpers import inference

    torch.manual_seed(args.seed)
    loaded = inference.load(args.model)
    rows = data.read_rows(ROOT / "resources/2_7/train_1k.jsonl")[args.start:args.start + args.questions]
    found, t0 = [], time.time()
    for i in range(0, len(rows), args.batch):
        chunk = rows[i:i + args.batch]
        prompts = [inference.encode_prompt(loaded.template, data.prompt_row(data.question_of(r))) for r in chunk]
        answers = inference.sample(loaded, prompts, args.samples, args.max_new_tokens, args.temperature)
        for k, (r, texts) in enumerate(zip(chunk, answers)):
            right = sum(scoring.strict_correct(t, data.expected_answer(r)) for t in texts)
            found.append({"line": args.start + i + k + 1, "right": right, "question": data.question_of(r),
                          "solution": data.expected_answer(r)})
        print(f"{len(found)} questions sampled, {time.time() - t0:.0f} s", flush=True)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "pick.json").write_text(json.dumps(found, ensure_ascii=False, indent=0), encoding="utf-8")
    hist = {n: sum(f["right"] == n for f in found) for n in range(args.samples + 1)}
    print(f"right of {args.samples} samples -> questions: {hist}")
    select(args)


def select(args) -> None:
    """The prompts GRPO practises: pick.json's questions answered right between --low and --high times of 8
    (the first --keep of them, if given), as rows with the expected number in a `solution` column."""
    found = json.loads((OUT / "pick.json").read_text(encoding="utf-8"))
    kept = [f for f in found if args.low <= f["right"] <= args.high][:args.keep]
    out = Path(args.out)
    with open(out, "w", encoding="utf-8") as fh:
        for f in kept:
            fh.write(json.dumps(grpo_row(f["question"], f["solution"]), ensure_ascii=False) + "\n")
    print(f"kept {len(kept)} with {args.low}-{args.high} right -> {out}  (share right "
          f"{statistics.mean(f['right'] for f in found) / 8:.3f} over all, "
          f"{statistics.mean(f['right'] for f in kept) / 8:.3f} over kept, in pick's samples)")


def train(args) -> None:
    out = OUT / args.label
    if out.exists():
        raise SystemExit(f"{out} exists: pick another --label")
    gens = args.generations
    argv = ["--rlhf_type", "grpo", "--model", args.model,
            "--model_type", "llama", "--template", "chatml", "--dataset", args.prompts,
            "--external_plugins", PLUGIN, "--reward_funcs", "ftlab_correct", *(["ftlab_format"] if args.format else []),
            *(["--reward_weights", "1.0", str(args.format)] if args.format else []),
            "--use_vllm", "false", "--beta", str(args.beta), "--num_generations", str(gens),
            "--per_device_train_batch_size", str(gens * args.prompts_per_step), "--gradient_accumulation_steps", "1",
            "--max_completion_length", str(args.max_new_tokens), "--max_length", "256",
            "--temperature", str(args.temperature), "--max_steps", str(args.steps),
            "--learning_rate", str(args.lr), "--lr_scheduler_type", args.scheduler, "--warmup_ratio", "0",
            "--lora_rank", str(args.rank), "--lora_alpha", str(4 * args.rank),
            "--output_dir", str(out), "--add_version", "false", "--report_to", "none", "--logging_steps", "1",
            "--save_steps", str(args.steps), "--fp16", "false", "--bf16", "false", "--dataloader_num_workers", "0",
            "--check_model", "false", "--split_dataset_ratio", "0", "--seed", str(args.seed),
            "--data_seed", str(args.seed), "--log_completions", "true"]
    print(swift_runner.printable("rlhf", argv), flush=True)
    # the course's guard: one training per machine, and swift's whole tree stops with this script
    lock = process.TrainingLock()
    lock.claim(f"bench/grpo_spike.py {args.label}")
    t0 = time.time()
    try:
        out.mkdir(parents=True)
        child = swift_runner.launch("rlhf", argv, out / "swift.log", run_dir=out, lock=lock)
    except BaseException:
        lock.release()
        raise
    rc = child.wait()
    (out / "spike.json").write_text(json.dumps({"argv": argv, "wall_s": round(time.time() - t0, 1), "rc": rc}))
    print(f"rc {rc} in {time.time() - t0:.0f} s")
    report_one(out)


def trailing(values, k=5):
    return [statistics.mean(values[max(0, i - k + 1):i + 1]) for i in range(len(values))]


def verdict(rewards: list[float], k: int = 5) -> dict:
    first, last = statistics.mean(rewards[:k]), statistics.mean(rewards[-k:])
    rise = last - first
    diffs = [b - a for a, b in zip(rewards, rewards[1:])]
    noise = statistics.stdev(diffs) / math.sqrt(2)
    return {"first": first, "last": last, "rise": rise, "noise": noise, "passes": rise > noise}


def report_one(run: Path, window: int = 5) -> None:
    rows = [r for r in swiftlog.rows(run / "logging.jsonl") if CORRECT in r]
    if len(rows) < 10:
        print(f"{run}: {len(rows)} steps logged, too few to judge")
        return
    correct = [r[CORRECT] for r in rows]
    smooth = trailing(correct, window)
    spike = json.loads((run / "spike.json").read_text()) if (run / "spike.json").is_file() else {}
    print(f"\n{run.relative_to(ROOT)}: {len(rows)} steps, wall {spike.get('wall_s', '?')} s")
    print(f" step  correct  {window}-step  zero-spread  length  step s")
    for r, c, s in zip(rows, correct, smooth):
        print(f" {swiftlog.step_of(r)[0]:4d}  {c:7.3f}  {s:6.3f}  {r.get('frac_reward_zero_std', float('nan')):11.2f}"
              f"  {r.get('completions/mean_length', float('nan')):6.1f}  {r.get('step_time', float('nan')):6.1f}")
    v = verdict(correct, window)
    zero = statistics.mean(r.get("frac_reward_zero_std", 0) for r in rows)
    length = [r.get("completions/mean_length", float("nan")) for r in rows]
    print(f" reward {v['first']:.3f} in the first {window} steps, {v['last']:.3f} in the last {window}: "
          f"rise {v['rise']:+.3f}, noise {v['noise']:.3f} (step to step) -> "
          f"{'PASSES' if v['passes'] else 'does not pass'}; groups without spread {zero:.0%}; mean length "
          f"{statistics.mean(length[:window]):.0f} -> {statistics.mean(length[-window:]):.0f} tokens")
    paired = revisits(run / "completions.jsonl")
    if paired:
        first, again = zip(*paired)
        gain = [b - a for a, b in paired]
        se = statistics.stdev(gain) / math.sqrt(len(gain)) if len(gain) > 1 else float("nan")
        print(f" the {len(paired)} questions met twice: right {statistics.mean(first):.3f} the first time, "
              f"{statistics.mean(again):.3f} the last time ({statistics.mean(gain):+.3f} ± {se:.3f}, one standard "
              f"error of the paired mean)")


def revisits(path: Path) -> list[tuple[float, float]]:
    """(share right the first time, share right the last time) for each question the run sampled more than once:
    the same questions, so their difficulty cancels out of the difference."""
    if not path.is_file():
        return []
    seen: dict[str, list[float]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        r = json.loads(line)
        by_prompt: dict[str, list[float]] = {}
        for prompt, reward in zip(r["prompt"], r["ExamCorrect"]):
            by_prompt.setdefault(json.dumps(prompt, ensure_ascii=False), []).append(reward)
        for prompt, rewards in by_prompt.items():
            seen.setdefault(prompt, []).append(statistics.mean(rewards))
    return [(v[0], v[-1]) for v in seen.values() if len(v) > 1]


def exam_cmd(args) -> None:
    from helpers import exam, tracks

    target = args.adapter or args.model
    result = exam(target, ROOT / "resources/2_7/exam_100.jsonl", save_to=False, progress=False,
                  **tracks.exam_settings("cpu"))
    n, right = result.n, sum(i.strict for i in result.items)  # a count: strict_score is a rounded percentage
    p = right / n
    print(f"{target}: exam_100 strict {right}/{n} (± {100 * math.sqrt(p * (1 - p) / n):.1f} points, one "
          f"standard error), {result.seconds:.0f} s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pick")
    p.add_argument("--model", required=True)
    p.add_argument("--questions", type=int, default=96)
    p.add_argument("--start", type=int, default=0, help="skip train_1k's first N rows")
    p.add_argument("--samples", type=int, default=8)
    p.add_argument("--batch", type=int, default=8, help="questions per generate call")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--max-new-tokens", type=int, default=80)
    p.add_argument("--seed", type=int, default=0)
    for q in (p, sub.add_parser("select", help="re-select prompts from pick.json")):
        q.add_argument("--low", type=int, default=2)
        q.add_argument("--high", type=int, default=6)
        q.add_argument("--keep", type=int, default=None, help="only the first N that qualify")
        q.add_argument("--out", default=str(OUT / "prompts.jsonl"))
    t = sub.add_parser("train")
    t.add_argument("--model", required=True)
    t.add_argument("--prompts", default=str(OUT / "prompts.jsonl"))
    t.add_argument("--label", required=True)
    t.add_argument("--steps", type=int, default=30)
    t.add_argument("--lr", type=float, default=5e-4)
    t.add_argument("--scheduler", default="constant")
    t.add_argument("--beta", type=float, default=0.0)
    t.add_argument("--generations", type=int, default=8)
    t.add_argument("--prompts-per-step", type=int, default=2)
    t.add_argument("--max-new-tokens", type=int, default=80)
    t.add_argument("--temperature", type=float, default=1.0)
    t.add_argument("--rank", type=int, default=8)
    t.add_argument("--format", type=float, default=0.0, help="weight of the format reward (0: correctness only)")
    t.add_argument("--seed", type=int, default=42)
    e = sub.add_parser("exam")
    e.add_argument("--model", required=True)
    e.add_argument("--adapter", default=None)
    r = sub.add_parser("report")
    r.add_argument("runs", nargs="+", type=Path)
    r.add_argument("--window", type=int, default=5, help="steps per smoothed point (e.g. one pass over the prompts)")
    args = ap.parse_args()
    if args.cmd == "pick":
        pick(args)
    elif args.cmd == "select":
        select(args)
    elif args.cmd == "train":
        train(args)
    elif args.cmd == "exam":
        exam_cmd(args)
    else:
        for run in args.runs:
            report_one(run if run.is_absolute() else ROOT / run, args.window)


if __name__ == "__main__":
    main()
