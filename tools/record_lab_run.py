"""Record a real cpu-track run of the lab notebook and store its outputs as the course's notebook 03.

    .venv/bin/python tools/record_lab_run.py                # it prints its estimate first; keep the machine idle
    .venv/bin/python tools/record_lab_run.py --timing-only  # time the lab only (FTLAB_CPU_BF16=0: the fp32 path)

(After editing only markdown in notebooks/src/03_fine_tuning_lab.py, `tools/build_notebooks.py` keeps the
recorded outputs: no new recording is needed.)

1. The previous recordings are moved (never deleted) to output/old-recordings/cpu-<time>/.
2. papermill runs notebooks/03_fine_tuning_lab.ipynb top to bottom with `-p record True`, letting the notebook
   pick its track itself as a learner's does (this refuses to start where that is not the cpu track),
   under /usr/bin/time -v (peak memory of the largest process); the notebook's own `sft()` calls save
   each run under resources/recordings/cpu/.
3. resources/recordings/cpu/notebook_run.json gets the command, date, hardware, the processor's name, the path
   (bf16 or fp32) and why, versions, total wall time, peak memory and every cell's duration.
4. The executed notebook becomes notebooks/03_fine_tuning_lab.ipynb, minus papermill's bookkeeping
   (its injected-parameters cell and metadata). Library chatter on stderr (progress bars that never
   finish once saved, warnings) is listed and dropped: fix its source when this prints any.
5. Both kinds of run, first measure this machine's pace (helpers/pace.py) and print the lab estimate it gives,
   then add the run to resources/recordings/lab_timing.json: its mode (bf16 or fp32), training and other
   seconds, the pace measured before it and the estimate printed before it, so check_environment() can
   estimate the lab on other machines and anyone can see how far off the estimate was.
   --timing-only runs the notebook without recording anything else (its outputs go to output/).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from helpers import environment, pace, paths, swiftlog  # noqa: E402

NOTEBOOK = ROOT / "notebooks" / "03_fine_tuning_lab.ipynb"
RECORDINGS = paths.COURSE_ROOT / "resources" / "recordings" / "cpu"
OUT = paths.OUTPUT_DIR / "lab-cpu-record.ipynb"
COMMAND = ["papermill", "notebooks/03_fine_tuning_lab.ipynb", "output/lab-cpu-record.ipynb", "-p", "record", "True",
           "--cwd", "notebooks"]


def check_track() -> None:
    """The recording is the cpu track as the notebook finds it by itself: no FTLAB_TRACK, no track parameter."""
    os.environ.pop(environment.TRACK_ENV, None)
    found = environment.detect_track()
    if found.name != "cpu":
        raise SystemExit(f"this machine is on the {found.name} track ({found.reason}); a cpu-track recording needs "
                         "a machine the notebook itself puts on the cpu track")


def move_old_recordings() -> None:
    if RECORDINGS.exists():
        dest = paths.OUTPUT_DIR / "old-recordings" / f"cpu-{datetime.now():%Y%m%d-%H%M%S}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(RECORDINGS), dest)
        print(f"previous recordings moved to {paths.short(dest)}")


def run_papermill(command: list[str] = COMMAND) -> tuple[float, float]:
    """(wall seconds, peak RSS of the largest process in GiB)."""
    OUT.parent.mkdir(parents=True, exist_ok=True)
    bindir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop(environment.TRACK_ENV, None)
    t0 = time.time()
    proc = subprocess.run(["/usr/bin/time", "-v", str(bindir / command[0]), *command[1:]], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    wall = time.time() - t0
    if proc.returncode:
        raise SystemExit(f"papermill failed:\n{proc.stderr[-4000:]}")
    kib = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))
    return wall, kib / 1024 ** 2


def cell_timings(nb: dict) -> list[dict]:
    out = []
    for cell in nb["cells"]:
        if cell["cell_type"] != "code" or "injected-parameters" in cell["metadata"].get("tags", []):
            continue
        seconds = cell["metadata"].get("papermill", {}).get("duration")
        if seconds is not None:
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            out.append({"first_line": source.splitlines()[0][:70] if source else "", "seconds": round(seconds, 1),
                        "trains": "sft(" in source})
    return out


def clean(nb: dict) -> list[str]:
    """Drop papermill's cell and metadata and stderr chatter; return what was dropped (to fix at the source)."""
    dropped = []
    nb["cells"] = [c for c in nb["cells"] if "injected-parameters" not in c["metadata"].get("tags", [])]
    nb["metadata"].pop("papermill", None)
    for cell in nb["cells"]:
        cell["metadata"].pop("papermill", None)
        cell["metadata"].pop("execution", None)
        if cell["cell_type"] != "code":
            continue
        keep = []
        for o in cell["outputs"]:
            if o.get("output_type") == "stream" and o.get("name") == "stderr":
                dropped.append(o["text"][:120].replace("\n", " "))
                continue
            keep.append(o)
        cell["outputs"] = keep
    return dropped


