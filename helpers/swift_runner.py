"""Build `swift sft` / `swift export` commands from the lesson's parameter names, check them, run them.

Commands are argument lists run without a shell, in their own process session (process.py), from the
course folder; the printed form is the same list, quoted so it can be pasted into a terminal there.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

from . import knobs, paths, process

# lesson flags that were renamed, with the fix to show when a learner types the old one
RENAMED = {
    "eval_step": "eval_steps",
    "sft_type": "tuner_type",
    "train_type": "tuner_type",
    "model_id_or_path": "model",
    "ckpt_dir": "adapters",
    "per_device_batch_size": "batch_size",
}
# flags the helpers set themselves: passing them through **extra would fight the engine
RESERVED = {"model", "model_type", "template", "dataset", "val_dataset", "output_dir", "add_version"}
SWIFT_ENV = {"LOG_LEVEL": "INFO", "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
# read by ms-swift's torchrun launch (with NPROC_PER_NODE) when a class trains across several machines
MULTI_NODE_ENV = ("NNODES", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT")


def swift_version() -> str:
    return metadata.version("ms-swift")


def known_flags(kind: str = "sft") -> set[str]:
    """Every argument name of the installed ms-swift's SftArguments / ExportArguments.

    Importing ms-swift takes ~5 s, so the list is cached per ms-swift version under .cache/.
    """
    cache = paths.CACHE_DIR / f"swift-flags-{swift_version()}.json"
    if cache.is_file():
        try:
            return set(json.loads(cache.read_text())[kind])
        except (ValueError, KeyError):
            pass
    code = (
        "import dataclasses, json\n"
        "from swift.arguments import SftArguments, ExportArguments\n"
        "print(json.dumps({'sft': [f.name for f in dataclasses.fields(SftArguments)],"
        " 'export': [f.name for f in dataclasses.fields(ExportArguments)]}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "LOG_LEVEL": "ERROR"})
    flags = json.loads(out.stdout.strip().splitlines()[-1])
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(flags))
    return set(flags[kind])


def check_flags(flags: list[str], kind: str = "sft") -> None:
    """Reject flags the installed ms-swift does not define (argparse would accept a unique prefix)."""
    known = known_flags(kind)
    bad = [f for f in flags if f not in known]
    if bad:
        hints = [f"--{b} (renamed: use {RENAMED[b]})" if b in RENAMED else f"--{b}" for b in bad]
        raise ValueError(f"ms-swift {swift_version()} has no flag {', '.join(hints)}. "
                         f"Fix: remove it or use a name from `swift {kind} --help`.")


def flag_text(value) -> str:
    """A value as swift reads it on its command line (and as the course prints it): 5e-5, 0.1, true, a path."""
    if isinstance(value, Path):
        return paths.arg_path(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value) if value >= 1e-3 or value == 0 else f"{value:.0e}".replace("e-0", "e-")
    return str(value)


def sft_command(model, dataset: Path, val_dataset: Path | None, params: dict, output_dir: Path,
                extra: dict | None = None) -> list[str]:
    """The `swift sft` argument list (without the interpreter prefix)."""
    args = list(model.swift_args())
    args[1] = paths.arg_path(model.path)
    args += ["--dataset", paths.arg_path(dataset)]
    if val_dataset is not None:
        args += ["--val_dataset", paths.arg_path(val_dataset)]
    for lesson, flag in knobs.FLAGS.items():
        args += [f"--{flag}", flag_text(params[lesson])]
    # the lesson saves a checkpoint at every evaluation; best_model_checkpoint needs that
    args += ["--save_steps", flag_text(params["eval_steps"]), "--per_device_eval_batch_size",
             flag_text(params["batch_size"])]
    args += ["--output_dir", paths.arg_path(output_dir), "--add_version", "false",
             # without this every run spends ~22 s retrying hub look-ups for a local model
             "--check_model", "false", "--report_to", "none"]
    for key, value in (extra or {}).items():  # a list is a flag that takes several values (--callbacks a b)
        args += [f"--{key}", *map(flag_text, value if isinstance(value, (list, tuple)) else [value])]
    return args


def export_command(checkpoint: Path) -> list[str]:
    return ["--adapters", paths.arg_path(checkpoint), "--merge_lora", "true", "--exist_ok", "true"]


def printable(verb: str, args: list[str], env: dict | None = None) -> str:
    prefix = "".join(f"{k}={shlex.quote(str(v))} " for k, v in (env or {}).items())
    return prefix + f"swift {verb} " + " ".join(shlex.quote(a) for a in args)


def launch(verb: str, args: list[str], log_path: Path, env: dict | None = None, run_dir: Path | None = None,
           lock: process.TrainingLock | None = None) -> process.Child:
    """Start `swift VERB args` from the course folder in a session of its own, guarded: stopped as a whole
    tree, and by its guard if the process that started it dies (`run_dir` gets the note why)."""
    return process.Child([sys.executable, "-m", "swift.cli.main", verb, *args], log_path, {**SWIFT_ENV, **(env or {})},
                         run_dir=run_dir, lock=lock)


def swift_error(log_path: Path, max_lines: int = 15) -> str:
    """The part of swift's output that explains a failure: the traceback's end, or the last lines."""
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    lines = [ln for ln in lines if ln.strip() and "it/s]" not in ln and "s/it]" not in ln]
    for i in range(len(lines) - 1, -1, -1):
        if lines[i].startswith("Traceback"):
            tail = lines[i:]
            return "\n".join(tail[-max_lines:])
    return "\n".join(lines[-max_lines:])


def swift_template(model_dir: str | Path, model_type: str | None = None, template_type: str | None = None):
    """The ms-swift template that `swift sft` uses for this model, in inference mode (no hub look-ups)."""
    os.environ.setdefault("LOG_LEVEL", "ERROR")  # swift's import-time INFO/WARNING lines would clutter the notebook
    from swift.model import get_processor
    from swift.template import get_template

    processor = get_processor(str(model_dir), model_type=model_type, download_model=False)
    if template_type is None and "<|im_start|>" in (getattr(processor, "chat_template", None) or ""):
        try:
            return get_template(processor)
        except ValueError:  # llama-architecture chatml models are ambiguous for swift's auto-detection
            template_type = "chatml"
    return get_template(processor, template_type=template_type)
