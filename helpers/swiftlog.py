"""ms-swift's training log (`logging.jsonl`), read in one place, incrementally.

swift appends one JSON object per line while it trains: train points (`loss`, `learning_rate`,
`global_step/max_steps`), eval points (`eval_loss`), a trainer summary (`train_runtime`) and a last line
with `last_model_checkpoint` / `best_model_checkpoint`. `SwiftLog.read()` parses only the bytes added
since its last call and keeps a half-written last line for the next call, so watching a run costs a
few bytes per poll. A run that continued another (`--resume_from_checkpoint`) carries that run's points
in `resumed_history.jsonl`; they come first, so its curves cover the whole training. What a read returns is a
`LogState`: the curves and facts of the log so far, typed, and a copy the caller may keep.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field, replace
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


def elapsed_seconds(text) -> float:
    """'1m 5s' / '65s' / '0:01:05' -> seconds (swift writes elapsed_time as a string)."""
    if isinstance(text, (int, float)):
        return float(text)
    if ":" in str(text):
        parts = [float(x) for x in str(text).split(":")]
        return sum(v * 60**i for i, v in enumerate(reversed(parts)))
    total, units = 0.0, {"h": 3600, "m": 60, "s": 1, "d": 86400}
    for value, unit in re.findall(r"([\d.]+)\s*([dhms])", str(text)):
        total += float(value) * units[unit]
    return total


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


@dataclass
class LogState:
    """One run's log as read so far: its curves (lists of (step, value)) and what swift said about the run."""

    path: str
    train: list[tuple[int, float]] = field(default_factory=list)  # (step, train loss)
    evals: list[tuple[int, float]] = field(default_factory=list)  # (step, eval loss)
    learning_rate: list[tuple[int, float]] = field(default_factory=list)  # (step, lr): the schedule swift logged
    max_steps: int | None = None
    last_step: int = 0
    finished: bool = False  # swift wrote its summary (also when a run was cancelled)
    completed: bool = False  # finished and all max_steps done
    skipped_lines: int = 0  # lines that are not JSON objects (a half-written last line counts until it is whole)
    best_model_checkpoint: str | None = None
    last_model_checkpoint: str | None = None
    best_metric: float | None = None
    resumed_at: int | None = None  # a continued run: the step its parent's points end at


class SwiftLog:
    """Curves and facts of one run's log: `read()` -> a LogState."""

    def __init__(self, path, with_history: bool = True):
        self.file = log_file(path)
        self.offset = 0
        self.pending = b""
        self.state = LogState(path=str(self.file))
        self.rows: list[dict] = []  # every JSON object read, in order
        history = self.file.parent / HISTORY_FILE
        if with_history and history.is_file() and history != self.file:  # only loss and eval lines: no summary of the earlier run
            for line in history.read_bytes().splitlines():
                self._take(line)
            self.state.resumed_at = self.state.last_step

    def _take(self, line: bytes) -> None:
        if not line.strip():
            return
        st = self.state
        try:
            row = json.loads(line)
        except ValueError:
            st.skipped_lines += 1
            return
        if not isinstance(row, dict):
            st.skipped_lines += 1
            return
        self.rows.append(row)
        at = step_of(row)
        if at:
            step, st.max_steps = at
            st.last_step = max(st.last_step, step)
            if "loss" in row:
                st.train.append((step, _float(row["loss"])))
                if "learning_rate" in row:
                    st.learning_rate.append((step, _float(row["learning_rate"])))
            if "eval_loss" in row:
                st.evals.append((step, _float(row["eval_loss"])))
        if "train_runtime" in row:
            st.finished = True
        if "last_model_checkpoint" in row:
            st.finished = True
            st.best_model_checkpoint = row.get("best_model_checkpoint")
            st.last_model_checkpoint = row.get("last_model_checkpoint")
            st.best_metric = row.get("best_metric")

    def read(self) -> LogState:
        """Everything logged so far (a line still being written is kept for the next call)."""
        if self.file.is_file():
            if self.file.stat().st_size < self.offset:  # the file was replaced: start again
                self.__init__(self.file, with_history=self.state.resumed_at is not None)
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
        st = self.state
        # cancelling with SIGINT still writes the summary: "finished" but short of max_steps
        completed = st.finished and (st.max_steps is None or st.last_step >= st.max_steps)
        return replace(st, train=list(st.train), evals=list(st.evals), learning_rate=list(st.learning_rate),
                       completed=completed,  # a half-written last line: not parsed yet, counted as skipped for now
                       skipped_lines=st.skipped_lines + bool(self.pending.strip()))


def read_log(path) -> LogState:
    """The LogState of a run folder or a logging.jsonl, read once."""
    return SwiftLog(path).read()


def rows(path) -> list[dict]:
    """Every JSON object of one log file, in order (a blank or half-written line is passed over)."""
    log = SwiftLog(path, with_history=False)
    log.read()
    return log.rows
