"""Take the model home as one file: a GGUF of a merged model (llama.cpp, Ollama, LM Studio) and an Ollama Modelfile.

Written with the `gguf` package's writer by our own code (the package has no Hugging Face converter), for the two
architectures this course trains: llama (SmolLM2, the embedded model) and qwen2 (Qwen2.5, the lesson model).
`check_gguf` then reads the file back with a reader the course did not write, transformers' GGUF loader, and
compares its greedy answers with the merged folder's on the lesson's ten questions.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from . import data, inference, merging, models, paths, scoring
from .history import checkpoint_to_use, is_run

ARCHITECTURES = ("llama", "qwen2")  # Hugging Face config `model_type`s we can write; llama.cpp uses the same names
QUANTS = ("f16", "q8_0")
BLOCK = 32  # Q8_0 quantizes rows in blocks of 32 weights (34 bytes each: an f16 scale and 32 int8)
MODELFILE = "Modelfile"
TEN_QUESTIONS = paths.DATA_DIR / "test.jsonl"  # the lesson's ten questions
# Qwen2's pre-tokenizer regex, as its tokenizer.json spells it; llama.cpp calls this pre-tokenizer "qwen2"
QWEN2_REGEX = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*"
               r"|\s*[\r\n]+|\s+(?!\S)|\s+")


def free_bytes(folder: Path) -> int:
    """Free disk space where `folder` lives (a test replaces this to simulate a full disk)."""
    return shutil.disk_usage(folder).free


@dataclass
class Planned:
    """One tensor as it will be written: where it comes from and what it becomes."""

    source: str  # the Hugging Face name
    name: str  # the GGUF name
    shape: tuple
    qtype: object  # gguf.GGMLQuantizationType
    nbytes: int


# ---------------------------------------------------------------- what to export


def _checkpoint_of_run(run) -> Path:
    ckpt = checkpoint_to_use(run)
    if not ckpt:
        raise ValueError("this run has no finished checkpoint to export — fix: train it to the end (or pick another "
                         "run with `runs()`), then export again")
    return Path(ckpt)


def merged_folder(run_or_merged, show: bool = True) -> Path:
    """The merged model folder to export: a Run or a LoRA checkpoint is merged first (`merge`), a merged
    (or any full) model folder is used as it is, once it is complete."""
    if is_run(run_or_merged):
        return merging.merge(_checkpoint_of_run(run_or_merged), show=show)
    folder = Path(run_or_merged)
    if (folder / "adapter_config.json").is_file():
        return merging.merge(folder, show=show)
    if not (folder / "config.json").is_file():
        raise ValueError(f"{paths.short(folder)}: not a model folder (no config.json) nor a LoRA checkpoint — fix: "
                         "pass a Run, one of its checkpoint-N folders, or the folder `merge()` returned")
    problems = models.folder_problems(folder)
    if problems:
        raise ValueError(f"{paths.short(folder)} is incomplete ({'; '.join(problems[:3])}) — fix: delete it and "
                         "run `merge()` again (or download the model again)")
    return folder


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def read_config(folder: Path) -> dict:
    config = _read_json(folder / "config.json")
    arch = config.get("model_type")
    if arch not in ARCHITECTURES:
        raise ValueError(f"{paths.short(folder)}: architecture {arch!r} cannot be exported here (only "
                         f"{', '.join(ARCHITECTURES)}) — fix: use llama.cpp's convert_hf_to_gguf.py for it")
    scaling = config.get("rope_scaling") or {}
    if scaling.get("rope_type", scaling.get("type", "default")) != "default":
        raise ValueError(f"{paths.short(folder)}: rope scaling {scaling} is not supported by this exporter — fix: use "
                         "llama.cpp's convert_hf_to_gguf.py")
    return config


def _rope_theta(config: dict) -> float:
    return float((config.get("rope_parameters") or {}).get("rope_theta") or config.get("rope_theta") or 10000.0)


def _head_dim(config: dict) -> int:
    return int(config.get("head_dim") or config["hidden_size"] // config["num_attention_heads"])


# ---------------------------------------------------------------- tensors


def _weight_files(folder: Path) -> list[Path]:
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        return [folder / name for name in sorted(set(_read_json(index)["weight_map"].values()))]
    return sorted(folder.glob("*.safetensors"))


def _source_shapes(folder: Path) -> dict[str, tuple[Path, tuple]]:
    """Every tensor's name -> (file, shape), from the safetensors headers only."""
    from safetensors import safe_open

    shapes = {}
    for file in _weight_files(folder):
        with safe_open(file, "pt") as f:
            for name in f.keys():
                shapes[name] = (file, tuple(f.get_slice(name).get_shape()))
    return shapes


