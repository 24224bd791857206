"""Recordings: real runs of this package saved without weights, replayed as if live (and labelled so).

A recording is a folder under resources/recordings/<track>/<name>/ holding swift's logging.jsonl and
this package's ftlab_run.json (command, parameters, versions, hardware, date, wall time), plus
optional exam results. Only `save_recording(run)` writes one, from a run this package started.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from . import paths
from .cards import ExamReport
from .curves import LiveCurves
from .history import RUN_FILE, Run
from .swiftlog import HISTORY_FILE, elapsed_seconds, rows
from .view import text_table


def _portable_log(src: Path, dst: Path) -> None:
    """Copy logging.jsonl keeping only checkpoint folder names (no machine paths in the repo)."""
    out = []
    for d in rows(src):
        for key in ("last_model_checkpoint", "best_model_checkpoint"):
            if d.get(key):
                d[key] = Path(d[key]).name
        d.pop("log_history", None)  # repeats the lines above
        out.append(json.dumps(d, ensure_ascii=False))
    dst.write_text("\n".join(out) + "\n")


def save_recording(run: Run, name: str, track: str | None = None, exam_results: dict | None = None) -> Path:
    """Save a finished run of this package as a recording (never overwrites: a new name is required)."""
    if not (run.run_dir / RUN_FILE).is_file():
        raise ValueError(f"{run.run_dir} was not started by this package: only its own runs can be recorded.")
    dest = paths.RECORDINGS_DIR / (track or run.track) / name
    if dest.exists():
        raise FileExistsError(f"{paths.short(dest)} exists. Fix: pick another name (recordings are never overwritten).")
    dest.mkdir(parents=True)
    _portable_log(run.log_path, dest / "logging.jsonl")
    history = run.run_dir / HISTORY_FILE  # a continued run: the earlier run's points it starts from
    if history.is_file():
        _portable_log(history, dest / HISTORY_FILE)
    meta = json.loads((run.run_dir / RUN_FILE).read_text())
    meta["source_run"] = meta.pop("run_dir")
    meta["status"] = run.status
    meta["recorded_diagnosis"] = run.diagnosis.to_dict()
    meta.pop("pid", None)
    (dest / RUN_FILE).write_text(json.dumps(meta, indent=1, ensure_ascii=False))
    if exam_results:
        add_exam(dest, exam_results)
    return dest


def add_exam(recording: Path, results: dict) -> None:
    """Attach exam scores (a dict name -> ExamResult.to_json()-like dict) to a recording."""
    f = Path(recording) / "exams.json"
    old = json.loads(f.read_text()) if f.is_file() else {}
    old.update(results)
    f.write_text(json.dumps(old, indent=1, ensure_ascii=False))


def find(name: str) -> Path:
    p = Path(name)
    if p.is_dir():
        return p
    if (paths.RECORDINGS_DIR / name).is_dir():
        return paths.RECORDINGS_DIR / name
    hits = sorted(paths.RECORDINGS_DIR.glob(f"*/{name}")) + sorted(paths.RECORDINGS_DIR.glob(f"*/*{name}*"))
    if not hits:
        have = sorted(q.relative_to(paths.RECORDINGS_DIR).as_posix() for q in paths.RECORDINGS_DIR.glob("*/*"))
        raise FileNotFoundError(f"No recording {name!r}. Recordings here: {', '.join(have) or 'none'}.")
    return hits[0]


def load_recording(name: str) -> Run:
    run = Run.load(find(name))
    run.status = "recorded"
    return run


def replay(name: str, speed: float = 30.0, max_seconds: float = 20.0, show: bool = True) -> Run:
    """Draw a recorded run point by point, `speed` times faster than it really ran (capped at max_seconds)."""
    from IPython.display import Markdown, display

    run = load_recording(name)
    log = run.curves()
    train, evals, lr = log.train, log.evals, log.learning_rate
    if show:
        date = (run.started or "")[:10]
        wall = f"{run.wall_time_s / 60:.1f} min" if run.wall_time_s else "?"
        v = run.versions
        display(Markdown(
            f"**RECORDING — a real run of this package, replayed** (not training now). Recorded {date} on "
            f"{run.hardware}; ms-swift {v.get('ms-swift')}, transformers {v.get('transformers')}, torch {v.get('torch')}; "
            f"took {wall}.\n\n```\n{run.command}\n```"))
    points = sorted([(s, "t", v) for s, v in train] + [(s, "e", v) for s, v in evals])
    times = _timeline(run.log_path)
    live = LiveCurves(f"{run.label} — RECORDING ({run.track} track)") if show else None
    budget = min(max_seconds, (times[-1] if times else 0) / speed) if speed and speed != float("inf") else 0
    shown_t, shown_e = [], []
    for step, kind, value in points:
        (shown_t if kind == "t" else shown_e).append((step, value))
        if live and budget > 0:
            live.update(shown_t, shown_e, f"replaying step {step}", [p for p in lr if p[0] <= step])
            time.sleep(budget / max(1, len(points)))
    if live:
        live.update(train, evals, f"recorded run, {run.params.get('train_rows')} rows, {log.max_steps} steps", lr)
        live.close()
        display(run.diagnosis)
    return run


def _timeline(log: Path) -> list[float]:
    return [elapsed_seconds(d["elapsed_time"]) for d in rows(log) if "elapsed_time" in d]


EXAM_NAMES = {"base_test": "base model, 10-question exam", "tuned_test": "fine-tuned, 10-question exam",
              "base_100": "base model, 100-question exam", "tuned_100": "fine-tuned, 100-question exam",
              "calc_tool_test": "exp6 with calculator, 10-question exam",
              "calc_plain_test": "exp6 without it, 10-question exam",
              "calc_tool_100": "exp6 with calculator, 100-question exam",
              "calc_plain_100": "exp6 without it, 100-question exam",
              "base_demo": "base model, radish field", "tuned_demo": "fine-tuned, radish field",
              "calc_tool_demo": "exp6 with calculator, radish field", "calc_plain_demo": "exp6 without it, radish field"}


LESSON_EXAMS = ("base_test", "tuned_test", "base_100", "tuned_100")


def save_exams(track: str, best_run: str, **results) -> Path:
    """Keep the exam results of a recorded track run (base and fine-tuned) beside its recordings."""
    dest = paths.RECORDINGS_DIR / track / "exams.json"
    if dest.exists():
        raise FileExistsError(f"{paths.short(dest)} exists. Fix: move it away first (recordings are never overwritten).")
    dest.parent.mkdir(parents=True, exist_ok=True)
    payload = {"best_run": best_run, **{k: v.to_json() for k, v in results.items()}}
    dest.write_text(json.dumps(payload, indent=1, ensure_ascii=False))
    return dest


def add_exams(track: str, **results) -> Path:
    """Add more exam results of the same recorded run (save_exams first); a name already kept is refused."""
    dest = paths.RECORDINGS_DIR / track / "exams.json"
    if not dest.is_file():
        raise FileNotFoundError(f"{paths.short(dest)} is missing. Fix: save_exams(...) the run's first exams first.")
    taken = sorted(set(results) & set(json.loads(dest.read_text())))
    if taken:
        raise FileExistsError(f"{paths.short(dest)} already keeps {', '.join(taken)} (recordings are never overwritten).")
    add_exam(dest.parent, {k: v.to_json() for k, v in results.items()})
    return dest


class RecordedExams:
    """The recorded exam results of one track, as ExamResult objects plus a score table."""

    def __init__(self, track: str):
        f = paths.RECORDINGS_DIR / track / "exams.json"
        raw = json.loads(f.read_text())
        self.best_run = raw.pop("best_run")
        self.results = {k: ExamReport.from_json(v) for k, v in raw.items()}
        for k, v in self.results.items():
            setattr(self, k, v)

    def table(self, names=LESSON_EXAMS) -> str:
        """The scores of the exams named (by default the lesson's: base and fine-tuned on both exams, which the
        notebook prints before experiment 6 adds its own); `names=EXAM_NAMES` for all that were kept."""
        rows = [(EXAM_NAMES[key], r.seed_score, r.strict_score, r.last_number_score, r.format_rate, r.cut_count,
                 f"{r.seconds:.0f}") for key in names if (r := self.results.get(key))]
        return f"best run: {self.best_run}\n" + text_table(rows, ["", "seed", "strict", "last number", "format %",
                                                                  "cut off", "seconds"])


def recorded_exams(track: str = "cpu") -> RecordedExams:
    return RecordedExams(track)
