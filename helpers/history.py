"""A training run on disk and the history of all of them: parameters, command, status, swift's own records.

`Run` is what `sft()` returns and what `runs()` lists after a kernel restart; it reads swift's log through
one incremental `SwiftLog`, so asking for its curves again costs only the lines written since.
"""

from __future__ import annotations

import html
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import diagnosis, knobs, paths, process, swift_runner
from .cards import DiagnosisCard
from .curves import overlay
from .swiftlog import LogState, SwiftLog
from .view import Html, table

RUN_FILE = "ftlab_run.json"
PARAM_KEYS = [*knobs.NAMES, "dataset", "train_rows"]  # the runs table's columns


@dataclass
class Run:
    """A training run on disk: its parameters, command, status and swift's own records."""

    run_dir: Path
    label: str = ""
    params: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    model: str = ""
    model_path: str = ""
    track: str = ""
    command: str = ""
    argv: list = field(default_factory=list)
    env: dict = field(default_factory=dict)
    status: str = "created"  # created | running | finished | interrupted | failed | recorded
    returncode: int | None = None
    error: str = ""
    wall_time_s: float | None = None
    started: str = ""
    versions: dict = field(default_factory=dict)
    hardware: str = ""
    pid: int | None = None
    resumed_from: str = ""  # the checkpoint this run continued (course-relative), if it continued one
    token: str = ""  # the guard token every process of its training carries (process.GUARD_ENV)
    stopped_because: str = ""  # why an interrupted run stopped, when something else than Ctrl-C stopped it

    def __post_init__(self):
        self.run_dir = Path(self.run_dir)
        self._log = None
        self._judged = None  # (what the log held, its diagnosis): judged again only when the log grew
        self.child = None  # the running swift process, when this kernel started it (sft(wait=False))

    # ---- persistence -------------------------------------------------------------------------
    def save(self) -> None:
        d = asdict(self)
        d["run_dir"] = paths.short(self.run_dir)
        tmp = self.run_dir / (RUN_FILE + ".tmp")
        tmp.write_text(json.dumps(d, indent=1, ensure_ascii=False))
        os.replace(tmp, self.run_dir / RUN_FILE)

    @classmethod
    def load(cls, run_dir: Path) -> Run:
        run_dir = Path(run_dir)
        d = json.loads((run_dir / RUN_FILE).read_text())
        d["run_dir"] = run_dir
        known = {f for f in cls.__dataclass_fields__}
        run = cls(**{k: v for k, v in d.items() if k in known})
        if run.status == "running" and not process.alive(run.pid):
            # the kernel died: swift either had finished (its log ends with the summary) or was cut short
            run.status = "finished" if run.curves().completed else "interrupted"
            if run.status == "interrupted":
                run.stopped_because = run.stopped_note()
        return run

    def stopped_note(self) -> str:
        """Why something other than its own notebook stopped it (its guard, stop() elsewhere), or ''."""
        return process.stopped_note(self.run_dir)

    def record_end(self, returncode: int | None) -> None:
        """How its swift process ended: finished, failed (with swift's own words), or interrupted when stop()
        from another notebook or a terminal left its note."""
        self.returncode = returncode
        self.status = "finished" if returncode == 0 else "failed"
        why = self.stopped_note() if returncode != 0 else ""
        if why:
            self.status, self.stopped_because = "interrupted", why
        if self.status == "failed":
            self.error = swift_runner.swift_error(self.run_dir / "swift.log")

    @property
    def live(self) -> bool:
        """Is its training running now (in this kernel or any other process)?"""
        return self.status == "running" and process.alive(self.pid)

    @property
    def status_text(self) -> str:
        """The status as the run list shows it: 'training now', 'interrupted (why)', 'finished', ..."""
        if self.live:
            return "training now"
        return f"{self.status} ({self.stopped_because})" if self.stopped_because else self.status

    def wait(self, poll_s: float = 0.5) -> Run:
        """Block until its training ends: a run started with sft(wait=False), or one live elsewhere."""
        if self.child is not None:
            self.record_end(self.child.wait(poll_s))
            self.child = None
            self.save()
            return self
        while process.alive(self.pid):
            time.sleep(poll_s)
        fresh = Run.load(self.run_dir)
        self.__dict__.update({k: v for k, v in fresh.__dict__.items() if k not in ("child", "_log", "_judged")})
        return self

    def stop(self, why: str = "") -> None:
        """Stop its training, whole process tree, wherever it was started; the log and checkpoints stay."""
        if self.child is not None and self.child.poll() is None:
            self.child.stop()
            self.returncode, self.child = self.child.returncode, None
        elif self.child is None and self.live:  # started by another process: its notebook learns why from the note
            process.note_stopped(self.run_dir, why or "stopped from elsewhere")
            process.stop_tree(self.pid, self.token)
        else:
            return
        self.status, self.stopped_because = "interrupted", why
        self.save()

    # ---- swift's records ---------------------------------------------------------------------
    @property
    def log_path(self) -> Path:
        return self.run_dir / "logging.jsonl"

    def curves(self) -> LogState:
        """swift's logging.jsonl as read so far: `.train` and `.evals` are lists of (step, loss)."""
        if self._log is None:
            self._log = SwiftLog(self.run_dir)
        return self._log.read()

    def _checkpoint(self, key: str) -> Path | None:
        recorded = getattr(self.curves(), key)
        if recorded:  # swift writes absolute paths; keep only the folder name so a moved course still works
            p = self.run_dir / Path(recorded).name
            if _complete(p):
                return p
            # a continued run whose own evaluations never beat the run it continued: swift keeps that best
            if not p.is_dir() and _complete(Path(recorded)):
                return Path(recorded)
            # else swift named a checkpoint whose save failed (it writes its summary even then): the complete ones
        ckpts = sorted((c for c in self.run_dir.glob("checkpoint-*") if c.name.split("-")[-1].isdigit()
                        and _complete(c)), key=lambda p: int(p.name.split("-")[-1]))
        if not ckpts:
            return None
        if key == "last_model_checkpoint":
            return ckpts[-1]
        state = ckpts[-1] / "trainer_state.json"
        if state.is_file():
            best = json.loads(state.read_text()).get("best_model_checkpoint")
            if best and (self.run_dir / Path(best).name).is_dir():
                return self.run_dir / Path(best).name
        return ckpts[-1]

    @property
    def best_checkpoint(self) -> Path | None:
        """The checkpoint with the lowest eval loss, as swift recorded it."""
        return self._checkpoint("best_model_checkpoint")

    @property
    def last_checkpoint(self) -> Path | None:
        return self._checkpoint("last_model_checkpoint")

    @property
    def diagnosis(self) -> DiagnosisCard:
        """The automatic verdict on swift's log (learning-rate schedule aware; see helpers/diagnosis.py)."""
        log = self.curves()
        interrupted = self.status == "interrupted" or (self.log_path.is_file() and not log.completed)
        seen = (len(log.train), len(log.evals), interrupted, log.completed)
        if self._judged is None or self._judged[0] != seen:
            self._judged = (seen, judge(log, interrupted))
        return self._judged[1]

    def summary(self) -> str:
        return f"{self.label}: {self.status}, {self.diagnosis.state if self.log_path.is_file() else '-'}"

    def _repr_html_(self) -> str:
        ckpt = self.best_checkpoint
        best = paths.short(ckpt) if ckpt else "none"
        return (f"<b>{html.escape(self.label)}</b> — {self.status} ({html.escape(self.track)} track, "
                f"{html.escape(self.model)})" + table(self.params.items())
                + f"<p>best checkpoint: <code>{html.escape(best)}</code></p>")