def ggml_type(shape: tuple, quant: str):
    import gguf

    if len(shape) == 1:  # norms and biases stay f32, as llama.cpp keeps them in every file type
        return gguf.GGMLQuantizationType.F32
    if quant == "q8_0" and shape[-1] % BLOCK == 0:
        return gguf.GGMLQuantizationType.Q8_0
    return gguf.GGMLQuantizationType.F16  # f16, or a row that Q8_0's 32-weight blocks cannot cover


def tensor_bytes(shape: tuple, qtype) -> int:
    import gguf

    block, block_bytes = gguf.GGML_QUANT_SIZES[qtype]
    count = 1
    for n in shape:
        count *= n
    return count // block * block_bytes


def plan_tensors(folder: Path, config: dict, quant: str) -> list[Planned]:
    """What will be written, from the safetensors headers: GGUF names, types and sizes (no weights read)."""
    import gguf

    arch = getattr(gguf.MODEL_ARCH, config["model_type"].upper())
    names = gguf.get_tensor_name_map(arch, config["num_hidden_layers"])
    planned = []
    for source, (_, shape) in _source_shapes(folder).items():
        if source == "lm_head.weight" and config.get("tie_word_embeddings"):
            continue  # tied: llama.cpp reads the output layer from token_embd when output.weight is absent
        if source.endswith("rotary_emb.inv_freq"):
            continue  # computed from rope.freq_base
        name = names.get_name(source, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise ValueError(f"{paths.short(folder)}: tensor {source!r} has no GGUF name for {config['model_type']} — "
                             "fix: export a plain merged model (no extra layers), or use llama.cpp's converter")
        qtype = ggml_type(shape, quant)
        planned.append(Planned(source, name, shape, qtype, tensor_bytes(shape, qtype)))
    return planned


def rotary_rows(rows: int, heads: int):
    """Row order that turns Hugging Face's rotary layout into GGUF llama's.

    HF's llama checkpoints rotate each head's first half of dimensions against its second half (rotate_half);
    llama.cpp's llama rotates adjacent pairs (0,1), (2,3)... So within each head, row i of the first half and
    row i of the second half must become neighbours: new row 2i <- old i, new row 2i+1 <- old half+i.
    """
    import numpy as np

    half = rows // heads // 2
    return np.arange(rows).reshape(heads, 2, half).transpose(0, 2, 1).reshape(-1)


def tensor_data(planned: Planned, weights, config: dict):
    """The array to write for one tensor: f32 from the checkpoint, q/k rows reordered for llama, then cast or
    quantized."""
    import gguf
    import numpy as np

    array = weights.get_tensor(planned.source).float().numpy()
    if config["model_type"] == "llama" and planned.name.split(".")[-2] in ("attn_q", "attn_k"):
        heads = config["num_attention_heads"] if ".attn_q." in planned.name else config["num_key_value_heads"]
        array = array[rotary_rows(array.shape[0], heads)]
    if planned.qtype == gguf.GGMLQuantizationType.F32:
        return np.ascontiguousarray(array, dtype=np.float32)
    if planned.qtype == gguf.GGMLQuantizationType.F16:
        return np.ascontiguousarray(array, dtype=np.float16)
    return gguf.quants.quantize(array, planned.qtype)


# ---------------------------------------------------------------- tokenizer


def _pre_steps(tokenizer_json: dict) -> list[dict]:
    """The tokenizer's pre-tokenizer steps, in order (a Sequence unpacked)."""
    pre = tokenizer_json.get("pre_tokenizer") or {}
    return pre.get("pretokenizers") or ([pre] if pre else [])


def pre_tokenizer_name(tokenizer_json: dict) -> str:
    """llama.cpp's name for how this tokenizer splits text before BPE ("qwen2" or "smollm").

    SmolLM2's own tokenizer isolates every digit, then applies GPT-2's byte-level regex: llama.cpp's "smollm".
    The embedded folder's tokenizer (converted from a GGUF by transformers) lost the digit step, which changes
    nothing as long as the vocabulary has no token joining a digit to another digit or a space.
    """
    steps = _pre_steps(tokenizer_json)
    if any(s.get("type") == "Split" and s.get("pattern", {}).get("Regex") == QWEN2_REGEX for s in steps):
        return "qwen2"
    kinds = [s.get("type") for s in steps]
    digits_alone = any(s.get("type") == "Digits" and s.get("individual_digits") for s in steps)
    vocab = tokenizer_json.get("model", {}).get("vocab", {})
    joined_digits = any(len(token) > 1 and re.fullmatch(r"Ġ?[0-9]+", token) for token in vocab)
    if kinds[-1:] == ["ByteLevel"] and set(kinds) <= {"Digits", "ByteLevel"} and (digits_alone or not joined_digits):
        return "smollm"
    raise ValueError(f"unknown pre-tokenizer {tokenizer_json.get('pre_tokenizer')} — fix: use llama.cpp's "
                     "convert_hf_to_gguf.py for this model")


def _special_id(name: str, tokenizer_config: dict, config: dict, vocab: dict) -> int | None:
    """A special token's id: the tokenizer's own choice (tokenizer_config.json), else config.json's."""
    token = tokenizer_config.get(f"{name}_token")
    token = token.get("content") if isinstance(token, dict) else token
    if token in vocab:
        return vocab[token]
    return config.get(f"{name}_token_id") if isinstance(config.get(f"{name}_token_id"), int) else None


def tokenizer_metadata(folder: Path, vocab_size: int) -> dict:
    """Everything llama.cpp needs to tokenize like the folder's tokenizer: tokens (padded to the embedding's
    rows), their types, the BPE merges, special ids, pre-tokenizer and chat template."""
    import gguf

    tok = _read_json(folder / "tokenizer.json")
    if tok.get("model", {}).get("type") != "BPE":
        raise ValueError(f"{paths.short(folder)}: tokenizer is not byte-level BPE — fix: use llama.cpp's converter")
    vocab = {**tok["model"]["vocab"], **{a["content"]: a["id"] for a in tok.get("added_tokens", [])}}
    if max(vocab.values()) >= vocab_size:
        raise ValueError(f"{paths.short(folder)}: the tokenizer has ids beyond the model's {vocab_size} embeddings")
    by_id = {i: t for t, i in vocab.items()}
    added = {a["id"]: a.get("special", False) for a in tok.get("added_tokens", [])}
    tokens, types = [], []
    for i in range(vocab_size):
        if i not in by_id:  # embedding rows no token uses (Qwen2.5 pads its vocabulary to a round size)
            tokens.append(f"[PAD{i}]")
            types.append(gguf.TokenType.UNUSED)
        else:
            tokens.append(by_id[i])
            types.append(gguf.TokenType.NORMAL if i not in added else
                         gguf.TokenType.CONTROL if added[i] else gguf.TokenType.USER_DEFINED)
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"].get("merges", [])]
    config, tok_config = _read_json(folder / "config.json"), _read_json(folder / "tokenizer_config.json")
    ids = {name: _special_id(name, tok_config, config, vocab) for name in ("bos", "eos", "unk", "pad")}
    space_prefix = any(s.get("type") == "ByteLevel" and s.get("add_prefix_space") for s in _pre_steps(tok))
    return {"pre": pre_tokenizer_name(tok), "space_prefix": space_prefix, "tokens": tokens, "types": types,
            "merges": merges, "ids": ids, "add_bos": bool(tok_config.get("add_bos_token", False)),
            "chat_template": training_chat_template(folder)}


# ---------------------------------------------------------------- the chat template

# The turns of ms-swift's chatml-family templates (chatml for SmolLM2, qwen2_5 for Qwen2.5), as its template_meta
# spells them: training and exam() wrote exactly these strings around each turn.
CHATML_META = {"prefix": [], "prompt": ["<|im_start|>user\n{{QUERY}}<|im_end|>\n<|im_start|>assistant\n"],
               "chat_sep": ["<|im_end|>\n"], "suffix": ["<|im_end|>\n"],
               "system_prefix": ["<|im_start|>system\n{{SYSTEM}}<|im_end|>\n"]}


def chatml_jinja(default_system: str | None) -> str:
    """A Jinja chat template (the language of llama.cpp's --jinja, llama-server, LM Studio and transformers) that
    writes what ms-swift's chatml-family template writes, turn for turn:

    - a system block only for a non-empty system message: an empty one (the course's rows) writes nothing;
    - no system message at all: the template's default system prompt where it has one (Qwen2.5's), else nothing;
    - each turn `<|im_start|>ROLE\\nTEXT<|im_end|>\\n`, and `<|im_start|>assistant\\n` as the generation prompt.

    The text is written by expressions only, so it comes out the same with or without trim_blocks/lstrip_blocks.
    """
    default = json.dumps(default_system or "")  # a JSON string is a Jinja string literal
    return ("{%- set system = " + default + " %}\n"
            "{%- set turns = messages %}\n"
            "{%- if messages and messages[0]['role'] == 'system' %}\n"
            "    {%- set system = messages[0]['content'] %}\n"
            "    {%- set turns = messages[1:] %}\n"
            "{%- endif %}\n"
            "{%- if system %}\n"
            "    {{- '<|im_start|>system\\n' + system + '<|im_end|>\\n' }}\n"
            "{%- endif %}\n"
            "{%- for message in turns %}\n"
            "    {{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}\n"
            "{%- endfor %}\n"
            "{%- if add_generation_prompt %}\n"
            "    {{- '<|im_start|>assistant\\n' }}\n"
            "{%- endif %}\n")


def training_chat_template(folder: Path) -> str:
    """The chat template a GGUF file of this model must carry: the one ms-swift trained it with (`chatml_jinja`).

    The folder's own template is not it: SmolLM2's inserts "You are a helpful AI assistant named SmolLM..." when
    a chat has no system turn and writes an empty system block for an empty one, and Qwen2.5's writes an empty
    block too; swift's templates, which trained the course's models, write neither.
    """
    from swift.template import TEMPLATE_MAPPING

    template_type = inference.resolve(folder)[2]
    meta = TEMPLATE_MAPPING.get(template_type)
    shape = {k: getattr(meta, k, None) for k in CHATML_META}
    if meta is None or shape != CHATML_META:
        raise ValueError(f"{paths.short(folder)}: ms-swift's template {template_type!r} is not chatml-shaped, and the "
                         "GGUF's chat template is written for those only — fix: use llama.cpp's convert_hf_to_gguf.py "
                         "and check its chat template against the training prompt")
    return chatml_jinja(meta.default_system)


def stored_chat_template(gguf_path: Path) -> str | None:
    """The chat template a GGUF file carries (tokenizer.chat_template), or None."""
    import gguf

    field = gguf.GGUFReader(gguf_path).fields.get("tokenizer.chat_template")
    return field.contents() if field is not None else None


# ---------------------------------------------------------------- the file


def _add_metadata(writer, folder: Path, config: dict, quant: str, vocab: dict) -> None:
    import gguf

    writer.add_name(folder.name)
    writer.add_type("model")
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16 if quant == "f16" else gguf.LlamaFileType.MOSTLY_Q8_0)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(config["num_attention_heads"])
    writer.add_head_count_kv(config.get("num_key_value_heads") or config["num_attention_heads"])
    writer.add_rope_dimension_count(_head_dim(config))
    writer.add_rope_freq_base(_rope_theta(config))
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    writer.add_vocab_size(config["vocab_size"])
    if _head_dim(config) != config["hidden_size"] // config["num_attention_heads"]:
        writer.add_key_length(_head_dim(config))
        writer.add_value_length(_head_dim(config))
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(vocab["pre"])
    writer.add_token_list(vocab["tokens"])
    writer.add_token_types(vocab["types"])
    writer.add_token_merges(vocab["merges"])
    for name, add in (("bos", writer.add_bos_token_id), ("eos", writer.add_eos_token_id),
                      ("unk", writer.add_unk_token_id), ("pad", writer.add_pad_token_id)):
        if vocab["ids"][name] is not None:
            add(vocab["ids"][name])
    writer.add_add_bos_token(vocab["add_bos"])
    writer.add_add_space_prefix(vocab["space_prefix"])
    writer.add_chat_template(vocab["chat_template"])


