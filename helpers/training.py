"""One experiment = one `swift sft` run: check everything first, start it, watch it live, keep it on disk."""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import datetime, timezone
from pathlib import Path

from . import data, environment, knobs, models, paths, process, swift_runner
from .curves import LiveCurves, Progress
from .history import Run, checkpoint_to_use, is_run, runs
from .shapes import DecoderShape
from .swiftlog import HISTORY_FILE, rows, step_of

POLL_S = 0.5  # how often the log is read while swift trains (a new point shows within ~1 s)
# =N: every run stops after N evaluations (--max_steps N x eval_steps), e.g. a rehearsal of the gpu track
MAX_EVALS_ENV = "FTLAB_MAX_EVALS"
_CHILDREN: dict = {}  # run folder -> its running swift process (sft(wait=False))


def new_run_dir(track: str, label: str) -> Path:
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


def _run_checkpoint(source, track: str, flag: str = "resume_from") -> Path:
    """The checkpoint a run starts from: for resume_from, a Run's last one (the optimizer and schedule go on); for
    start_from, its best one, else its last (only the adapter's weights are taken); a label means the newest finished
    run with that label; a folder is taken as given."""
    if isinstance(source, str) and not Path(source).is_dir():
        same = [r for r in runs(track, show=False) if r.label == source and r.status in ("finished", "recorded")]
        if not same:
            raise ValueError(f"{flag}={source!r}: no finished {track}-track run has that label. "
                             "Fix: run that experiment first, or pass its Run or a checkpoint folder.")
        source = same[-1]
    if is_run(source):
        ckpt = source.last_checkpoint if flag == "resume_from" else checkpoint_to_use(source)
    else:
        ckpt = Path(source)
    if ckpt is None or not (Path(ckpt) / "trainer_state.json").is_file():
        raise ValueError(f"{flag}: {ckpt} is not a training checkpoint (no trainer_state.json). "
                         "Fix: pass a finished Run or one of its checkpoint-N folders.")
    return Path(ckpt)


def write_history(ckpt: Path, run_dir: Path) -> None:
    """The continued run's loss and eval lines up to the checkpoint, so the new run's curves start at step 0."""
    step = int(ckpt.name.rsplit("-", 1)[-1])
    source = ckpt.parent
    lines = []
    for name in (HISTORY_FILE, "logging.jsonl"):
        for row in rows(source / name) if (source / name).is_file() else []:
            at = step_of(row)
            if ("loss" in row or "eval_loss" in row) and at and at[0] <= step:
                lines.append(json.dumps(row, ensure_ascii=False))
    (run_dir / HISTORY_FILE).write_text("".join(ln + "\n" for ln in lines), encoding="utf-8")


def _check_data(train_path: Path, val_path: Path | None, train_rows, val_rows, model: models.Model,
                max_length: int) -> dict:
    """Every data file read and checked the way ms-swift reads it, before anything starts: errors stop the run;
    rows swift would drop (too long) are counted and named; harmless differences are left out of the run's copy."""
    checks = {path: data.check_file(path) for path in (train_path, val_path) if path}
    problems = [e for c in checks.values() for e in c.errors]
    if problems:
        raise ValueError("The dataset has problems (nothing was started):\n" + "\n".join(problems[:20]))
    for path, check in checks.items():
        rows = train_rows if path == train_path else val_rows
        used = len(check.first(rows))
        long = data.long_rows(check, model.path, max_length, rows)
        if len(long) == used:
            raise ValueError(f"{paths.short(path)}: all {used} rows are longer than max_length={max_length} "
                             "tokens; swift would silently drop every one. Fix: raise max_length.")
        if long:  # printed whatever `show` says: rows are about to be lost
            print(f"Note: {len(long)} of {used} rows in {paths.short(path)} exceed max_length={max_length}; "
                  "swift drops them silently (--truncation_strategy delete):\n  " + "\n  ".join(long[:5]))
        if check.repairs:
            print(f"Note: {paths.short(path)} has {' and '.join(check.repairs)}; the run trains on a clean copy "
                  "in its own folder, your file is unchanged.")
    return checks


def _need_disk_gb(model: models.Model, params: dict, n_rows: int) -> float:
    lora = DecoderShape.of_config(json.loads((Path(model.path) / "config.json").read_text())).lora_params(
        params["lora_rank"])
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


