"""What ms-swift really does with each hand-made edge file (tests/edge_files/), beside what `validate` says.

For every file: `validate`'s verdict, then a real 1-step `swift sft` (the ci track's settings, the embedded
model) on the file exactly as written, and on the copy `sft()` would train on. Prints a Markdown table.
A maintainer tool (about 30 s per file), not part of `make test`; tests/test_edge_files.py holds the rule.

    .venv/bin/python tools/edge_files_swift.py
"""

import re
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from helpers import data, knobs, models, paths, swift_runner, tracks  # noqa: E402

EDGE = paths.COURSE_ROOT / "tests" / "edge_files"


def swift_rows(model, train_file: Path, out: Path) -> str:
    p = tracks.experiments("ci")[1].params
    params = knobs.check(p["learning_rate"], p["lora_rank"], 1, 2, 256, 1)
    argv = swift_runner.sft_command(model, train_file, None, params, out,
                                    {"max_steps": 1, "eval_strategy": "no", "save_strategy": "no",
                                     "split_dataset_ratio": 0, "dataset_num_proc": 1})
    r = subprocess.run([sys.executable, "-m", "swift.cli.main", "sft", *argv], cwd=paths.COURSE_ROOT,
                       capture_output=True, text=True, env={**__import__("os").environ, **swift_runner.SWIFT_ENV})
    log = r.stdout + r.stderr
    rows = re.findall(r"train_dataset: Dataset\(\{\s*features: \[.*?\],\s*num_rows: (\d+)", log, re.S)
    dropped = "; swift warned: errors in the dataset, rows deleted" if "the data will be deleted" in log else ""
    if r.returncode != 0:
        err = [ln.strip() for ln in log.splitlines() if "Error" in ln and ":" in ln]
        return f"failed (exit {r.returncode}): {err[-1][:120] if err else '?'}"
    return f"trained {rows[-1] if rows else '?'} rows{dropped}"


def main() -> None:
    model = models.get_model(None)
    print("| file | rows in it | validate | swift sft on the file | swift sft on sft()'s copy |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for f in sorted(EDGE.iterdir()):
            check = data.check_file(f)
            n = len(check.rows) + len(check.errors)
            if check.errors:
                verdict = check.errors[0].split(": ", 1)[1]
                copy = "-"
            else:
                long = data.long_rows(check, model.path, 256)
                verdict = "accepted" + (f" ({', '.join(check.repairs)} left out of the copy)" if check.repairs else "")
                verdict += "".join(f"; warning: line {w.split(':')[1]} too long" for w in long)
                folder = Path(tmp) / f.stem
                folder.mkdir()
                copy = swift_rows(model, data.write_run_copy(check, None, folder), folder / "copy")
            print(f"| {f.name} | {n} | {verdict} | {swift_rows(model, f, Path(tmp) / f.stem / 'raw')} | {copy} |",
                  flush=True)


if __name__ == "__main__":
    main()
