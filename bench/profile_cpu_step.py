"""Where a cpu-track training step spends its time: a torch.profiler table by operator.

The step as `swift sft` runs it on the cpu track, in plain PyTorch: the embedded model, LoRA r8 on every linear
layer without dropout, 8 rows of train_1k per step padded to the longest, labels on the answer only, the LM head
only from the first labelled position on (ms-swift's use_logits_to_keep), AdamW. fp32 with SDPA attention, or
with --bf16 the cpu track's bf16 mode (autocast, the plugin's LoRA sums in fp32, eager attention). One warm-up
step, then --steps profiled steps.

Usage: .venv/bin/python bench/profile_cpu_step.py [--steps 2] [--bf16] [--rows 25]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from helpers import pace, paths  # noqa: E402

BATCH = pace.BATCH


def batches(tokenizer, n: int) -> list[tuple]:
    """n batches of BATCH training rows: ids, attention mask, labels (-100 on the prompt and the padding)."""
    import torch

    def ids(messages, **kw):
        out = tokenizer.apply_chat_template(messages, tokenize=True, **kw)
        return out["input_ids"] if hasattr(out, "keys") else out

    lines = (paths.DATA_DIR / "train_1k.jsonl").read_text(encoding="utf-8").splitlines()[: BATCH * n]
    out = []
    for b in range(n):
        rows = [json.loads(ln)["messages"] for ln in lines[b * BATCH:(b + 1) * BATCH]]
        full = [ids(m) for m in rows]
        prompt = [len(ids(m[:-1], add_generation_prompt=True)) for m in rows]
        width = max(map(len, full))
        pad = [width - len(f) for f in full]
        out.append((torch.tensor([f + [0] * p for f, p in zip(full, pad)]),
                    torch.tensor([[1] * len(f) + [0] * p for f, p in zip(full, pad)]),
                    torch.tensor([[-100] * n_p + f[n_p:] + [-100] * p for f, n_p, p in zip(full, prompt, pad)])))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--bf16", action="store_true")
    ap.add_argument("--rows", type=int, default=25, help="operators shown")
    args = ap.parse_args()

    import torch
    from peft import LoraConfig, get_peft_model
    from torch.profiler import ProfilerActivity, profile
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = paths.embedded_model_dir()
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32,
                                                 attn_implementation="eager" if args.bf16 else "sdpa")
    model = get_peft_model(model, LoraConfig(r=pace.RANK, lora_alpha=32, lora_dropout=0.0,
                                             target_modules="all-linear", task_type="CAUSAL_LM"))
    if args.bf16:
        pace._lora_fp32().keep_lora_sums_in_fp32(model)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)

    def step(ids, mask, labels):
        keep = ids.shape[1] - int((labels != -100).int().argmax(-1).min()) + 1  # as ms-swift keeps them
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            loss = model(input_ids=ids, attention_mask=mask, labels=labels[:, -keep:], logits_to_keep=keep,
                         use_cache=False).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    data = batches(AutoTokenizer.from_pretrained(folder), args.steps + 1)
    step(*data[0])  # warm-up
    t0 = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for b in data[1:]:
            step(*b)
    seconds = (time.perf_counter() - t0) / args.steps
    tokens = sum(int(b[0].numel()) for b in data[1:]) / args.steps
    print(f"{'bf16' if args.bf16 else 'fp32'}, {torch.get_num_threads()} threads: {seconds:.2f} s a step "
          f"(profiled), {tokens:.0f} padded tokens a step")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.rows))


if __name__ == "__main__":
    main()
