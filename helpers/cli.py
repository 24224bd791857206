"""`python -m helpers VERB`: the notebook's helpers as shell commands. Exit 0 on success, non-zero + message on failure."""

from __future__ import annotations

import argparse
import sys


def _check(args) -> int:
    from .environment import check_environment

    print(check_environment(show=False))
    return 0


def _prepare(args) -> int:
    from .models import prepare_embedded

    prepare_embedded(force=args.force)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m helpers", description="Fine-Tuning Lab helpers")
    sub = parser.add_subparsers(dest="verb", required=True)
    sub.add_parser("check", help="environment report and the track that will be used").set_defaults(func=_check)
    p = sub.add_parser("prepare", help="convert the embedded model once (idempotent)")
    p.add_argument("--force", action="store_true", help="rebuild even if the cache looks complete")
    p.set_defaults(func=_prepare)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, RuntimeError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
