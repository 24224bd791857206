"""Record a real cpu-track run of the lab notebook and store its outputs as the course's notebook 03.

    .venv/bin/python tools/record_lab_run.py            # ~20 min on 2 cores; keep the machine otherwise idle

(After editing only markdown in notebooks/src/03_fine_tuning_lab.py, `tools/build_notebooks.py` keeps the
recorded outputs: no new recording is needed.)

1. The previous recordings are moved (never deleted) to output/old-recordings/cpu-<time>/.
2. papermill runs notebooks/03_fine_tuning_lab.ipynb top to bottom with `-p track cpu -p record True`,
   under /usr/bin/time -v (peak memory of the largest process); the notebook's own `sft()` calls save
   each run under resources/recordings/cpu/.
3. resources/recordings/cpu/notebook_run.json gets the command, date, hardware, versions, total wall
   time, peak memory and every cell's duration.
4. The executed notebook becomes notebooks/03_fine_tuning_lab.ipynb, minus papermill's bookkeeping
   (its injected-parameters cell and metadata). Library chatter on stderr (progress bars that never
   finish once saved, warnings) is listed and dropped: fix its source when this prints any.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from helpers import environment, paths  # noqa: E402

NOTEBOOK = ROOT / "notebooks" / "03_fine_tuning_lab.ipynb"
RECORDINGS = paths.COURSE_ROOT / "resources" / "recordings" / "cpu"
OUT = paths.OUTPUT_DIR / "lab-cpu-record.ipynb"
COMMAND = ["papermill", "notebooks/03_fine_tuning_lab.ipynb", "output/lab-cpu-record.ipynb", "-p", "track", "cpu",
           "-p", "record", "True", "--cwd", "notebooks"]


def move_old_recordings() -> None:
    if RECORDINGS.exists():
        dest = paths.OUTPUT_DIR / "old-recordings" / f"cpu-{datetime.now():%Y%m%d-%H%M%S}"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(RECORDINGS), dest)
        print(f"previous recordings moved to {paths.short(dest)}")


def run_papermill() -> tuple[float, float]:
    """(wall seconds, peak RSS of the largest process in GiB)."""
    OUT.parent.mkdir(parents=True, exist_ok=True)
    bindir = Path(sys.executable).parent
    env = {**os.environ, "FTLAB_TRACK": "cpu", "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}"}
    t0 = time.time()
    proc = subprocess.run(["/usr/bin/time", "-v", str(bindir / COMMAND[0]), *COMMAND[1:]], cwd=ROOT, env=env,
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
            out.append({"first_line": source.splitlines()[0][:70] if source else "", "seconds": round(seconds, 1)})
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


def main() -> int:
    if "--finish-only" in sys.argv[1:]:  # papermill already ran: store its output without running again
        nb = json.loads(OUT.read_text(encoding="utf-8"))
        meta = nb["metadata"]["papermill"]
        started = datetime.fromisoformat(meta["start_time"])
        wall, peak_gib = meta["duration"], None
    else:
        move_old_recordings()
        started = datetime.now(timezone.utc)
        wall, peak_gib = run_papermill()
        nb = json.loads(OUT.read_text(encoding="utf-8"))
    timings = cell_timings(nb)
    summary = {
        "what": "notebooks/03_fine_tuning_lab.ipynb executed top to bottom on the cpu track, recording these runs",
        "command": "FTLAB_TRACK=cpu /usr/bin/time -v " + " ".join(COMMAND) + "  (tools/record_lab_run.py)",
        "date": started.date().isoformat(),
        "hardware": environment.hardware(),
        "cpu": platform.processor() or platform.machine(),
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