def _swift_flags(extra: dict, params: dict, deepspeed, resume_ckpt: Path | None, has_val: bool) -> dict:
    """The swift flags sft() adds to the learner's own (checked: none that sft sets itself, all known to swift)."""
    bad = sorted(set(extra) & swift_runner.RESERVED)
    if bad:
        raise ValueError(f"{', '.join(bad)} is set by sft() itself. Fix: use sft(model=..., dataset=..., val_dataset=...).")
    max_evals = os.environ.get(MAX_EVALS_ENV)  # rehearsals: stop each run after N evaluations
    if max_evals:
        extra.setdefault("max_steps", int(max_evals) * params["eval_steps"])
    swift_runner.check_flags(list(extra), "sft")
    # one loss point per eval interval at least (swift's default of 5 leaves short runs with no curve)
    extra.setdefault("logging_steps", max(1, min(5, params["eval_steps"])))
    if deepspeed:
        extra["deepspeed"] = deepspeed
    if resume_ckpt is not None:
        extra["resume_from_checkpoint"] = paths.arg_path(resume_ckpt)
    elif has_val:  # an eval loss before the first step: the curve starts where the model started
        extra.setdefault("eval_on_start", True)
    return extra


def _launch_env(nproc_per_node) -> dict:
    """The variables swift's launch reads (and the printed command shows): GPUs per machine, several machines."""
    env = {"NPROC_PER_NODE": str(int(nproc_per_node))} if nproc_per_node and int(nproc_per_node) > 1 else {}
    if env or os.environ.get("NNODES"):  # several machines: swift's torchrun launch reads these too; print them
        env.update({k: os.environ[k] for k in swift_runner.MULTI_NODE_ENV if os.environ.get(k)})
    return env


_D = knobs.DEFAULTS


def sft(model=None, dataset="train_100", learning_rate=_D["learning_rate"], lora_rank=_D["lora_rank"],
        num_train_epochs=_D["num_train_epochs"], batch_size=_D["batch_size"], max_length=_D["max_length"],
        eval_steps=_D["eval_steps"], *, val_dataset="val", train_rows=None, val_rows=None, label=None,
        nproc_per_node=None, deepspeed=None, resume_from=None, start_from=None, wait=True, show=True, on_update=None,
        **extra) -> Run:
    """Fine-tune with `swift sft` (LoRA). Lesson parameter names map to ms-swift 4.x flags.

    Prints the exact command, shows a progress bar and live train/eval loss curves, ends with a
    diagnosis card. Ctrl-C / kernel interrupt stops the whole swift process group and keeps the log.
    `train_rows` / `val_rows` train on the first N rows (the cpu and ci tracks); `nproc_per_node` and
    `deepspeed` pass through to a multi-GPU launch; `resume_from` (a Run, its label, or a checkpoint
    folder) continues that run's training up to `num_train_epochs` (--resume_from_checkpoint); `start_from` (the
    same kinds) starts a new training from that run's best adapter (--adapters: its weights, a fresh optimizer and
    learning-rate schedule);
    `on_update(run, log)` is called with the run's LogState whenever the log has grown; any other keyword is an
    ms-swift flag.
    """
    track = environment.detect_track().name
    if not isinstance(model, models.Model):
        model = models.get_model(model)
    params = knobs.check(learning_rate, lora_rank, num_train_epochs, batch_size, max_length, eval_steps)
    train_path = data.resolve_dataset(dataset)
    val_path = data.resolve_dataset(val_dataset) if val_dataset else None
    if resume_from is not None and start_from is not None:
        raise ValueError("resume_from and start_from together: resume_from goes on with a run's training (its optimizer "
                         "and schedule), start_from begins a new one from a run's adapter. Fix: pass one of them.")
    resume_ckpt = _run_checkpoint(resume_from, track) if resume_from is not None else None
    if start_from is not None:
        extra["adapters"] = paths.arg_path(_run_checkpoint(start_from, track, "start_from"))
    extra = _swift_flags(extra, params, deepspeed, resume_ckpt, val_path is not None)
    env = _launch_env(nproc_per_node)
    checks = _check_data(train_path, val_path, train_rows, val_rows, model, params["max_length"])
    n_rows = len(checks[train_path].first(train_rows))
    _check_disk(_need_disk_gb(model, params, n_rows))

    label = label or f"lr{learning_rate}-r{lora_rank}-e{num_train_epochs}-{train_path.stem}"
    lock = process.TrainingLock()
    taken_over = lock.claim(label)  # raises Busy, naming the live run, before anything is written
    try:
        run_dir = new_run_dir(track, label)
        lock.update(run=paths.short(run_dir))
        if taken_over and show:
            print(taken_over)
        if resume_ckpt is not None:
            write_history(resume_ckpt, run_dir)
        train_file = data.write_run_copy(checks[train_path], train_rows, run_dir)
        val_file = data.write_run_copy(checks[val_path], val_rows, run_dir) if val_path else None
        args = swift_runner.sft_command(model, train_file, val_file, params, run_dir, extra)
        run = Run(run_dir=run_dir, label=label, params={**params, "dataset": paths.short(train_path),
                  "train_rows": n_rows, "val_rows": val_rows}, extra=extra, model=model.name,
                  model_path=paths.short(model.path), track=track, command=swift_runner.printable("sft", args, env),
                  argv=args, env=env, started=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                  versions=environment.versions(), hardware=environment.hardware(),
                  resumed_from=paths.short(resume_ckpt) if resume_ckpt is not None else "")
        run.save()
        if show:
            print("Running from the course folder:\n  " + run.command, flush=True)
        child = swift_runner.launch("sft", args, run_dir / "swift.log", env, run_dir=run_dir, lock=lock)
    except BaseException:
        lock.release()
        raise
    run.status, run.pid, run.token, run.child = "running", child.pid, child.token, child
    run.save()
    _CHILDREN[run_dir] = child
    if wait:
        watch(run, child, show=show, on_update=on_update)
    return run