def add_timing(started: datetime, wall: float, cells: list[dict], measured: pace.Pace, before, command: str) -> dict:
    """Append this run to resources/recordings/lab_timing.json (what pace.estimate scales) and return it."""
    training = sum(c["seconds"] for c in cells if c.get("trains"))
    exp4 = sorted((paths.OUTPUT_DIR / "cpu").glob("*-exp4/logging.jsonl"))[-1:]  # this run's experiment 4
    summary = next((r for r in swiftlog.rows(exp4[0]) if "train_runtime" in r), None) if exp4 else None
    entry = {"mode": measured.mode, "date": started.date().isoformat(), "command": command,
             "hardware": environment.hardware(), "cpu": environment.cpu_model(), "cpu_bf16": environment.cpu_bf16()[1],
             "versions": environment.versions(),
             "wall_time_s": round(wall, 1), "training_s": round(training, 1), "other_s": round(wall - training, 1),
             "pace": measured.to_json(),
             # how many experiments the lab had: a lab that gained one takes longer (pace.estimate scales the newest kind)
             "experiments": len(list((paths.RECORDINGS_DIR / "cpu").glob("exp[0-9]*"))),
             # swift's own seconds per step in experiment 4 (125 steps of 8 rows): compare with pace.train_step_s
             "swift_step_s": round(summary["train_runtime"] / int(summary["global_step/max_steps"].split("/")[0]), 3)
             if summary else None,
             "estimate_before_s": round(before.seconds, 1) if before else None,
             "estimate_basis": before.basis if before else None,
             # what this lab did, counted from its plan (pace.lab_work): what the next estimate scales by
             "work": pace.lab_work("cpu")["totals"]}
    runs = pace.timings() + [entry]
    pace.TIMINGS.write_text(json.dumps({"what": "timed cpu-track runs of notebook 03 (tools/record_lab_run.py): "
                                        "what helpers/pace.py scales to estimate the lab on another machine",
                                        "runs": runs}, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return entry


def measure_before() -> tuple[pace.Pace, pace.Estimate | None]:
    bf16 = environment.cpu_bf16()[0]
    before = pace.estimate(bf16)
    measured = before.pace if before else pace.measure(bf16)
    print(f"pace here: {measured.to_json()}")
    print(f"lab estimate before the run: {before or 'none (no timed run to scale yet)'}", flush=True)
    return measured, before


def timing_only() -> int:
    """Run the lab on the cpu track and time it; records nothing but the timing."""
    measured, before = measure_before()
    out = paths.OUTPUT_DIR / f"lab-cpu-timing-{measured.mode}.ipynb"
    command = ["papermill", "notebooks/03_fine_tuning_lab.ipynb", paths.short(out), "--cwd", "notebooks"]
    started = datetime.now(timezone.utc)
    wall, peak_gib = run_papermill(command)
    cells = cell_timings(json.loads(out.read_text(encoding="utf-8")))
    switch = f"{environment.CPU_BF16_ENV}=0 " if os.environ.get(environment.CPU_BF16_ENV) == "0" else ""
    entry = add_timing(started, wall, cells, measured, before,
                       f"{switch}/usr/bin/time -v " + " ".join(command) + "  (tools/record_lab_run.py --timing-only)")
    off = f" ({(before.seconds - wall) / wall:+.0%} off)" if before else ""
    print(f"swift's step in experiment 4: {entry['swift_step_s']} s; the measured step before the run: "
          f"{measured.train_step_s:.3f} s")
    print(f"timed ({measured.mode}): {wall / 60:.1f} min wall, {entry['training_s'] / 60:.1f} min training, largest process "
          f"{peak_gib:.2f} GiB; estimate before it: {before.seconds / 60 if before else float('nan'):.1f} min{off}")
    return 0


def main() -> int:
    check_track()
    if "--timing-only" in sys.argv[1:]:
        return timing_only()
    if "--finish-only" in sys.argv[1:]:  # papermill already ran: store its output without running again
        nb = json.loads(OUT.read_text(encoding="utf-8"))
        meta = nb["metadata"]["papermill"]
        started = datetime.fromisoformat(meta["start_time"])
        wall, peak_gib = meta["duration"], None
    else:
        measured, before = measure_before()
        move_old_recordings()
        started = datetime.now(timezone.utc)
        wall, peak_gib = run_papermill()
        nb = json.loads(OUT.read_text(encoding="utf-8"))
    timings = cell_timings(nb)
    if "--finish-only" not in sys.argv[1:]:
        add_timing(started, wall, timings, measured, before, "/usr/bin/time -v " + " ".join(COMMAND))
    summary = {
        "what": "notebooks/03_fine_tuning_lab.ipynb executed top to bottom on the cpu track, recording these runs",
        "command": "/usr/bin/time -v " + " ".join(COMMAND) + "  (tools/record_lab_run.py)",
        "mode": "bf16" if environment.cpu_bf16()[0] else "fp32",
        "mode_why": environment.cpu_bf16()[1],
        "date": started.date().isoformat(),
        "hardware": environment.hardware(),
        "cpu": environment.cpu_model(),
        "versions": environment.versions(),
        "wall_time_s": round(wall, 1),
        "wall_time": f"{int(wall // 60)} min {wall % 60:.0f} s",
        "peak_rss_largest_process_gib": round(peak_gib, 2) if peak_gib is not None else None,
        "cell_seconds": timings,
    }
    RECORDINGS.mkdir(parents=True, exist_ok=True)
    (RECORDINGS / "notebook_run.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False) + "\n")
    dropped = clean(nb)
    NOTEBOOK.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    peak = f"{peak_gib:.2f} GiB" if peak_gib is not None else "not measured"
    print(f"recorded: {summary['wall_time']} wall, largest process {peak}; stored outputs in {paths.short(NOTEBOOK)}")
    for text in dropped:
        print(f"dropped stderr output (fix its source): {text}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
