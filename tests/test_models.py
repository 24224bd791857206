"""Model resolution and the embedded model's conversion cache."""

import json
import os
import shutil
import time

import pytest

from helpers import environment, models, paths

_real_embedded = models.embedded_dir()


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


@pytest.fixture
def lesson_folder(monkeypatch, tmp_path):
    """A complete `model/` (the stand-in is a real Qwen2 folder) on a machine that looks like an A10."""
    folder = tmp_path / "model"
    shutil.copytree(models.prepare_standin(quiet=True), folder)
    (folder / models.STANDIN_FILE).unlink()
    monkeypatch.setattr(environment, "gpu_info", lambda: {"name": "A10", "total_gb": 24.0, "free_gb": 23.0, "count": 1})
    monkeypatch.setattr(paths, "LESSON_MODEL_DIR", folder)
    monkeypatch.delenv(models.STANDIN_ENV, raising=False)
    return folder


def test_lesson_model_present_is_reused_with_its_swift_flags(lesson_folder, monkeypatch):
    downloads = []
    monkeypatch.setattr(models, "download_lesson_model", downloads.append)
    monkeypatch.setattr(models, "hub_reachable", lambda: True)
    for _ in range(2):  # found and reused, every time: never a second download
        m = models.get_model("qwen2.5-1.5b-instruct")
        assert not m.embedded and not m.standin and m.path == lesson_folder
    assert downloads == []
    assert m.swift_args() == ["--model", str(lesson_folder), "--model_type", "qwen2", "--template", "qwen2_5"]


@pytest.mark.parametrize("damage,reason", [
    ("truncate", "download cut short"),
    ("no_weights", "no *.safetensors weights"),
    ("no_tokenizer", "tokenizer_config.json missing"),
    ("missing_shard", "model-00002-of-00002.safetensors missing"),
])
def test_partial_lesson_download_is_detected_and_downloaded_again(lesson_folder, monkeypatch, capsys, damage, reason):
    weights = lesson_folder / "model.safetensors"
    if damage == "truncate":
        with open(weights, "r+b") as f:
            f.truncate(weights.stat().st_size // 3)
    elif damage == "no_weights":
        weights.unlink()
    elif damage == "no_tokenizer":
        (lesson_folder / "tokenizer_config.json").unlink()
    else:  # a sharded model (Qwen2.5-7B and larger) with its second shard not downloaded yet
        weights.rename(lesson_folder / "model-00001-of-00002.safetensors")
        (lesson_folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
            "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    assert any(reason in p for p in models.folder_problems(lesson_folder))
    downloads = []
    monkeypatch.setattr(models, "hub_reachable", lambda: True)
    monkeypatch.setattr(models, "download_lesson_model", downloads.append)
    models.get_model("qwen2.5-1.5b-instruct")
    assert downloads == [lesson_folder]
    assert "model/ is incomplete" in capsys.readouterr().out


def test_partial_lesson_download_offline_falls_back_and_says_why(lesson_folder, monkeypatch, capsys):
    (lesson_folder / "model.safetensors").unlink()
    monkeypatch.setenv("FTLAB_OFFLINE", "1")
    m = models.get_model("qwen2.5-1.5b-instruct")
    out = capsys.readouterr().out
    assert m.embedded and "incomplete" in out and "unreachable" in out


def test_standin_is_built_once_labelled_and_substituted_by_one_variable(monkeypatch, capsys):
    t0 = time.time()
    m = models.standin_model()
    assert time.time() - t0 < 2.0, "the cached stand-in must be reused"
    assert models.is_complete(m.path) and not models.folder_problems(m.path)
    assert m.standin and (m.model_type, m.template) == ("qwen2", "qwen2_5")
    for text in (str(m), repr(m)):
        assert "STAND-IN" in text and "learns nothing" in text
    cfg = json.loads((m.path / "config.json").read_text())
    assert cfg["model_type"] == "qwen2" and cfg["architectures"] == ["Qwen2ForCausalLM"]
    assert sum(f.stat().st_size for f in m.path.glob("*.safetensors")) < 20e6
    assert models.get_model(str(m.path)).standin  # its folder, passed as a path, is still labelled
    monkeypatch.setenv(models.STANDIN_ENV, "standin")
    monkeypatch.setenv("FTLAB_TRACK", "gpu")
    picked = models.get_model()  # the gpu track's lesson model, on a machine without a GPU
    assert picked.standin and "STAND-IN" in capsys.readouterr().out
    report = environment.check_environment(show=False)
    assert "STAND-IN" in str(report) and "learns nothing" in str(report)
    monkeypatch.setenv(models.STANDIN_ENV, "qwen-7b")
    with pytest.raises(ValueError, match="Fix: unset"):
        models.get_model("qwen2.5-1.5b-instruct")


def test_standin_build_is_atomic_and_rebuilds_a_partial_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "CACHE_DIR", tmp_path)
    monkeypatch.setattr(models, "prepare_embedded", lambda **kw: _real_embedded)  # its tokenizer, not a rebuild
    target = models.standin_dir()
    target.mkdir(parents=True)
    (target / "model.safetensors").write_bytes(b"half")
    out = models.prepare_standin(quiet=True)
    assert out == target and models.is_complete(target)
    assert not list(target.parent.glob(".Qwen2-standin.*"))


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
    from helpers import data, inference

    loaded = inference.load(models.get_model("embedded"))
    ids = inference.encode_prompt(loaded.template, data.prompt_row("What is 2 plus 3? Answer with a number."))
    assert inference.generate(loaded, [ids], 12)[0].strip()
