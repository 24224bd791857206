"""Give a model the math exam: batched greedy answers, the lesson's seed score and a strict score.

    result = exam(model_or_run, "resources/2_7/test.jsonl")
    result            # per-question table in Jupyter
    result.summary()  # one line

Prompts are encoded by ms-swift's own template, so the model sees at exam time exactly what it saw
in training (for chatml an empty system turn means *no* system block, unlike the tokenizer's own chat
template, which would insert SmolLM's default system prompt).
"""

from __future__ import annotations

import html
import json
import os
import re
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from . import data, paths

ANS_RE = data.ANS_RE
MINUS = str.maketrans({"−": "-", "–": "-"})


# ---------------------------------------------------------------- scoring rules

def seed_score(response: str, expected) -> float:
    """The lesson's rule: 1 for the literal `{{ans:N}}`, 0.5 if N's text appears anywhere, else 0."""
    if f"{{{{ans:{expected}}}}}" in response:
        return 1.0
    return 0.5 if str(expected) in response else 0.0


def _number(text: str) -> Decimal | None:
    clean = re.sub(r"[\s,_]", "", text.translate(MINUS))
    try:
        return Decimal(clean)
    except InvalidOperation:
        return None


def strict_correct(response: str, expected) -> bool:
    """True only when the *last* `{{ans:X}}` tag holds a number equal to N (`1,200`, ` 60.0 ` tolerated)."""
    tags = ANS_RE.findall(response)
    if not tags:
        return False
    got, want = _number(tags[-1]), _number(str(expected))
    return got is not None and want is not None and got == want


def has_format(response: str) -> bool:
    """Does the answer end its reasoning the trained way: an `{{ans:X}}` tag holding a number?"""
    tags = ANS_RE.findall(response)
    return bool(tags) and _number(tags[-1]) is not None


# ---------------------------------------------------------------- results

@dataclass
class ExamItem:
    question: str
    expected: str
    response: str
    seed: float
    strict: bool
    format: bool


@dataclass
class ExamResult:
    items: list[ExamItem]
    model: str = ""
    dataset: str = ""
    seconds: float = 0.0
    settings: dict = field(default_factory=dict)
    path: str | None = None  # where it was saved

    @property
    def n(self) -> int:
        return len(self.items)

    @property
    def seed_score(self) -> int:
        return int(100 * sum(i.seed for i in self.items) / self.n) if self.items else 0

    @property
    def strict_score(self) -> int:
        return round(100 * sum(i.strict for i in self.items) / self.n) if self.items else 0

    @property
    def format_rate(self) -> int:
        return round(100 * sum(i.format for i in self.items) / self.n) if self.items else 0

    def summary(self) -> str:
        return (f"{self.model or 'model'} on {Path(self.dataset).name or 'exam'} ({self.n} questions): "
                f"seed score {self.seed_score}, strict score {self.strict_score}, "
                f"{{{{ans:}}}} format {self.format_rate}%, {self.seconds:.0f} s")

    def __str__(self) -> str:
        return self.summary()

    __repr__ = __str__  # the plain-text form of a notebook cell: one line, not every answer

    def to_json(self) -> dict:
        return {"model": self.model, "dataset": self.dataset, "seconds": round(self.seconds, 2),
                "settings": self.settings, "seed_score": self.seed_score, "strict_score": self.strict_score,
                "format_rate": self.format_rate, "n": self.n, "items": [asdict(i) for i in self.items]}

    @classmethod
    def from_json(cls, obj: dict) -> ExamResult:
        return cls([ExamItem(**i) for i in obj["items"]], obj.get("model", ""), obj.get("dataset", ""),
                   obj.get("seconds", 0.0), obj.get("settings", {}))

    @classmethod
    def load(cls, path: str | Path) -> ExamResult:
        result = cls.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
        result.path = str(path)
        return result

    def save(self, path: str | Path) -> Path:
        """Write JSON to `path`; an existing file is never overwritten (`-2`, `-3`... is appended)."""
        target = _free_path(Path(path))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(self.to_json(), ensure_ascii=False, indent=1), encoding="utf-8")
        self.path = str(target)
        return target

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td>{k}</td><td style='text-align:left'>{html.escape(i.question)}</td>"
            f"<td>{html.escape(i.expected)}</td><td style='text-align:left'>{_answer_html(i.response)}</td>"
            f"<td>{_verdict(i)}</td></tr>" for k, i in enumerate(self.items, 1))
        return (f"<p><b>{html.escape(self.summary())}</b></p><table><thead><tr><th>#</th><th>question</th>"
                f"<th>expected</th><th>model answer</th><th>verdict</th></tr></thead><tbody>{rows}</tbody></table>")


