"""The command line's own output (the commands' behaviour is tested with them elsewhere)."""

import json

from helpers import cli, history


def test_sft_runs_the_real_call_path_and_prints_the_card_once(monkeypatch, capsys, tmp_path):
    """`python -m helpers sft ...` end to end through cli.main, sft() and watch(); only the swift process is
    replaced: by one that has already written the log of a real run (the recorded cpu-track experiment 3)."""
    import shutil

    from helpers import models, paths, process, swift_runner

    monkeypatch.setattr(paths, "OUTPUT_DIR", tmp_path / "output")
    launched = []

    def swift_that_already_ran(verb, args, log_path, env=None, run_dir=None, lock=None):
        launched.append([verb, *args])
        shutil.copy(paths.RECORDINGS_DIR / "cpu" / "exp3" / "logging.jsonl", run_dir / "logging.jsonl")
        return process.Child(["true"], log_path, run_dir=run_dir, lock=lock)

    monkeypatch.setattr(swift_runner, "launch", swift_that_already_ran)
    code = cli.main(["sft", "--model", str(models.standin_model().path), "--learning_rate", "5e-5", "--batch_size", "4",
                     "--max_length", "256", "--eval_steps", "5", "--train_rows", "4", "--val_rows", "2", "--label", "x",
                     "--lora_dropout", "0.0"])
    out = capsys.readouterr().out
    assert code == 0 and out.count("[OVERFITTING]") == 1  # the recorded run's state, shown once by sft itself
    verb, *argv = launched[0]
    flags = dict(zip(argv[0::2], argv[1::2]))
    assert verb == "sft" and flags["--learning_rate"] == "5e-5" and flags["--per_device_train_batch_size"] == "4"
    assert flags["--eval_steps"] == flags["--save_steps"] == "5" and flags["--lora_dropout"] == "0.0"
    assert flags["--dataset"].endswith("train_100_first4.jsonl") and flags["--eval_on_start"] == "true"
    assert "swift sft " in out and out.rstrip().splitlines()[-1].startswith("finished: ")
    record = json.loads(next((tmp_path / "output").glob("*/001-x/ftlab_run.json")).read_text())
    assert record["status"] == "finished" and record["params"]["learning_rate"] == 5e-5


def test_a_run_whose_kernel_died_after_swift_finished_is_finished(tmp_path):
    """The notebook's kernel was killed after swift wrote its summary: the run is finished, not interrupted."""
    import json
    import subprocess
    import sys

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for name, lines in {"done": ['{"loss": 1.0, "global_step/max_steps": "2/2"}',
                                 '{"train_runtime": 3.0, "global_step/max_steps": "2/2"}'],
                        "cut": ['{"loss": 1.0, "global_step/max_steps": "1/2"}']}.items():
        run_dir = tmp_path / name
        run_dir.mkdir()
        (run_dir / "logging.jsonl").write_text("\n".join(lines) + "\n")
        (run_dir / history.RUN_FILE).write_text(json.dumps({"label": name, "status": "running", "pid": dead.pid}))
    assert history.Run.load(tmp_path / "done").status == "finished"
    assert history.Run.load(tmp_path / "cut").status == "interrupted"