def _write(partial: Path, folder: Path, config: dict, quant: str, plan: list[Planned], vocab: dict) -> None:
    """Header, metadata and tensor table first, then each tensor converted and written one at a time, so
    memory holds one tensor, not the whole model."""
    import gguf
    import numpy as np
    from safetensors import safe_open

    writer = gguf.GGUFWriter(partial, config["model_type"])
    try:
        _add_metadata(writer, folder, config, quant, vocab)
        for t in plan:  # a float32 stand-in dtype: with raw_dtype given, the writer takes the shape as written
            dtype = np.float16 if t.qtype == gguf.GGMLQuantizationType.F16 else np.float32
            writer.add_tensor_info(t.name, t.shape, np.dtype(dtype), t.nbytes,
                                   raw_dtype=t.qtype if t.qtype == gguf.GGMLQuantizationType.Q8_0 else None)
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_ti_data_to_file()
        files = _source_shapes(folder)
        handles = {}
        try:
            for t in plan:
                file = files[t.source][0]
                if file not in handles:
                    handles[file] = safe_open(file, "pt")
                writer.write_tensor_data(tensor_data(t, handles[file], config))
        finally:
            handles.clear()
    finally:
        writer.close()


def is_complete_gguf(path: Path, tensors: int | None = None) -> bool:
    """A GGUF file that reads back whole: every tensor's data inside the file (and as many tensors as planned)."""
    import gguf

    try:
        reader = gguf.GGUFReader(path)
    except (OSError, ValueError, KeyError, IndexError):
        return False
    size = path.stat().st_size
    whole = all(t.data_offset + t.n_bytes <= size for t in reader.tensors)
    return whole and (tensors is None or len(reader.tensors) == tensors)