def _free_path(path: Path) -> Path:
    k = 2
    candidate = path
    while candidate.exists():
        candidate = path.with_name(f"{path.stem}-{k}{path.suffix}")
        k += 1
    return candidate


def _answer_html(response: str) -> str:
    """Escaped text (so `<` cannot break the page) with line breaks kept; `$...$` is left for MathJax."""
    text = html.escape(response)
    text = ANS_RE.sub(lambda m: f"<mark>{m.group(0)}</mark>", text)
    return f"<div style='white-space:pre-wrap;max-width:40em'>{text}</div>"


def _verdict(item: ExamItem) -> str:
    if item.strict:
        return "✅ correct"
    if item.seed == 1.0:
        return "🟡 tag found, but a later tag differs"
    if item.seed == 0.5:
        return "🟡 seed ½: number appears, strict ✗"
    return "❌ wrong"


def score_responses(rows: list[dict], responses: list[str], **meta) -> ExamResult:
    """Score answers given in data order against the rows' `{{ans:N}}`."""
    if len(rows) != len(responses):
        raise ValueError(f"{len(rows)} questions but {len(responses)} responses — fix: one response per row")
    items = []
    for row, resp in zip(rows, responses):
        want = data.expected_answer(row)
        items.append(ExamItem(data.question_of(row), want, resp, seed_score(resp, want),
                              strict_correct(resp, want), has_format(resp)))
    return ExamResult(items, **meta)


# ---------------------------------------------------------------- comparing and explaining

@dataclass
class Comparison:
    base: ExamResult
    tuned: ExamResult

    def rows(self) -> list[tuple[str, int, int]]:
        return [(metric, getattr(self.base, metric), getattr(self.tuned, metric))
                for metric in ("seed_score", "strict_score", "format_rate")]

    def __str__(self) -> str:
        lines = [f"{'':14}{'base':>8}{'fine-tuned':>12}"]
        lines += [f"{m:14}{b:>8}{t:>12}" for m, b, t in self.rows()]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<tr><td>{m.replace('_', ' ')}</td><td>{b}</td><td>{t}</td><td>{t - b:+d}</td></tr>"
                       for m, b, t in self.rows())
        per_q = "".join(
            f"<tr><td style='text-align:left'>{html.escape(b.question)}</td><td>{html.escape(b.expected)}</td>"
            f"<td>{_verdict(b)}</td><td>{_verdict(t)}</td></tr>"
            for b, t in zip(self.base.items, self.tuned.items))
        return (f"<table><thead><tr><th></th><th>base</th><th>fine-tuned</th><th>change</th></tr></thead>"
                f"<tbody>{head}</tbody></table><table><thead><tr><th>question</th><th>expected</th>"
                f"<th>base</th><th>fine-tuned</th></tr></thead><tbody>{per_q}</tbody></table>")


def compare(base: ExamResult, tuned: ExamResult) -> Comparison:
    """Base model vs fine-tuned model on the same exam: scores side by side and per-question verdicts."""
    if [i.question for i in base.items] != [i.question for i in tuned.items]:
        raise ValueError("the two results are not from the same questions — fix: exam both on the same file")
    return Comparison(base, tuned)


def _steps(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.strip().splitlines() if line.strip() and "{{ans:" not in line]


