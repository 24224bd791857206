"""Environment report and track selection."""

import pytest

from helpers import environment


def test_report_has_every_row_and_a_track():
    rep = environment.check_environment(show=False)
    keys = [k for k, _ in rep.rows]
    for k in ("GPU", "CPU cores", "RAM", "Free disk", "Python", "torch", "ms-swift", "transformers"):
        assert k in keys
    assert rep.track.name in environment.TRACKS and rep.track.reason
    assert rep.advice
    assert "Track:" in str(rep) and "<table>" in rep._repr_html_()


def test_track_env_var_overrides_and_bad_values_are_explained(monkeypatch):
    monkeypatch.setenv("FTLAB_TRACK", "cpu")
    assert environment.detect_track().name == "cpu"
    monkeypatch.setenv("FTLAB_TRACK", "tpu")
    with pytest.raises(ValueError, match="Fix: set it to one of gpu, cpu, ci"):
        environment.detect_track()


def test_automatic_track_follows_gpu_memory(monkeypatch):
    monkeypatch.delenv("FTLAB_TRACK", raising=False)
    monkeypatch.setattr(environment, "gpu_info", lambda: None)
    assert environment.detect_track().name == "cpu"
    monkeypatch.setattr(environment, "gpu_info", lambda: {"name": "NVIDIA A10", "total_gb": 22.0, "free_gb": 21.0, "count": 1})
    assert environment.detect_track().name == "gpu"
    monkeypatch.setattr(environment, "gpu_info", lambda: {"name": "T4-small", "total_gb": 8.0, "free_gb": 8.0, "count": 1})
    assert environment.detect_track().name == "cpu"


def test_lesson_settings_fit_an_a10():
    need = environment.lesson_memory_gb(batch_size=16, max_length=512, lora_rank=8)
    assert 8 < need < 22, need  # A10: 24 GB = 22.4 GiB
    assert environment.lesson_memory_gb(batch_size=8) < need


def test_a10_advice_says_the_gpu_track_fits(monkeypatch):
    monkeypatch.delenv("FTLAB_TRACK", raising=False)
    monkeypatch.setattr(environment, "gpu_info", lambda: {"name": "NVIDIA A10", "total_gb": 22.0, "free_gb": 21.0, "count": 1})
    rep = environment.check_environment(show=False)
    assert rep.track.name == "gpu"
    assert any("gpu track fits" in a for a in rep.advice)
