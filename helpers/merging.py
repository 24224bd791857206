"""Merge a LoRA checkpoint into full weights with `swift export --merge_lora`, then prove nothing changed."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

from . import data, inference, models, paths, swift_runner
from .history import is_run


def _complete(folder: Path) -> bool:
    return folder.is_dir() and not models.folder_problems(folder)


def verify(checkpoint: Path, merged: Path) -> dict:
    """Tokenizer identical to the base model's; merged model and adapter give the same greedy answer
    to the demo question (loaded and prompted exactly as the exam does)."""
    adapter, full = inference.load(checkpoint), inference.load(merged)  # adapter's tokenizer is the base model's
    sample = "Area = 18 × 6 ÷ 2 = 54 m². {{ans:648}} <|im_start|>"
    if adapter.tokenizer(sample)["input_ids"] != full.tokenizer(sample)["input_ids"] or \
            len(adapter.tokenizer) != len(full.tokenizer):
        raise RuntimeError(f"{merged}: tokenizer differs from the base model's. Fix: delete the folder and merge again.")
    row = data.read_rows(paths.DATA_DIR / "demo.jsonl")[0]
    tool = inference.uses_calculator(checkpoint)  # a model trained to call the calculator is checked with it
    with inference.threads(None):
        a, b = (inference.generate(m, [inference.encode_prompt(m.template, row)], 64, tool=tool)[0]
                for m in (adapter, full))
    if a != b:
        raise RuntimeError(f"merged model answers differently from the adapter:\n adapter: {a!r}\n merged:  {b!r}")
    return {"tokenizer": "identical to base", "smoke_question": data.question_of(row), "answer": a}


def _keep_standin_label(checkpoint: Path, merged: Path) -> None:
    """A stand-in's merged model is still a stand-in: carry its label file (swift export copies only
    config/tokenizer files), so get_model/exam keep saying that it learns nothing."""
    label = inference.base_of(checkpoint) / models.STANDIN_FILE
    if label.is_file():
        shutil.copy(label, merged / models.STANDIN_FILE)


def merge(run_or_checkpoint, checkpoint: Path | None = None, show: bool = True) -> Path:
    """`swift export --adapters CKPT --merge_lora true` -> CKPT-merged/. Safe to run again.

    Takes a Run (its best checkpoint) or a checkpoint folder. The export goes to a temporary folder
    that is renamed when complete, so an interrupted merge never leaves a half-written model.
    """
    ckpt = Path(checkpoint or (run_or_checkpoint.best_checkpoint if is_run(run_or_checkpoint) else run_or_checkpoint))
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
    args = swift_runner.export_command(ckpt) + ["--output_dir", paths.arg_path(tmp)]
    if show:
        print("Running from the course folder:\n  " + swift_runner.printable("export", args), flush=True)
    log = ckpt.parent / "swift-export.log"
    t0 = time.time()
    try:
        returncode = swift_runner.launch("export", args, log).wait()  # an interrupt stops the whole tree
    except KeyboardInterrupt:
        shutil.rmtree(tmp, ignore_errors=True)
        print("Merge interrupted: nothing was written; the checkpoint is untouched.")
        raise
    if returncode != 0 or not _complete(tmp):
        shutil.rmtree(tmp, ignore_errors=True)
        raise RuntimeError(f"swift export failed (exit {returncode}):\n{swift_runner.swift_error(log)}")
    try:  # an unverified model must never be left behind, whatever stops us here
        _keep_standin_label(ckpt, tmp)
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
