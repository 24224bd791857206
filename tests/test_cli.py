"""The command line's own output (the commands' behaviour is tested with them elsewhere)."""

from types import SimpleNamespace

from helpers import cli, history, training
from helpers.cards import DiagnosisCard


def test_sft_prints_the_diagnosis_card_once(monkeypatch, capsys, tmp_path):
    card = DiagnosisCard("converged", "flat", {}, "done")

    def fake_sft(*args, show=True, **kwargs):
        if show:  # what sft(show=True) does at the end of a run
            print(card)
        return SimpleNamespace(status="finished", run_dir=tmp_path, diagnosis=card)

    monkeypatch.setattr(training, "sft", fake_sft)
    args, rest = cli.build_parser().parse_known_args(["sft", "--max_length", "256", "--eval_steps", "5",
                                                      "--train_rows", "4", "--val_rows", "2", "--label", "x"])
    assert cli._sft(args, rest) == 0
    assert capsys.readouterr().out.count("[CONVERGED]") == 1


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