sft.__doc__ = sft.__doc__.rstrip() + "\n\n    " + knobs.doc().replace("\n", "\n    ") + "\n"  # from the one table


def watch(run: Run, child: process.Child, show: bool = True, on_update=None) -> Run:
    """Follow a running swift process: progress bar + live curves; stop its whole tree on interrupt.

    `on_update(run, log)` is called with the run's LogState each time the log has grown (the live figure is one
    such listener; a benchmark can be another).
    """
    t0 = time.time()
    live = LiveCurves(f"{run.label} ({run.track} track)") if show else None
    bar = Progress(run.label, unit="step", disable=not show)
    seen = -1

    def poll() -> None:
        nonlocal seen
        log = run.curves()
        train, evals = log.train, log.evals
        start = log.resumed_at or 0  # a continued run counts its own steps, not the earlier run's
        total = log.max_steps
        bar.update(max((log.last_step or start) - start, bar.n), total - start if total else None)
        if len(train) + len(evals) == seen:
            return
        seen = len(train) + len(evals)
        if live:
            last = f"step {train[-1][0]}: train {train[-1][1]:.3f}" if train else "waiting for the first log line"
            live.update(train, evals, last + (f", eval {evals[-1][1]:.3f}" if evals else ""), log.learning_rate)
        if on_update:
            on_update(run, log)

    try:
        returncode = child.wait(POLL_S, on_poll=poll)
        poll()
        run.record_end(returncode)
    except KeyboardInterrupt:  # child.wait has stopped the whole tree
        run.returncode, run.status = child.returncode, "interrupted"
        print(f"\nInterrupted: the swift process group is stopped; the partial log is kept in {paths.short(run.run_dir)}.")
    finally:
        bar.close()
        run.wall_time_s = round(time.time() - t0, 1)
        run.save()
        _CHILDREN.pop(run.run_dir, None)
        run.child = None
        if live:
            log = run.curves()
            live.update(log.train, log.evals, f"{run.status}", log.learning_rate)
            live.close()
    if show:
        _show_result(run)
    return run


def stop(run, why: str = "stopped with stop()") -> Run:
    """Stop a training: a Run (e.g. from `sft(..., wait=False)`) or its folder, started here or anywhere else
    on this machine (another notebook, `python -m helpers sft`). Its log and checkpoints are kept."""
    if not is_run(run):
        run = Run.load(Path(run))
    if run.child is None and run.run_dir in _CHILDREN:
        run.child = _CHILDREN[run.run_dir]
    run.stop(why=why)
    _CHILDREN.pop(run.run_dir, None)
    return run


def _show_result(run: Run) -> None:
    from IPython.display import display

    if run.status == "failed":
        print(f"swift failed (exit code {run.returncode}). Its own words:\n{run.error}")
        return
    display(run.diagnosis)