def _check_disk(out_dir: Path, needed: int) -> None:
    existing = next(p for p in (out_dir, *out_dir.parents) if p.exists())  # out_dir is made only once all is well
    free = free_bytes(existing)
    if free < needed:
        raise OSError(f"not enough disk for the GGUF file in {paths.short(out_dir)}: it needs about "
                      f"{needed / 2**30:.2f} GiB, {free / 2**30:.2f} GiB are free — fix: free some space, or pass "
                      "out_dir= a folder on a disk with room (or quant='q8_0', about half the size)")


def gguf_name(folder: Path, quant: str) -> str:
    return f"{folder.name}.{quant}.gguf"


def export_gguf(run_or_merged, quant: str = "f16", out_dir: str | os.PathLike | None = None, show: bool = True) -> Path:
    """One GGUF file of a merged model (and an Ollama Modelfile beside it) -> the .gguf path. Safe to run again.

    Takes a Run or a LoRA checkpoint (merged first, with `merge`) or a merged model folder. quant: "f16" (the
    weights as trained, to 3 significant digits) or "q8_0" (8-bit, about half the size). The file goes to
    `out_dir` (default: FOLDER-gguf/ beside the merged folder) under a temporary name, renamed when complete:
    an interrupted export leaves nothing half-written. An existing complete file is reused, never overwritten.
    """
    if quant not in QUANTS:
        raise ValueError(f"quant={quant!r} is not one of {QUANTS} — fix: pass quant='f16' or quant='q8_0'")
    folder = merged_folder(run_or_merged, show)
    config = read_config(folder)
    plan = plan_tensors(folder, config, quant)
    vocab = tokenizer_metadata(folder, config["vocab_size"])
    out = Path(out_dir) if out_dir else folder.parent / f"{folder.name}-gguf"
    final = out / gguf_name(folder, quant)
    rewrite = ""
    if final.exists():
        if not is_complete_gguf(final, len(plan)):
            raise FileExistsError(f"{paths.short(final)} exists but is not a complete GGUF of this model — fix: "
                                  "delete it (or pass another out_dir=), then export again")
        if final.stat().st_mtime < max(w.stat().st_mtime for w in _weight_files(folder)):
            raise FileExistsError(f"{paths.short(final)} is older than the model in {paths.short(folder)} (merged "
                                  "again since?) — fix: delete it, then export again")
        if stored_chat_template(final) == vocab["chat_template"]:
            modelfile = write_modelfile(final)
            if show:
                print(f"Already exported: {paths.short(final)} (reused; {modelfile.name} beside it).")
            return final
        # same weights, but the chat template of an export made before the file carried the training template:
        # written again (under a temporary name, then put in its place), never reused as it is
        rewrite = (f"{paths.short(final)} was exported with another chat template than the one the model was "
                   "trained with: writing it again")
    needed = sum(t.nbytes for t in plan) + (folder / "tokenizer.json").stat().st_size + 2**20
    _check_disk(out, needed)
    out.mkdir(parents=True, exist_ok=True)
    partial = out / f".{final.name}.partial"
    partial.unlink(missing_ok=True)  # left by an export that was killed outright
    if show:
        if rewrite:
            print(rewrite + ".")
        print(f"Writing {quant} GGUF of {paths.short(folder)} ({len(plan)} tensors, about {needed / 2**20:.0f} MiB) "
              f"-> {paths.short(final)}", flush=True)
    t0 = time.time()
    try:
        _write(partial, folder, config, quant, plan, vocab)
        os.replace(partial, final)
    except BaseException:  # KeyboardInterrupt included: no half-written file is left under any name
        partial.unlink(missing_ok=True)
        if show:
            print("Export stopped: nothing was written; the merged model is untouched.")
        raise
    modelfile = write_modelfile(final)
    if show:
        print(f"Done in {time.time() - t0:.0f} s: {final.stat().st_size / 2**20:.0f} MiB. Beside it, "
              f"{modelfile.name} for Ollama:\n  cd {paths.short(out)} && ollama create my-model -f {modelfile.name}"
              f"\n  (llama.cpp: llama-cli -m {paths.short(final)} --jinja -cnv)")
    return final