def _miss_kind(said: str, ref: str) -> str:
    """Why a step differs from the worked solution: same formula with another result, or another formula."""
    said_parts, ref_parts = [p.strip() for p in said.split("=")], [p.strip() for p in ref.split("=")]
    if len(said_parts) >= 3 and said_parts[:-1] == ref_parts[:-1]:
        return "arithmetic slip: the right formula, a wrong result"
    if said_parts[:1] == ref_parts[:1]:
        return "wrong formula for the right quantity"
    return "another method than the worked solution"


def misses(result: ExamResult, dataset) -> str:
    """Markdown table of the wrong answers: the first step where each departs from the worked solution, and why."""
    rows = data.read_rows(dataset)
    by_question = {data.question_of(r): r for r in rows}
    lines = ["| # | expected | the model's first wrong step | the worked solution's step | why |", "|---|---|---|---|---|"]
    for k, item in enumerate(result.items, 1):
        if item.strict:
            continue
        ref_row = by_question.get(item.question)
        ref = _steps(data._turn(ref_row, "assistant")) if ref_row else []
        said = _steps(item.response)
        if not item.format:
            lines.append(f"| {k} | {item.expected} | (no `{{{{ans:}}}}` tag) | | the answer format was not followed |")
            continue
        i = next((j for j, (a, b) in enumerate(zip(said, ref)) if a != b), min(len(said), len(ref)))
        mine = said[i] if i < len(said) else "(stopped early)"
        theirs = ref[i] if i < len(ref) else "(no more steps)"
        why = _miss_kind(mine, theirs) if i < len(said) and i < len(ref) else "a step too few or too many"
        lines.append(f"| {k} | {item.expected} | `{mine}` | `{theirs}` | {why} |")
    if len(lines) == 2:
        return "Every answer is right."
    return "\n".join(lines)


def _inside_bigger_number(response: str, expected: str) -> bool:
    numbers = [m.rstrip(".,") for m in re.findall(r"\d[\d,.]*", response)]  # "12." ends a sentence: it is 12
    return expected not in numbers and any(expected in m for m in numbers)


def over_credit_example(result: ExamResult | None = None) -> str:
    """Markdown explaining why the seed rule over-credits, with a real case from `result` when there is one."""
    real = [i for i in (result.items if result else []) if i.seed > 0 and not i.strict]
    inside = [i for i in real if _inside_bigger_number(i.response, i.expected)]
    pick = (inside or real or [None])[0]
    if pick is None:
        pick = ExamItem("Xiaoli reads 1/8 and then 1/5 of a 240-page book. How many pages in all?", "78",
                        "Day 1 is 240 ÷ 8 = 30 pages, day 2 is 240 ÷ 5 = 48 pages, "
                        "so she read 780 pages.", 0.5, False, False)
        label = "**Constructed example** (no over-credited answer occurred in this result):"
    else:
        label = "**Real example from this exam:**"
    why = ("the number appears only inside a larger number" if _inside_bigger_number(pick.response, pick.expected)
           else "the number appears somewhere, but not as the final tagged answer")
    return (f"{label}\n\n> {pick.question}\n\nExpected **{pick.expected}**. The model wrote:\n\n"
            f"> {pick.response.strip()[:400]}\n\nThe seed rule gives {pick.seed:g} point because `{pick.expected}` "
            f"is in the text — {why}. The strict rule reads only the last `{{{{ans:X}}}}` tag and gives 0.")


# ---------------------------------------------------------------- loading a model or a run

@dataclass
class _Loaded:
    lm: object
    tokenizer: object
    template: object
    label: str
    home: Path  # default folder for results


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def swift_template(model_dir: str | Path, model_type: str | None = None, template_type: str | None = None):
    """The ms-swift template that `swift sft` uses for this model, in inference mode (no hub look-ups)."""
    os.environ.setdefault("LOG_LEVEL", "ERROR")  # swift's import-time INFO/WARNING lines would clutter the notebook
    from swift.model import get_processor
    from swift.template import get_template

    processor = get_processor(str(model_dir), model_type=model_type, download_model=False)
    if template_type is None and "<|im_start|>" in (getattr(processor, "chat_template", None) or ""):
        try:
            return get_template(processor)
        except ValueError:  # llama-architecture chatml models are ambiguous for swift's auto-detection
            template_type = "chatml"
    return get_template(processor, template_type=template_type)


