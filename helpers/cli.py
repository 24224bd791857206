"""`python -m helpers VERB`: the notebook's helpers as shell commands. Exit 0 on success, non-zero + message on failure."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from . import knobs


def _check(args) -> int:
    from .pace import check_environment

    print(check_environment(show=False))
    return 0


def _prepare(args) -> int:
    from .models import prepare_embedded

    prepare_embedded(force=args.force)
    return 0


def _kernel(args) -> int:
    from . import kernel

    if args.remove:
        print(f"Jupyter kernel {kernel.KERNEL_NAME}: {'removed' if kernel.unregister() else 'was not registered'}.")
    else:
        print(kernel.register())
    return 0


def _validate(args) -> int:
    from . import data, models

    problems, model = [], None
    for name in args.files:
        check = data.check_file(name)
        problems += check.errors
        for line in check.errors:
            print(line)
        if check.errors:
            continue
        if args.max_length:
            model = model or models.get_model(args.model, require_gpu=False)
            for line in data.long_rows(check, model.path, args.max_length):
                print(f"{line} (warning)")
        if check.repairs:
            print(f"{name}: {' and '.join(check.repairs)}: fine, sft trains on a clean copy (note)")
    if not problems:
        print(f"ok: {len(args.files)} file{'s' if len(args.files) != 1 else ''} valid")
    return 1 if problems else 0


def _diagnose(args) -> int:
    from .history import diagnose_log

    d = diagnose_log(args.path)
    print(json.dumps(d.to_dict(), ensure_ascii=False) if args.json else d)
    return 0


def _score(args) -> int:
    from .data import read_rows
    from .scoring import score_responses

    rows = read_rows(args.data)
    responses = [json.loads(line)["response"] for line in Path(args.responses).read_text(encoding="utf-8").splitlines()
                 if line.strip()]
    if len(responses) != len(rows):
        raise ValueError(f"{args.responses}: {len(responses)} responses for {len(rows)} questions in {args.data}. "
                         "Fix: one {\"response\": ...} line per question, in data order.")
    result = score_responses(rows, responses)
    print(json.dumps(result.to_json(), ensure_ascii=False) if args.json else result.summary())
    return 0


def _exam(args) -> int:
    from .exams import exam

    result = exam(args.model, args.data, save_to=args.out, limit=args.limit, max_new_tokens=args.max_new_tokens)
    print(result.summary())
    return 0


def _pairs(rest: list[str]) -> dict:
    """Extra `--flag value` pairs after the known options become ms-swift flags."""
    extra, i = {}, 0
    while i < len(rest):
        key = rest[i]
        if not key.startswith("--") or i + 1 >= len(rest):
            raise ValueError(f"cannot read {key!r}: extra options must be `--flag value` pairs.")
        extra[key[2:]] = rest[i + 1]
        i += 2
    return extra


def _sft(args, rest) -> int:
    from .training import sft

    run = sft(args.model, args.dataset, **{name: getattr(args, name) for name in knobs.NAMES},
              val_dataset=args.val_dataset, train_rows=args.train_rows, val_rows=args.val_rows, label=args.label, nproc_per_node=args.nproc_per_node, show=True, **_pairs(rest))
    print(f"{run.status}: {run.run_dir}")  # sft(show=True) has already shown the diagnosis card
    return {"finished": 0, "interrupted": 130}.get(run.status, 1)


def _merge(args) -> int:
    from .history import Run
    from .merging import merge

    target = Path(args.run)
    src = Run.load(target) if (target / "ftlab_run.json").is_file() else target
    print(merge(src))
    return 0


def _export(args) -> int:
    from .gguf_export import check_gguf, export_gguf, merged_folder
    from .history import RUN_FILE, Run

    if not args.gguf:
        raise ValueError("say which format: `export RUN --gguf` (GGUF, with an Ollama Modelfile) is the one there is.")
    target = Path(args.run)
    source = Run.load(target) if (target / RUN_FILE).is_file() else target
    folder = merged_folder(source)
    path = export_gguf(folder, quant=args.quant, out_dir=args.out_dir)
    if args.check:
        from .llamacpp import check_llamacpp, llamacpp_missing

        r = check_gguf(path, folder, max_new_tokens=args.max_new_tokens)
        print(f"check by transformers' GGUF reader, the lesson's {r['total']} questions, {r['max_new_tokens']} tokens: "
              f"{r['identical']} answers identical to the merged model's, {r['same_number']} with the same last number")
        problem = llamacpp_missing()
        print(problem if problem else check_llamacpp(path, folder, max_new_tokens=args.max_new_tokens).summary())
    print(path)
    return 0


def _runs(args) -> int:
    from .history import runs
    from .serving import servers

    for r in runs(show=False):
        print(f"{r.run_dir}\t{r.status_text}\t{r.diagnosis.state if r.log_path.is_file() else '-'}")
    for s in servers():
        print(f"{s.folder}\tserving at {s.url}\t{', '.join(s.names.values())} (pid {s.pid})")
    return 0


def _serve(args) -> int:
    import time

    from .history import RUN_FILE, Run
    from .serving import serve

    target = Path(args.run)
    server = serve(Run.load(target) if (target / RUN_FILE).is_file() else target, host=args.host, port=args.port)
    print("Ctrl-C stops it.", flush=True)
    try:
        while server.alive:
            time.sleep(0.5)
    except KeyboardInterrupt:
        server.stop()
        print("server stopped")
        return 0
    print(f"error: the server stopped by itself; its log: {server.log_path}", file=sys.stderr)
    return 1


def _stop(args) -> int:
    from .history import RUN_FILE
    from .training import stop

    if not (Path(args.run) / RUN_FILE).is_file():
        raise ValueError(f"{args.run}: not a run folder (no {RUN_FILE}). Fix: pick one from `python -m helpers runs`.")
    run = stop(args.run, why="stopped with `python -m helpers stop`")
    print(f"{run.status_text}: {run.run_dir}")
    return 0


def _replay(args) -> int:
    from .recordings import load_recording

    run = load_recording(args.name)
    print(f"RECORDING {run.label}: {run.hardware}, {run.started[:10]}\n{run.command}\n")
    print(run.diagnosis)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m helpers", description="Fine-Tuning Lab helpers",
                                     allow_abbrev=False)
    sub = parser.add_subparsers(dest="verb", required=True)
    sub.add_parser("check", help="environment report and the track that will be used").set_defaults(func=_check)
    p = sub.add_parser("prepare", help="convert the embedded model once (idempotent)")
    p.add_argument("--force", action="store_true", help="rebuild even if the cache looks complete")
    p.set_defaults(func=_prepare)
    p = sub.add_parser("kernel", help="register the course's Jupyter kernel for this user (idempotent; set-up runs it)")
    p.add_argument("--remove", action="store_true", help="unregister it instead")
    p.set_defaults(func=_kernel)
    p = sub.add_parser("validate", help="check dataset files; prints FILE:LINE: reason")
    p.add_argument("files", nargs="+")
    p.add_argument("--max_length", type=int, help="also name the rows longer than this many tokens (swift drops them)")
    p.add_argument("--model", default=None, help="whose tokenizer counts the tokens (default: the course's model)")
    p.set_defaults(func=_validate)
    p = sub.add_parser("diagnose", help="training state of a run folder or logging.jsonl")
    p.add_argument("path")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_diagnose)
    p = sub.add_parser("score", help="score saved responses against a test file")
    p.add_argument("--data", required=True)
    p.add_argument("--responses", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_score)
    p = sub.add_parser("exam", help="batched greedy exam of a model folder or LoRA checkpoint")
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--limit", type=int)
    p.add_argument("--max_new_tokens", type=int, default=256)
    p.set_defaults(func=_exam)
    p = sub.add_parser("sft", allow_abbrev=False, help="one experiment: swift sft with live log, diagnosis at the end; "
                                    "extra `--flag value` pairs go to swift")
    p.add_argument("--model", default=None)
    p.add_argument("--dataset", default="train_100")
    p.add_argument("--val_dataset", default="val")
    for knob in knobs.KNOBS:
        p.add_argument(f"--{knob.name}", type=knob.kind, default=knob.default, help=f"{knob.help} (swift --{knob.flag})")
    p.add_argument("--train_rows", type=int)
    p.add_argument("--val_rows", type=int)
    p.add_argument("--label")
    p.add_argument("--nproc_per_node", type=int, help="GPUs (or CPU processes) to train on at once")
    p.set_defaults(func=_sft, takes_rest=True)
    p = sub.add_parser("merge", help="swift export --merge_lora for a run folder (best checkpoint) or a checkpoint")
    p.add_argument("run")
    p.set_defaults(func=_merge)
    sub.add_parser("runs", help="list the runs on disk").set_defaults(func=_runs)
    p = sub.add_parser("export", help="a GGUF file (llama.cpp, Ollama) and an Ollama Modelfile of a run (merged "
                       "first), a checkpoint or a merged model folder")
    p.add_argument("run")
    p.add_argument("--gguf", action="store_true", help="write GGUF (the format there is)")
    p.add_argument("--quant", choices=["f16", "q8_0"], default="f16", help="f16 (default) or 8-bit q8_0")
    p.add_argument("--out_dir", default=None, help="default: MERGED-gguf/ beside the merged folder")
    p.add_argument("--check", action="store_true", help="compare its greedy answers with the merged model's")
    p.add_argument("--max_new_tokens", type=int, default=64)
    p.set_defaults(func=_export)
    p = sub.add_parser("serve", help="swift deploy of a run (base model + its best checkpoint as 'tuned'), a "
                       "checkpoint or a model folder, for an OpenAI client; Ctrl-C stops it")
    p.add_argument("run")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: this machine only)")
    p.add_argument("--port", type=int, default=None, help="default: a free port")
    p.set_defaults(func=_serve)
    p = sub.add_parser("stop", help="stop a live training (its whole process tree), started anywhere on this machine")
    p.add_argument("run", help="its run folder, e.g. output/cpu/004-exp4")
    p.set_defaults(func=_stop)
    p = sub.add_parser("replay", help="print a recording's command and diagnosis")
    p.add_argument("name")
    p.set_defaults(func=_replay)
    return parser


def main(argv: list[str] | None = None) -> int:
    # A process started in the background by a non-interactive shell inherits SIGINT as "ignored";
    # Ctrl-C (or a test's SIGINT) must still stop training cleanly, so take the default handler back.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if rest and not getattr(args, "takes_rest", False):
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    try:
        return args.func(args, rest) if getattr(args, "takes_rest", False) else args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, RuntimeError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
