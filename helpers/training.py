"""One experiment = one `swift sft` run: start it, watch it live, judge it, keep it on disk forever."""

from __future__ import annotations

import html
import json
import os
import platform
import shutil
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from . import data, diagnosis, environment, models, paths, swift_runner
from .curves import LiveCurves, Progress, overlay

RUN_FILE = "ftlab_run.json"
POLL_S = 0.5  # how often the log is read while swift trains (a new point shows within ~1 s)
# =N: every run stops after N evaluations (--max_steps N x eval_steps), e.g. a rehearsal of the gpu track
MAX_EVALS_ENV = "FTLAB_MAX_EVALS"


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
        if run.status == "running" and not swift_runner.pid_alive(run.pid):
            # the kernel died: swift either had finished (its log ends with the summary) or was cut short
            run.status = "finished" if run.curves()[2].get("completed") else "interrupted"
        return run

    # ---- swift's records ---------------------------------------------------------------------
    @property
    def log_path(self) -> Path:
        return self.run_dir / "logging.jsonl"

    def curves(self):
        """(train, eval, info) from swift's logging.jsonl: lists of (step, loss)."""
        if not self.log_path.is_file():
            return [], [], {}
        return diagnosis.read_log(self.log_path)

    def _checkpoint(self, key: str) -> Path | None:
        _, _, info = self.curves()
        recorded = info.get(key)
        if recorded:  # swift writes absolute paths; keep only the folder name so a moved course still works
            p = self.run_dir / Path(recorded).name
            if p.is_dir():
                return p
            # a continued run whose own evaluations never beat the run it continued: swift keeps that best
            return Path(recorded) if Path(recorded).is_dir() else None
        ckpts = sorted(self.run_dir.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[-1]))
        ckpts = [c for c in ckpts if c.name.split("-")[-1].isdigit()]
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
    def diagnosis(self) -> diagnosis.Diagnosis:
        """The automatic verdict on swift's log (learning-rate schedule aware; see helpers/diagnosis.py)."""
        if not self.log_path.is_file():  # stopped before swift logged anything
            return diagnosis.diagnose([], [], interrupted=self.status == "interrupted")
        return diagnosis.diagnose_log(self.log_path, interrupted=True if self.status == "interrupted" else None)

    def stop(self) -> None:
        """Stop a run that is training in the background (`sft(..., wait=False)`)."""
        proc = _PROCS.get(self.run_dir)
        if proc is not None and proc.poll() is None:
            swift_runner.stop_group(proc)
            self.status = "interrupted"
            self.save()

    def summary(self) -> str:
        d = self.diagnosis if self.log_path.is_file() else None
        state = d.state if d else "-"
        return f"{self.label}: {self.status}, {state}"

    def _repr_html_(self) -> str:
        rows = "".join(f"<tr><td>{k}</td><td>{html.escape(str(v))}</td></tr>" for k, v in self.params.items())
        best = paths.short(self.best_checkpoint) if self.best_checkpoint else "none"
        return (f"<b>{html.escape(self.label)}</b> — {self.status} ({html.escape(self.track)} track, "
                f"{html.escape(self.model)})<table>{rows}</table><p>best checkpoint: <code>{html.escape(best)}</code></p>")


_PROCS: dict = {}


