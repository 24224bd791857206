"""ms-swift's training log (`logging.jsonl`), read in one place, incrementally.

swift appends one JSON object per line while it trains: train points (`loss`, `learning_rate`,
`global_step/max_steps`), eval points (`eval_loss`), a trainer summary (`train_runtime`) and a last line
with `last_model_checkpoint` / `best_model_checkpoint`. `SwiftLog.read()` parses only the bytes added
since its last call and keeps a half-written last line for the next call, so watching a run costs a
few bytes per poll. A run that continued another (`--resume_from_checkpoint`) carries that run's points
in `resumed_history.jsonl`; they come first, so its curves cover the whole training.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

HISTORY_FILE = "resumed_history.jsonl"  # in a run that continued another: that run's points up to the resume step


def log_file(path) -> Path:
    p = Path(path)
    return p / "logging.jsonl" if p.is_dir() else p


def _float(x) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def _is_object(line: bytes) -> bool:
    try:
        return isinstance(json.loads(line), dict)
    except ValueError:
        return False


def step_of(row: dict) -> tuple[int, int] | None:
    """'5/35' -> (5, 35), or None for a line without a step."""
    gs = row.get("global_step/max_steps")
    if not isinstance(gs, str) or "/" not in gs:
        return None
    try:
        step, total = (int(p) for p in gs.split("/", 1))
    except ValueError:
        return None
    return step, total


class SwiftLog:
    """Curves and facts of one run's log: `read()` -> (train points, eval points, info)."""

    def __init__(self, path, with_history: bool = True):
        self.file = log_file(path)
        self.offset = 0
        self.pending = b""
        self.train: list[tuple[int, float]] = []
        self.evals: list[tuple[int, float]] = []
        self.info = {"path": str(self.file), "max_steps": None, "last_step": 0, "finished": False,
                     "skipped_lines": 0, "best_model_checkpoint": None, "last_model_checkpoint": None,
                     "best_metric": None, "learning_rate": [], "resumed_at": None}
        self.rows: list[dict] = []  # every JSON object read, in order
        history = self.file.parent / HISTORY_FILE
        if with_history and history.is_file() and history != self.file:  # only loss and eval lines: no summary of the earlier run
            for line in history.read_bytes().splitlines():
                self._take(line)
            self.info["resumed_at"] = self.info["last_step"]

    def _take(self, line: bytes) -> None:
        if not line.strip():
            return
        try:
            row = json.loads(line)
        except ValueError:
            self.info["skipped_lines"] += 1
            return
        if not isinstance(row, dict):
            self.info["skipped_lines"] += 1
            return
        info = self.info
        self.rows.append(row)
        at = step_of(row)
        if at:
            step, info["max_steps"] = at
            info["last_step"] = max(info["last_step"], step)
            if "loss" in row:
                self.train.append((step, _float(row["loss"])))
                if "learning_rate" in row:
                    info["learning_rate"].append((step, _float(row["learning_rate"])))
            if "eval_loss" in row:
                self.evals.append((step, _float(row["eval_loss"])))
        if "train_runtime" in row:
            info["finished"] = True
        if "last_model_checkpoint" in row:
            info["finished"] = True
            for k in ("best_model_checkpoint", "last_model_checkpoint", "best_metric"):
                info[k] = row.get(k)

    def read(self) -> tuple[list, list, dict]:
        """Everything logged so far (a line still being written is kept for the next call)."""
        if self.file.is_file():
            if self.file.stat().st_size < self.offset:  # the file was replaced: start again
                self.__init__(self.file, with_history=self.info["resumed_at"] is not None)
            with open(self.file, "rb") as f:
                f.seek(self.offset)
                chunk = f.read()
            self.offset += len(chunk)
            lines = (self.pending + chunk).split(b"\n")
            self.pending = lines.pop()
            if self.pending.strip().endswith(b"}") and _is_object(self.pending):  # complete, only unterminated
                lines.append(self.pending)
                self.pending = b""
            for line in lines:
                self._take(line)
        info = {**self.info, "learning_rate": list(self.info["learning_rate"])}
        if self.pending.strip():  # a half-written last line: not parsed yet, counted as skipped for now
            info["skipped_lines"] += 1
        # cancelling with SIGINT still writes the summary: "finished" but short of max_steps
        info["completed"] = info["finished"] and (info["max_steps"] is None or info["last_step"] >= info["max_steps"])
        return list(self.train), list(self.evals), info


def read_log(path) -> tuple[list, list, dict]:
    """(train points, eval points, info) of a run folder or a logging.jsonl, read once."""
    return SwiftLog(path).read()


def rows(path) -> list[dict]:
    """Every JSON object of one log file, in order (a blank or half-written line is passed over)."""
    log = SwiftLog(path, with_history=False)
    log.read()
    return log.rows
