"""Model resolution and the embedded model's conversion cache."""

import json
import os
import shutil
import time

import pytest

from helpers import environment, models, paths


def test_embedded_names_resolve_to_the_converted_cache():
    for name in ("smollm2-135m-instruct", "SmolLM2", "embedded"):
        m = models.get_model(name)
        assert m.embedded and m.model_type == "llama" and m.template == "chatml"
        assert models.is_complete(m.path)
    assert m.swift_args()[:2] == ["--model", str(m.path)]


def test_unknown_model_name_is_rejected_with_the_fix():
    with pytest.raises(ValueError, match="Fix: use"):
        models.get_model("gpt-9")


def test_lesson_model_without_gpu_falls_back_in_one_sentence(capsys):
    if environment.gpu_info():
        pytest.skip("this machine has a GPU")
    t0 = time.time()
    m = models.get_model("Qwen/Qwen2.5-1.5B-Instruct")
    assert m.embedded and time.time() - t0 < 5
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "No CUDA GPU" in out[0]


def test_lesson_model_offline_without_local_copy_falls_back(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(environment, "gpu_info", lambda: {"name": "A10", "total_gb": 24.0, "free_gb": 23.0, "count": 1})
    monkeypatch.setattr(paths, "LESSON_MODEL_DIR", tmp_path / "model")
    monkeypatch.setenv("FTLAB_OFFLINE", "1")
    m = models.get_model("qwen2.5-1.5b-instruct")
    assert m.embedded
    assert "unreachable" in capsys.readouterr().out


def test_lesson_model_present_is_reused_with_its_swift_flags(monkeypatch, tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    for f in ("config.json", "tokenizer_config.json", "model.safetensors"):
        (folder / f).write_text("{}")
    monkeypatch.setattr(environment, "gpu_info", lambda: {"name": "A10", "total_gb": 24.0, "free_gb": 23.0, "count": 1})
    monkeypatch.setattr(paths, "LESSON_MODEL_DIR", folder)
    m = models.get_model("qwen2.5-1.5b-instruct")
    assert not m.embedded and m.path == folder
    assert m.swift_args() == ["--model", str(folder), "--model_type", "qwen2", "--template", "qwen2_5"]


def test_download_command_targets_the_course_model_folder(tmp_path):
    cmd = models.download_command(tmp_path / "model")
    assert cmd[-4:] == ["--model", "Qwen/Qwen2.5-1.5B-Instruct", "--local_dir", str(tmp_path / "model")]
    assert "download" in cmd


def test_is_complete_detects_partial_and_corrupt_caches(tmp_path):
    good = models.embedded_dir()
    copy = tmp_path / "copy"
    shutil.copytree(good, copy)
    assert models.is_complete(copy)
    weights = next(copy.glob("*.safetensors"))
    with open(weights, "r+b") as f:  # a download/convert cut short
        f.truncate(1000)
    assert not models.is_complete(copy)
    (copy / "ftlab-complete.json").unlink()
    assert not models.is_complete(copy)
    (copy / "ftlab-complete.json").write_text("{not json")
    assert not models.is_complete(copy)


def test_conversion_rebuilds_a_partial_cache_and_is_idempotent(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "CACHE_DIR", tmp_path)
    target = models.embedded_dir()
    target.mkdir(parents=True)
    (target / "model.safetensors").write_bytes(b"half")  # what an interrupted earlier run might leave
    (tmp_path / "models" / ".SmolLM2-135M-Instruct.tmp-1").mkdir()
    out = models.prepare_embedded(quiet=True)
    assert out == target and models.is_complete(target)
    marker = json.loads((target / "ftlab-complete.json").read_text())
    assert any(name.endswith(".safetensors") for name in marker["files"])
    assert not list((tmp_path / "models").glob(f".*.tmp-{os.getpid()}"))
    t0 = time.time()
    models.prepare_embedded(quiet=True)
    assert time.time() - t0 < 1.0, "second set-up must do nothing"


def test_embedded_model_answers_a_chat_prompt():
    answer = models.chat(models.get_model("embedded"), "What is 2 plus 3? Answer with a number.", max_new_tokens=12)
    assert answer.strip()
