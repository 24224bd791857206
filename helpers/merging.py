"""Merge a LoRA checkpoint into full weights with `swift export --merge_lora`, then prove nothing changed."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from . import paths, swift_runner

SMOKE_QUESTION = ("A triangular field has a base of 18 m and a height of 6 m. Each square metre yields 12 kg "
                  "of radishes. How many kilograms does the field yield?")


def _complete(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any(folder.glob("*.safetensors")) and (
        folder / "tokenizer_config.json").is_file()


def _base_model_dir(checkpoint: Path) -> Path:
    args = json.loads((checkpoint / "args.json").read_text())
    p = Path(args["model"])
    return p if p.is_absolute() else paths.COURSE_ROOT / p


def _load(folder: Path, adapter: Path | None = None):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(folder)
    lm = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    if adapter is not None:
        from peft import PeftModel

        lm = PeftModel.from_pretrained(lm, adapter)
    return tok, lm.eval()


def greedy_answer(tok, lm, question: str, max_new_tokens: int = 40) -> str:
    import torch

    ids = tok.apply_chat_template([{"role": "system", "content": ""}, {"role": "user", "content": question}],
                                  add_generation_prompt=True, return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = lm.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False)
    return tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)


def verify(checkpoint: Path, merged: Path) -> dict:
    """Tokenizer identical to the base model's; merged model and adapter give the same greedy answer."""
    base = _base_model_dir(checkpoint)
    tok_base, lm_adapter = _load(base, checkpoint)
    tok_merged, lm_merged = _load(merged)
    sample = "Area = 18 × 6 ÷ 2 = 54 m². {{ans:648}} <|im_start|>"
    if tok_base(sample)["input_ids"] != tok_merged(sample)["input_ids"] or len(tok_base) != len(tok_merged):
        raise RuntimeError(f"{merged}: tokenizer differs from the base model's. Fix: delete the folder and merge again.")
    a = greedy_answer(tok_base, lm_adapter, SMOKE_QUESTION)
    b = greedy_answer(tok_merged, lm_merged, SMOKE_QUESTION)
    if a != b:
        raise RuntimeError(f"merged model answers differently from the adapter:\n adapter: {a!r}\n merged:  {b!r}")
    return {"tokenizer": "identical to base", "smoke_question": SMOKE_QUESTION, "answer": a}


def merge(run_or_checkpoint, checkpoint: Path | None = None, show: bool = True) -> Path:
    """`swift export --adapters CKPT --merge_lora true` -> CKPT-merged/. Safe to run again.

    Takes a Run (its best checkpoint) or a checkpoint folder. The export goes to a temporary folder
    that is renamed when complete, so an interrupted merge never leaves a half-written model.
    """
    ckpt = Path(checkpoint or getattr(run_or_checkpoint, "best_checkpoint", None) or run_or_checkpoint)
    if not (ckpt / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{ckpt}: not a LoRA checkpoint (no adapter_config.json). "
                                "Fix: pass a Run or one of its checkpoint-N folders.")
    merged = ckpt.parent / f"{ckpt.name}-merged"
    if _complete(merged):
        if show:
            print(f"Already merged: {paths.short(merged)} (reused).")
        return merged
    tmp = ckpt.parent / f".{ckpt.name}-merging"
    shutil.rmtree(tmp, ignore_errors=True)
    args = swift_runner.export_command(ckpt) + ["--output_dir", swift_runner.arg_path(tmp)]
    if show:
        print("Running from the course folder:\n  " + swift_runner.printable("export", args), flush=True)
    log = ckpt.parent / "swift-export.log"
    proc = swift_runner.launch("export", args, log)
    t0 = time.time()
    try:
        proc.wait()
    except KeyboardInterrupt:
        swift_runner.stop_group(proc)
        shutil.rmtree(tmp, ignore_errors=True)
        print("Merge interrupted: nothing was written; the checkpoint is untouched.")
        raise
    if proc.returncode != 0 or not _complete(tmp):
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(f"swift export failed (exit {proc.returncode}):\n{swift_runner.swift_error(log)}")
    try:  # an unverified model must never be left behind, whatever stops us here
        report = verify(ckpt, tmp)
        (tmp / "ftlab_merge.json").write_text(json.dumps({**report, "checkpoint": ckpt.name}, indent=1,
                                                         ensure_ascii=False))
        os.replace(tmp, merged)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if show:
        print(f"Merged in {time.time() - t0:.0f} s -> {paths.short(merged)}\n"
              f"Tokenizer: {report['tokenizer']}. Smoke question answered identically by adapter and merged model:\n"
              f"  {report['answer'].strip()[:200]}")
    return merged