def versions() -> dict:
    from importlib import metadata

    out = {"python": platform.python_version()}
    for dist in ("torch", "ms-swift", "transformers", "peft"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = None
    return out


def hardware() -> str:
    gpu = environment.gpu_info()
    cpu = platform.processor() or platform.machine()
    return (f"{gpu['name']} ({gpu['total_gb']:.0f} GiB)" if gpu else "no GPU") + f", {os.cpu_count()} CPU cores ({cpu})"


def _new_run_dir(track: str, label: str) -> Path:
    """output/<track>/<NNN>-<label>: the next free number, claimed atomically, so runs never collide."""
    base = paths.OUTPUT_DIR / track
    base.mkdir(parents=True, exist_ok=True)
    slug = "".join(c if c.isalnum() or c in "-." else "-" for c in label.lower()).strip("-")[:40] or "run"
    taken = [int(p.name.split("-")[0]) for p in base.iterdir() if p.name.split("-")[0].isdigit()]
    n = max(taken, default=0) + 1
    while True:
        d = base / f"{n:03d}-{slug}"
        try:
            d.mkdir()
            return d
        except FileExistsError:
            n += 1


def resolve_dataset(dataset) -> Path:
    """'train_100' -> resources/2_7/train_100.jsonl; a path is taken as given. Must exist."""
    p = Path(dataset)
    if not p.suffix and not p.exists():
        p = paths.DATA_DIR / f"{dataset}.jsonl"
    if not p.is_file():
        raise FileNotFoundError(f"{dataset}: no such dataset file. Fix: pass a .jsonl path or one of "
                                f"{sorted(x.stem for x in paths.DATA_DIR.glob('*.jsonl'))}.")
    if "#" in p.name:
        raise ValueError(f"{p}: ms-swift reads '#N' in a dataset name as 'sample N rows'. Fix: rename the file.")
    return p


def _first_rows(path: Path | None, rows: int | None) -> list[str]:
    """The dataset lines a run will use: all of them, or the first `rows` (the cpu and ci tracks)."""
    if path is None:
        return []
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if rows and rows > len(lines):
        raise ValueError(f"{paths.short(path)} has {len(lines)} rows, fewer than the {rows} asked for.")
    return lines[:rows] if rows else lines


def _subset(path: Path, rows: int | None, lines: list[str], run_dir: Path) -> Path:
    """Write the first `rows` lines into the run folder, so the run's data stays with it."""
    if not rows:
        return path
    out = run_dir / "data" / f"{path.stem}_first{rows}.jsonl"
    out.parent.mkdir(exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def _resume_checkpoint(resume_from, track: str) -> Path:
    """The checkpoint to continue from: a Run's last one, the last one of the newest run with that label, or a folder."""
    if isinstance(resume_from, str) and not Path(resume_from).is_dir():
        same = [r for r in runs(track, show=False) if r.label == resume_from and r.status in ("finished", "recorded")]
        if not same:
            raise ValueError(f"resume_from={resume_from!r}: no finished {track}-track run has that label. "
                             "Fix: run that experiment first, or pass its Run or a checkpoint folder.")
        resume_from = same[-1]
    ckpt = resume_from.last_checkpoint if isinstance(resume_from, Run) else Path(resume_from)
    if ckpt is None or not (Path(ckpt) / "trainer_state.json").is_file():
        raise ValueError(f"resume_from: {ckpt} is not a training checkpoint (no trainer_state.json). "
                         "Fix: pass a finished Run or one of its checkpoint-N folders.")
    return Path(ckpt)


def _write_history(ckpt: Path, run_dir: Path) -> None:
    """The continued run's loss and eval lines up to the checkpoint, so the new run's curves start at step 0."""
    step = int(ckpt.name.rsplit("-", 1)[-1])
    source = ckpt.parent
    lines = []
    for name in (diagnosis.HISTORY_FILE, "logging.jsonl"):
        f = source / name
        for line in (f.read_text(encoding="utf-8").splitlines() if f.is_file() else []):
            try:
                row = json.loads(line)
                at = int(str(row.get("global_step/max_steps", "")).split("/")[0])
            except ValueError:
                continue
            if ("loss" in row or "eval_loss" in row) and at <= step:
                lines.append(line)
    (run_dir / diagnosis.HISTORY_FILE).write_text("".join(ln + "\n" for ln in lines), encoding="utf-8")


def _check_lengths(files: dict, model: models.Model, max_length: int) -> None:
    """Rows longer than max_length are dropped silently by swift (--truncation_strategy delete): say so first."""
    for path, lines in files.items():
        if path is None:
            continue
        lengths = data.token_lengths(model.path, [json.loads(ln) for ln in lines])
        too_long = sum(n > max_length for n in lengths)
        if too_long == len(lines):
            raise ValueError(f"{paths.short(path)}: all {len(lines)} rows are longer than max_length={max_length} "
                             "tokens; swift would silently drop every one. Fix: raise max_length.")
        if too_long:
            print(f"Note: {too_long} of {len(lines)} rows in {paths.short(path)} exceed max_length={max_length}; "
                  "swift drops them silently (--truncation_strategy delete).")


def _need_disk_gb(model: models.Model, params: dict, n_rows: int) -> float:
    cfg = json.loads((Path(model.path) / "config.json").read_text())
    h, layers, inter = cfg["hidden_size"], cfg["num_hidden_layers"], cfg["intermediate_size"]
    kv = h * cfg.get("num_key_value_heads", cfg["num_attention_heads"]) // cfg["num_attention_heads"]
    lora = params["lora_rank"] * layers * ((h + h) * 2 + (h + kv) * 2 + (h + inter) * 3)
    steps = max(1, int(n_rows / params["batch_size"] * params["num_train_epochs"]))
    ckpts = steps // params["eval_steps"] + 1
    per_ckpt = lora * 4 * 3  # adapter + two Adam moments, float32
    merged = sum(f.stat().st_size for f in Path(model.path).glob("*.safetensors"))
    return (ckpts * per_ckpt + merged) / 2**30 + 0.2


def _check_disk(need_gb: float) -> None:
    paths.OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(paths.OUTPUT_DIR).free / 2**30
    if free < need_gb:
        raise RuntimeError(f"Not enough disk: this run needs about {need_gb:.1f} GiB (checkpoints + merge) but "
                           f"{paths.short(paths.OUTPUT_DIR)} has {free:.1f} GiB free. Fix: delete old runs under "
                           "output/ or pick fewer epochs / a larger eval_steps.")


def sft(model=None, dataset="train_100", learning_rate=1e-4, lora_rank=8, num_train_epochs=1, batch_size=8,
        max_length=512, eval_steps=20, *, val_dataset="val", train_rows=None, val_rows=None, label=None,
        nproc_per_node=None, deepspeed=None, resume_from=None, wait=True, show=True, **extra) -> Run:
    """Fine-tune with `swift sft` (LoRA). Lesson parameter names map to ms-swift 4.x flags.

    Prints the exact command, shows a progress bar and live train/eval loss curves, ends with a
    diagnosis card. Ctrl-C / kernel interrupt stops the whole swift process group and keeps the log.
    `train_rows` / `val_rows` train on the first N rows (the cpu and ci tracks); `nproc_per_node` and
    `deepspeed` pass through to a multi-GPU launch; `resume_from` (a Run, its label, or a checkpoint
    folder) continues that run's training up to `num_train_epochs` (--resume_from_checkpoint); any other
    keyword is an ms-swift flag.
    """
    track = environment.detect_track().name
    if not isinstance(model, models.Model):
        model = models.get_model(model)
    params = swift_runner.check_params(learning_rate, lora_rank, num_train_epochs, batch_size, max_length, eval_steps)
    bad = sorted(set(extra) & swift_runner.RESERVED)
    if bad:
        raise ValueError(f"{', '.join(bad)} is set by sft() itself. Fix: use sft(model=..., dataset=..., val_dataset=...).")
    max_evals = os.environ.get(MAX_EVALS_ENV)  # rehearsals: stop each run after N evaluations
    if max_evals:
        extra.setdefault("max_steps", int(max_evals) * params["eval_steps"])
    swift_runner.check_flags(list(extra), "sft")
    # one loss point per eval interval at least (swift's default of 5 leaves short runs with no curve)
    extra.setdefault("logging_steps", max(1, min(5, params["eval_steps"])))
    train_path = resolve_dataset(dataset)
    val_path = resolve_dataset(val_dataset) if val_dataset else None
    if deepspeed:
        extra["deepspeed"] = deepspeed
    resume_ckpt = _resume_checkpoint(resume_from, track) if resume_from is not None else None
    if resume_ckpt is not None:
        extra["resume_from_checkpoint"] = swift_runner.arg_path(resume_ckpt)
    env = {"NPROC_PER_NODE": str(int(nproc_per_node))} if nproc_per_node and int(nproc_per_node) > 1 else {}
    if env or os.environ.get("NNODES"):  # several machines: swift's torchrun launch reads these too; print them
        env.update({k: os.environ[k] for k in swift_runner.MULTI_NODE_ENV if os.environ.get(k)})
    problems = data.validate_files([str(p) for p in (train_path, val_path) if p])
    if problems:
        raise ValueError("The dataset has problems (nothing was started):\n" + "\n".join(problems[:20]))
    train_lines, val_lines = _first_rows(train_path, train_rows), _first_rows(val_path, val_rows)
    _check_lengths({train_path: train_lines, val_path: val_lines}, model, params["max_length"])
    _check_disk(_need_disk_gb(model, params, len(train_lines)))

    label = label or f"lr{learning_rate}-r{lora_rank}-e{num_train_epochs}-{train_path.stem}"
    run_dir = _new_run_dir(track, label)
    if resume_ckpt is not None:
        _write_history(resume_ckpt, run_dir)
    train_file = _subset(train_path, train_rows, train_lines, run_dir)
    val_file = _subset(val_path, val_rows, val_lines, run_dir) if val_path else None
    n_rows = len(train_lines)
    args = swift_runner.sft_command(model, train_file, val_file, params, run_dir, extra)
    run = Run(run_dir=run_dir, label=label, params={**params, "dataset": paths.short(train_path),
              "train_rows": n_rows, "val_rows": val_rows}, extra=extra, model=model.name,
              model_path=paths.short(model.path), track=track, command=swift_runner.printable("sft", args, env),
              argv=args, env=env, started=datetime.now(timezone.utc).isoformat(timespec="seconds"),
              versions=versions(), hardware=hardware(),
              resumed_from=paths.short(resume_ckpt) if resume_ckpt is not None else "")
    run.save()
    if show:
        print("Running from the course folder:\n  " + run.command, flush=True)
    proc = swift_runner.launch("sft", args, run_dir / "swift.log", env)
    run.status, run.pid = "running", proc.pid
    run.save()
    _PROCS[run_dir] = proc
    if wait:
        watch(run, proc, show=show)
    return run


def watch(run: Run, proc, show: bool = True) -> Run:
    """Follow a running swift process: progress bar + live curves; stop it cleanly on interrupt."""
    t0 = time.time()
    live = LiveCurves(f"{run.label} ({run.track} track)") if show else None
    bar = Progress(run.label, unit="step", disable=not show)
    children: set[int] = set()
    try:
        while True:
            done = proc.poll() is not None
            children.update(swift_runner.descendants(proc.pid))
            train, evals, info = run.curves()
            start = info.get("resumed_at") or 0  # a continued run counts its own steps, not the earlier run's
            total = info.get("max_steps")
            bar.update(max((info.get("last_step") or start) - start, bar.n), total - start if total else None)
            if live:
                last = f"step {train[-1][0]}: train {train[-1][1]:.3f}" if train else "waiting for the first log line"
                if evals:
                    last += f", eval {evals[-1][1]:.3f}"
                live.update(train, evals, last)
            if done:
                break
            time.sleep(POLL_S)
        run.returncode = proc.returncode
        run.status = "finished" if proc.returncode == 0 else "failed"
    except KeyboardInterrupt:
        swift_runner.stop_group(proc, children)
        run.returncode, run.status = proc.returncode, "interrupted"
        print(f"\nInterrupted: the swift process group is stopped; the partial log is kept in {paths.short(run.run_dir)}.")
    finally:
        bar.close()
        run.wall_time_s = round(time.time() - t0, 1)
        if run.status == "failed":
            run.error = swift_runner.swift_error(run.run_dir / "swift.log")
        run.save()
        _PROCS.pop(run.run_dir, None)
        if live:
            train, evals, _ = run.curves()
            live.update(train, evals, f"{run.status}")
            live.close()
    if show:
        _show_result(run)
    return run


def _show_result(run: Run) -> None:
    from IPython.display import display

    if run.status == "failed":
        print(f"swift failed (exit code {run.returncode}). Its own words:\n{run.error}")
        return
    display(run.diagnosis)


def runs(track: str | None = None, show: bool = True) -> list[Run]:
    """Every run on disk (survives kernel restarts), oldest first."""
    found = []
    for f in sorted(paths.OUTPUT_DIR.glob(f"{track or '*'}/*/{RUN_FILE}")):
        try:
            found.append(Run.load(f.parent))
        except (ValueError, OSError, TypeError):
            continue
    if show:
        from IPython.display import HTML, display

        display(HTML(params_table(found)))
    return found


def params_table(items: list[Run]) -> str:
    keys = ["learning_rate", "lora_rank", "num_train_epochs", "batch_size", "max_length", "eval_steps",
            "dataset", "train_rows"]
    head = "".join(f"<th>{k}</th>" for k in ["run", *keys, "status", "state", "best eval loss"])
    body = ""
    for r in items:
        _, evals, _ = r.curves()
        best = f"{min(v for _, v in evals):.3f}" if evals else "-"
        state = r.diagnosis.state if r.log_path.is_file() else "-"
        cells = [r.label, *[r.params.get(k, "") for k in keys], r.status, state, best]
        body += "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>"
    return f"<table><tr>{head}</tr>{body}</table>"


def compare(items: list[Run], title: str = "All experiments on one chart"):
    """Overlay the loss curves of several runs and show their parameters side by side."""
    from IPython.display import HTML, display

    curves = []
    for r in items:
        train, evals, _ = r.curves()
        curves.append({"label": r.label, "train": train, "eval": evals, "state": r.diagnosis.state})
    fig = overlay(curves, title)
    display(fig)
    import matplotlib.pyplot as plt

    plt.close(fig)
    display(HTML(params_table(items)))