def _resolve(model_or_run) -> tuple[Path, str | None, str | None, Path | None, Path, str]:
    """(base model dir, model_type, template, adapter dir or None, results folder, label)."""
    from .models import Model

    if isinstance(model_or_run, Model):
        home = paths.OUTPUT_DIR / "exams" / model_or_run.name
        return Path(model_or_run.path), model_or_run.model_type, model_or_run.template, None, home, model_or_run.name
    if hasattr(model_or_run, "best_checkpoint"):
        ckpt = model_or_run.best_checkpoint or getattr(model_or_run, "last_checkpoint", None)
        if not ckpt:
            raise ValueError("this run has no checkpoint yet — fix: train it to the end (or pick another run)")
        return _resolve(Path(ckpt))
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
            from .models import local_model

            m = local_model(folder)
            return folder, m.model_type, m.template, None, paths.OUTPUT_DIR / "exams" / m.name, m.name
        return folder, args.get("model_type"), args.get("template"), None, folder, folder.name
    raise ValueError(f"{folder} is neither a model folder (config.json) nor a LoRA checkpoint "
                     f"(adapter_config.json) — fix: pass a Model, a Run, or one of those folders")


def _device():
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_for_exam(model_or_run, dtype=None) -> _Loaded:
    """Model (+ adapter), tokenizer and swift template. dtype: bf16 on a GPU, fp32 on a CPU unless given."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    base, model_type, template_type, adapter, home, label = _resolve(model_or_run)
    device = _device()
    dtype = dtype or (torch.bfloat16 if device == "cuda" else torch.float32)
    # a loading bar per model and swift's deprecation notices say nothing to a learner: keep them out of the notebook
    hf_logging.disable_progress_bar()
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        lm = AutoModelForCausalLM.from_pretrained(base, dtype=dtype)
        if adapter is not None:
            from peft import PeftModel

            lm = PeftModel.from_pretrained(lm, adapter)
        lm.to(device).eval()
        tokenizer = AutoTokenizer.from_pretrained(base)
        template = swift_template(base, model_type, template_type)
    finally:
        hf_logging.set_verbosity(verbosity)
        hf_logging.enable_progress_bar()
    return _Loaded(lm, tokenizer, template, label, home)


def encode_prompt(template, row: dict) -> list[int]:
    """Token ids of the question exactly as swift builds them: every turn except the assistant's answer."""
    msgs = [m for m in row["messages"] if m["role"] != "assistant"]
    return list(template.encode({"messages": msgs})["input_ids"])


def _stop_ids(loaded: _Loaded) -> list[int]:
    ids = set()
    for source in (loaded.lm.generation_config.eos_token_id, loaded.tokenizer.eos_token_id):
        ids.update(source if isinstance(source, list) else [source] if source is not None else [])
    for word in getattr(loaded.template.template_meta, "suffix", []) or []:
        if isinstance(word, str):
            tok = loaded.tokenizer.convert_tokens_to_ids(word)
            if isinstance(tok, int) and tok != loaded.tokenizer.unk_token_id:
                ids.add(tok)
    return sorted(ids)


# ---------------------------------------------------------------- generation

