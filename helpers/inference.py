"""Load a model (or base + LoRA adapter) and answer prompts greedily, the way training saw them.

The one loader: the exam, the merge check and "ask your model" all load, prompt and generate through
here. Prompts are encoded by ms-swift's own template, so the model sees at exam time exactly what it saw
in training (for chatml an empty system turn means *no* system block, unlike the tokenizer's own chat
template, which would insert SmolLM's default system prompt).
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil

from . import calculator, models, paths
from .history import checkpoint_to_use, is_run
from .swift_runner import swift_template  # the template `swift sft` trains with (used here and by the tests)


@dataclass
class Loaded:
    lm: object
    tokenizer: object
    template: object
    label: str
    home: Path  # default folder for results


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def resolve(model_or_run) -> tuple[Path, str | None, str | None, Path | None, Path, str]:
    """(base model dir, model_type, template, adapter dir or None, results folder, label)."""
    if isinstance(model_or_run, models.Model):
        home = paths.OUTPUT_DIR / "exams" / model_or_run.name
        return Path(model_or_run.path), model_or_run.model_type, model_or_run.template, None, home, model_or_run.name
    if is_run(model_or_run):
        ckpt = checkpoint_to_use(model_or_run)
        if not ckpt:
            raise ValueError("this run has no checkpoint yet — fix: train it to the end (or pick another run)")
        return resolve(Path(ckpt))
    folder = Path(model_or_run)
    if (folder / "adapter_config.json").is_file():
        args = _read_json(folder / "args.json") or _read_json(folder.parent / "args.json")
        base = args.get("model") or _read_json(folder / "adapter_config.json").get("base_model_name_or_path")
        if base and not Path(base).is_absolute():  # swift records the path as given, from the course folder
            base = str(paths.COURSE_ROOT / base)
        if not base or not Path(base).is_dir():
            raise ValueError(f"cannot find the base model of adapter {folder} (got {base!r}) — fix: keep the base "
                             f"model folder where it was during training")
        label = f"{folder.parent.name}/{folder.name}"
        return Path(base), args.get("model_type"), args.get("template"), folder, folder, label
    if (folder / "config.json").is_file():
        args = _read_json(folder / "args.json")
        if not args.get("model_type"):  # a plain model folder: read its type and template from its own files
            m = models.local_model(folder)
            return folder, m.model_type, m.template, None, paths.OUTPUT_DIR / "exams" / m.name, m.name
        return folder, args.get("model_type"), args.get("template"), None, folder, folder.name
    raise ValueError(f"{folder} is neither a model folder (config.json) nor a LoRA checkpoint "
                     f"(adapter_config.json) — fix: pass a Model, a Run, or one of those folders")


def uses_calculator(model_or_run) -> bool:
    """Was this model trained on the calculator data (swift's args.json names a *_calc file), so that its
    answers call the calculator? False for a base model."""
    try:
        resolved = resolve(model_or_run)
    except (ValueError, TypeError, OSError):  # not a model this course can load: it calls no calculator
        return False
    folder = resolved[3] or resolved[0]
    args = _read_json(folder / "args.json") or _read_json(folder.parent / "args.json")
    return any(calculator.SUFFIX in Path(d).stem for d in args.get("dataset") or [])


def base_of(model_or_run) -> Path:
    """The base model folder of a Model, a Run, a model folder or a LoRA checkpoint."""
    return resolve(model_or_run)[0]


def device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load(model_or_run, dtype=None) -> Loaded:
    """Model (+ adapter), tokenizer and swift template. dtype: bf16 on a GPU, fp32 on a CPU unless given."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    base, model_type, template_type, adapter, home, label = resolve(model_or_run)
    where = device()
    dtype = dtype or (torch.bfloat16 if where == "cuda" else torch.float32)
    # a loading bar per model and swift's deprecation notices say nothing to a learner: keep them out of the notebook
    hf_logging.disable_progress_bar()
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        lm = AutoModelForCausalLM.from_pretrained(base, dtype=dtype)
        if adapter is not None:
            from peft import PeftModel

            lm = PeftModel.from_pretrained(lm, adapter)
        lm.to(where).eval()
        tokenizer = AutoTokenizer.from_pretrained(base)
        template = swift_template(base, model_type, template_type)
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()
    return Loaded(lm, tokenizer, template, label, home)


def encode_prompt(template, row: dict) -> list[int]:
    """Token ids of the question exactly as swift builds them: every turn except the assistant's answer."""
    msgs = [m for m in row["messages"] if m["role"] != "assistant"]
    return list(template.encode({"messages": msgs})["input_ids"])


def stop_ids(loaded: Loaded) -> list[int]:
    """The token ids that end an answer: the model's end-of-sequence ids and its chat template's turn end."""
    ids = set()
    for source in (loaded.lm.generation_config.eos_token_id, loaded.tokenizer.eos_token_id):
        ids.update(source if isinstance(source, list) else [source] if source is not None else [])
    for word in getattr(loaded.template.template_meta, "suffix", []) or []:
        if isinstance(word, str):
            tok = loaded.tokenizer.convert_tokens_to_ids(word)
            if isinstance(tok, int) and tok != loaded.tokenizer.unk_token_id:
                ids.add(tok)
    return sorted(ids)


def generate(loaded: Loaded, prompts: list[list[int]], max_new_tokens: int, tool: bool = False) -> list[str]:
    """Greedy answers for same-batch prompts, padded on the left so every answer starts at one column."""
    return [text for text, _ in generate_ends(loaded, prompts, max_new_tokens, tool=tool)]


def sample(loaded: Loaded, prompts: list[list[int]], n: int, max_new_tokens: int, temperature: float = 1.0) -> list[list[str]]:
    """`n` sampled answers per prompt (at `temperature`, no top-k or top-p cut, as GRPO samples): how often a model
    gets a question right when it does not answer greedily."""
    rows = _generate_rows(loaded, prompts, max_new_tokens, samples=n, temperature=temperature)
    texts = [loaded.tokenizer.decode(new, skip_special_tokens=True).strip() for new, _ in rows]
    return [texts[k * n:(k + 1) * n] for k in range(len(prompts))]


def _generate_rows(loaded: Loaded, prompts: list[list[int]], max_new_tokens: int, stop_strings=None,
                   samples: int = 0, temperature: float = 1.0):
    """One batched greedy `generate`: per prompt, its new token ids and whether it ended by itself (an end
    token, or one of `stop_strings`) rather than by running out of tokens. samples=N: N sampled answers per prompt
    instead (at `temperature`), the prompt's N rows one after another."""
    import torch

    stop = stop_ids(loaded)
    pad = loaded.tokenizer.pad_token_id
    pad = pad if pad is not None else stop[0]
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    device = next(loaded.lm.parameters()).device
    extra = {"stop_strings": list(stop_strings), "tokenizer": loaded.tokenizer} if stop_strings else {}
    how = (dict(do_sample=True, temperature=temperature, top_p=1.0, top_k=0, num_return_sequences=samples) if samples
           else dict(do_sample=False, temperature=None, top_p=None, top_k=None))
    with torch.inference_mode():
        out = loaded.lm.generate(input_ids=ids.to(device), attention_mask=mask.to(device),
                                 max_new_tokens=max_new_tokens, pad_token_id=pad, eos_token_id=stop, **how, **extra)
    stops = set(stop)
    rows = []
    for row in out:
        new = row[width:].tolist()
        end = next((i for i, t in enumerate(new) if t in stops), None)
        if end is not None:
            new = new[:end]
        while new and new[-1] == pad:  # a row stopped by a stop string is padded to the batch's longest
            new.pop()
        rows.append((new, end is not None or len(new) < max_new_tokens))
    return rows


def generate_ends(loaded: Loaded, prompts: list[list[int]], max_new_tokens: int, tool: bool = False,
                  begun: list[str] | None = None) -> list[tuple[str, bool]]:
    """(answer, cut) per prompt: `cut` when the answer used every allowed token without ending by itself.

    tool=True: the calculator answers the model's calls (helpers/calculator.py). Each batch is generated until
    every answer has ended or just closed a call (`>>`); each closed call gets its result written after it (a
    malformed one is left as it is), and the answers with a call go on, re-encoded as training saw them, until
    they end or spend `max_new_tokens` (the results count). Without the tool the model writes its own result.
    `begun` (with the tool): answers already begun, which the model continues (they count in the budget).
    """
    if not tool:
        return [(loaded.tokenizer.decode(new, skip_special_tokens=True).strip(), not ended)
                for new, ended in _generate_rows(loaded, prompts, max_new_tokens)]
    tok = loaded.tokenizer
    texts, cut = list(begun or [""] * len(prompts)), [False] * len(prompts)
    active = list(range(len(prompts)))
    while active:
        left = {k: max_new_tokens - (len(tok.encode(texts[k], add_special_tokens=False)) if texts[k] else 0)
                for k in active}
        for k in active:
            cut[k] = left[k] <= 0
        active = [k for k in active if left[k] > 0]
        if not active:
            break
        rows = _generate_rows(loaded, [prompts[k] + tok.encode(texts[k], add_special_tokens=False) for k in active],
                              max(left.values()), stop_strings=[calculator.CLOSE])
        going = []
        for k, (new, ended) in zip(active, rows):
            ended = ended and len(new) <= left[k]  # a smaller budget than the batch's: same tokens, ending sooner
            text = texts[k] + tok.decode(new[:left[k]], skip_special_tokens=True)
            close = text.find(calculator.CLOSE, len(texts[k]))
            if close >= 0:  # the model has just closed a call: write its result (none if malformed) and go on
                text = text[:close + len(calculator.CLOSE)]
                texts[k] = text + (calculator.answer(text) or "")
                going.append(k)
            else:
                texts[k], cut[k] = text, not ended
        active = going
    return [(t.strip(), c) for t, c in zip(texts, cut)]


def cpu_threads(sample_s: float = 0.3) -> int:
    """Torch threads worth using now: the cores other processes are not busy on (at least 1).

    On a shared CPU, two OpenMP threads fighting other processes for two cores made generation about
    25x slower (45 s instead of 1.8 s for 32 tokens); one thread per idle core avoids that collapse.
    "Busy" is measured now, over `sample_s`, from the CPU time of every other process: the load average
    lags by a minute and still counts a training run that has just ended.
    """
    cores = os.cpu_count() or 1
    me = os.getpid()

    def others_cpu_seconds() -> float:
        total = 0.0
        for proc in psutil.process_iter(["pid", "cpu_times"]):
            times = proc.info["cpu_times"]
            if proc.info["pid"] != me and times is not None:
                total += times.user + times.system
        return total

    before, t0 = others_cpu_seconds(), time.time()
    time.sleep(sample_s)
    busy_cores = (others_cpu_seconds() - before) / max(time.time() - t0, 1e-3)
    return max(1, min(cores, cores - round(busy_cores)))


@contextmanager
def threads(n: int | None):
    import torch

    if device() != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n or cpu_threads())
    try:
        yield
    finally:
        torch.set_num_threads(before)