# ---------------------------------------------------------------- Ollama

# chatml in Ollama's Go-template syntax; a system block only when there is a system message, as ms-swift's
# chatml and qwen2_5 templates do for the course's rows (their system turn is empty)
OLLAMA_CHATML = """{{- if .System }}<|im_start|>system
{{ .System }}<|im_end|>
{{ end }}
{{- range $i, $_ := .Messages }}
{{- $last := eq (len (slice $.Messages $i)) 1 }}
{{- if eq .Role "user" }}<|im_start|>user
{{ .Content }}<|im_end|>
{{ else if eq .Role "assistant" }}<|im_start|>assistant
{{ .Content }}{{ if not $last }}<|im_end|>
{{ end }}
{{- end }}
{{- if and (ne .Role "assistant") $last }}<|im_start|>assistant
{{ end }}
{{- end }}"""
STOPS = ("<|im_end|>", "<|endoftext|>", "<|im_start|>")


def course_system_prompt() -> str:
    """The system message the course's rows carry (empty: training saw no system block)."""
    return data.turn(data.read_rows(TEN_QUESTIONS)[0], "system")


def modelfile_text(gguf_file: str, system: str = "") -> str:
    lines = [f"FROM ./{gguf_file}", "", f'TEMPLATE """{OLLAMA_CHATML}"""', ""]
    lines += [f'PARAMETER stop "{stop}"' for stop in STOPS]
    lines += ["# greedy, as the course's exams answer", "PARAMETER temperature 0"]
    if system:
        lines += ["", 'SYSTEM """' + system + '"""']
    else:
        lines += ["", "# No SYSTEM line: the course's training rows have an empty system turn, which chatml writes as",
                  "# no system block at all; a system prompt here would show the model prompts it never saw."]
    return "\n".join(lines) + "\n"