def _generate(loaded: _Loaded, prompts: list[list[int]], max_new_tokens: int) -> list[str]:
    """Greedy answers for same-batch prompts, padded on the left so every answer starts at one column."""
    import torch

    pad = loaded.tokenizer.pad_token_id
    pad = pad if pad is not None else _stop_ids(loaded)[0]
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    device = next(loaded.lm.parameters()).device
    with torch.inference_mode():
        out = loaded.lm.generate(input_ids=ids.to(device), attention_mask=mask.to(device), do_sample=False,
                                 max_new_tokens=max_new_tokens, pad_token_id=pad, eos_token_id=_stop_ids(loaded),
                                 temperature=None, top_p=None, top_k=None)
    return [loaded.tokenizer.decode(row[width:], skip_special_tokens=True).strip() for row in out]


def cpu_threads(sample_s: float = 0.3) -> int:
    """Torch threads worth using now: the cores other processes are not busy on (at least 1).

    On a shared CPU, two OpenMP threads fighting other processes for two cores made generation about
    25x slower (45 s instead of 1.8 s for 32 tokens); one thread per idle core avoids that collapse.
    "Busy" is measured now, over `sample_s`, from the CPU time of every other process: the load average
    lags by a minute and still counts a training run that has just ended.
    """
    import os

    import psutil

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
def _threads(n: int | None):
    import torch

    if _device() != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n or cpu_threads())
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _default_file(home: Path, dataset: Path) -> Path:
    return home / f"exam-{dataset.stem}.json"


def _rows_for(dataset, limit):
    problems = data.validate_file(dataset)
    if problems:
        raise ValueError(f"{dataset} is not a valid exam file:\n" + "\n".join(problems))
    return data.read_rows(dataset)[:limit]


def exam(model_or_run, dataset, batch_size: int = 32, max_new_tokens: int = 256, save_to=None,
         limit: int | None = None, progress: bool = True, loaded: _Loaded | None = None,
         threads: int | None = None) -> ExamResult:
    """Answer every question greedily in batches and score them.

    model_or_run: a `Model`, a model folder, a LoRA checkpoint folder, or a Run (its best checkpoint).
    save_to: JSON path; None saves next to the checkpoint (base models: output/exams/<name>/); False skips.
    threads: CPU threads for generation; None picks the idle cores (see `cpu_threads`).
    """
    from .curves import Progress

    dataset = Path(dataset)
    rows = _rows_for(dataset, limit)
    loaded = loaded or load_for_exam(model_or_run)
    prompts = [encode_prompt(loaded.template, r) for r in rows]
    order = sorted(range(len(rows)), key=lambda k: len(prompts[k]))  # similar lengths share a batch
    responses: list[str] = [""] * len(rows)
    start = time.time()
    bar = Progress(f"exam {dataset.stem}", total=len(rows), unit="q", disable=not progress)
    with _threads(threads):
        for b in range(0, len(order), batch_size):
            chunk = order[b:b + batch_size]
            for k, text in zip(chunk, _generate(loaded, [prompts[k] for k in chunk], max_new_tokens)):
                responses[k] = text
            bar.update(b + len(chunk))
    bar.close()
    result = score_responses(rows, responses, model=loaded.label, dataset=paths.short(dataset),
                             seconds=time.time() - start,
                             settings={"batch_size": batch_size, "max_new_tokens": max_new_tokens,
                                       "device": _device(), "limit": limit, "threads": threads or "auto"})
    if save_to is not False:
        result.save(Path(save_to) if save_to else _default_file(loaded.home, dataset))
    return result


def lesson_loop_exam(model_or_run, dataset, max_new_tokens: int = 256, limit: int | None = None,
                     loaded: _Loaded | None = None, threads: int | None = None) -> ExamResult:
    """The lesson's way: one `generate` call per question (batch 1). Kept only for the benchmark."""
    dataset = Path(dataset)
    rows = _rows_for(dataset, limit)
    loaded = loaded or load_for_exam(model_or_run)
    start = time.time()
    with _threads(threads):
        responses = [_generate(loaded, [encode_prompt(loaded.template, r)], max_new_tokens)[0] for r in rows]
    return score_responses(rows, responses, model=loaded.label, dataset=paths.short(dataset), seconds=time.time() - start,
                           settings={"batch_size": 1, "max_new_tokens": max_new_tokens, "limit": limit})