def _complete(checkpoint: Path) -> bool:
    """A checkpoint is complete once the trainer wrote trainer_state.json, its last file: one cut short (a full
    disk, a kill during the save) is never offered."""
    return (checkpoint / "trainer_state.json").is_file()


def checkpoint_to_use(run) -> Path | None:
    """What the course examines, serves, exports or starts a new training from: a run's best checkpoint, else its
    last one (None: it has none yet)."""
    return run.best_checkpoint or run.last_checkpoint


def is_run(obj) -> bool:
    """The one test for "is this a training run?": anything with checkpoints (a Run, a recording's Run)."""
    return hasattr(obj, "best_checkpoint") and hasattr(obj, "last_checkpoint")


def judge(log: LogState, interrupted: bool) -> DiagnosisCard:
    d = diagnosis.diagnose(log.train, log.evals, max_steps=log.max_steps, interrupted=interrupted,
                           lr=log.learning_rate, last_step=log.last_step)
    best = log.best_model_checkpoint if d.state != "failed" else None  # a failed run has nothing to offer
    d.evidence["best_model_checkpoint"] = Path(best).name if best else None  # a folder name, no machine paths
    return DiagnosisCard.of(d)


def diagnose_log(path, interrupted: bool | None = None) -> DiagnosisCard:
    """The verdict on a run folder or a logging.jsonl; a run that did not do all its steps is provisional."""
    log = SwiftLog(path).read()
    return judge(log, (not log.completed) if interrupted is None else interrupted)


def runs(track: str | None = None, show: bool = True) -> list[Run]:
    """Every run on disk (survives kernel restarts), oldest first."""
    found = []
    for f in sorted(paths.OUTPUT_DIR.glob(f"{track or '*'}/*/{RUN_FILE}")):
        try:
            found.append(Run.load(f.parent))
        except (ValueError, OSError, TypeError):
            continue
    if show:
        from IPython.display import display

        display(Html(params_table(found)))
    return found


def params_table(items: list[Run]) -> str:
    rows = []
    for r in items:
        evals = r.curves().evals
        best = f"{min(v for _, v in evals):.3f}" if evals else "-"
        state = r.diagnosis.state if r.log_path.is_file() else "-"
        took = f"{r.wall_time_s / 60:.1f} min" if r.wall_time_s else "-"
        rows.append([r.label, *[r.params.get(k, "") for k in PARAM_KEYS], r.status_text, state, best, took])
    return table(rows, ["run", *PARAM_KEYS, "status", "state", "best eval loss", "time"])


def overlay_items(items: list[Run]) -> list[dict]:
    """What curves.overlay draws for each run: its label, curves, state, learning rate and where it took over."""
    out = []
    for r in items:
        log = r.curves()
        out.append({"label": r.label, "train": log.train, "eval": log.evals, "state": r.diagnosis.state,
                    "lr": log.learning_rate, "from_step": log.resumed_at})
    return out


def pick_best(items: list[Run]) -> Run:
    """The run whose checkpoint takes the exam: of the runs that finished with a best checkpoint, the one whose
    eval loss reached the lowest value (notebook 03's choice, and the tests')."""
    finished = [r for r in items if r.status == "finished" and r.best_checkpoint and r.curves().evals]
    if not finished:
        raise ValueError("no run finished with a best checkpoint and an eval loss. Fix: train one with a "
                         "validation set (val_dataset) that runs to its end.")
    return min(finished, key=lambda r: min(v for _, v in r.curves().evals))


def compare_runs(items: list[Run], title: str = "All experiments on one chart"):
    """Overlay the loss curves of several runs and show their parameters side by side."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    fig = overlay(overlay_items(items), title)
    display(fig)
    plt.close(fig)
    display(Html(params_table(items)))