def modelfile_name(gguf_path: Path) -> str:
    """One Modelfile per GGUF file: NAME.f16.gguf gets NAME.f16.Modelfile, so two quantizations in one folder
    each keep theirs."""
    return Path(gguf_path).name.removesuffix(".gguf") + "." + MODELFILE


def write_modelfile(gguf_path: Path) -> Path:
    """Ollama's recipe for the GGUF file beside it, named after it (`modelfile_name`)."""
    path = gguf_path.parent / modelfile_name(gguf_path)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(modelfile_text(gguf_path.name, course_system_prompt()), encoding="utf-8")
    os.replace(tmp, path)
    return path


# ---------------------------------------------------------------- the check


def load_gguf_model(gguf_path: Path):
    """The GGUF's weights (and its config) in transformers' own GGUF loader, dequantized to float32."""
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    gguf_path = Path(gguf_path)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    # its loader draws a tqdm bar of its own that transformers' switch does not reach: a bar in a notebook's saved
    # output says nothing to a learner
    import transformers.modeling_gguf_pytorch_utils as gguf_utils

    bar = gguf_utils.tqdm
    gguf_utils.tqdm = functools.partial(bar, disable=True)
    try:
        lm = AutoModelForCausalLM.from_pretrained(gguf_path.parent, gguf_file=gguf_path.name, dtype=torch.float32)
    finally:
        gguf_utils.tqdm = bar
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()
    return lm.to(inference.device()).eval()


def question_rows(questions) -> list[dict]:
    if questions is None:
        return data.read_rows(TEN_QUESTIONS)
    if isinstance(questions, (str, os.PathLike)):
        return data.read_rows(questions)
    return list(questions)


def check_gguf(gguf_path, merged_folder, questions=None, max_new_tokens: int = 64) -> dict:
    """Greedy answers of the GGUF file and of the merged folder to the same questions (default: the lesson's ten).

    Only the weights come from the GGUF: both models are prompted and decoded with the folder's tokenizer and
    ms-swift's template. transformers' GGUF tokenizer does not know llama.cpp's "smollm" pre-tokenizer and
    would split some text differently, which would test transformers' tokenizer, not our file.
    -> {"identical", "same_number", "total", "max_new_tokens", "answers": [{"question", "folder", "gguf"}]}
    """
    rows = question_rows(questions)
    folder = inference.load(Path(merged_folder), dtype=_float32())
    from_file = inference.Loaded(load_gguf_model(Path(gguf_path)), folder.tokenizer, folder.template,
                                 Path(gguf_path).name, folder.home)
    prompts = [inference.encode_prompt(folder.template, row) for row in rows]
    tool = inference.uses_calculator(Path(merged_folder))
    with inference.threads(None):
        ours, theirs = (inference.generate(m, prompts, max_new_tokens, tool=tool) for m in (folder, from_file))
    answers = [{"question": data.question_of(row), "folder": a, "gguf": b} for row, a, b in zip(rows, ours, theirs)]
    return {"identical": sum(a == b for a, b in zip(ours, theirs)),
            "same_number": sum(scoring.last_number(a) == scoring.last_number(b) for a, b in zip(ours, theirs)),
            "total": len(rows), "max_new_tokens": max_new_tokens, "answers": answers}


def _float32():
    import torch

    return torch.float32  # the GGUF loader dequantizes to float32: compare like with like, on a GPU too
