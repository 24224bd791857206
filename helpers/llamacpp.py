"""llama.cpp itself reads the course's GGUF files: the program people run models with at home, not our reader.

llama.cpp comes prebuilt in the npm package node-llama-cpp (nothing is compiled): set-up installs it under
.cache/node-llama-cpp where Node.js 20 or newer is on the machine (`tools/install_llamacpp.sh`). Two ways to ask:

- "ids": the course's own prompt token ids (`inference.encode_prompt`), so llama.cpp reads exactly the prompt the
  merged model reads: any difference in the answers is the file's weights;
- "template": the conversation as a user's tool sends it, rendered by the chat template stored in the file and
  tokenized by llama.cpp (what `llama-cli --jinja`, `llama-server` and LM Studio do): a difference here that the
  first way does not show is the file's template or tokenizer.

Answers are greedy, end at the same stop tokens as `exam()`'s and are decoded with the model folder's tokenizer,
so they compare with the merged model's word for word and are scored by the exam's own strict rule.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from . import data, exams, inference, paths, scoring, view

VERSION = "3.22.1"  # node-llama-cpp, pinned: the llama.cpp build its prebuilt binaries carry
NODE_MIN = 20  # node-llama-cpp's own engines field
SIDE = Path(__file__).with_name("llamacpp_answer.mjs")
INSTALL = "bash tools/install_llamacpp.sh"


def install_dir() -> Path:
    return paths.CACHE_DIR / "node-llama-cpp"


def node_version(node: str | None = None) -> tuple[int, ...] | None:
    """Node.js's version as numbers, or None where there is no `node`."""
    node = node or shutil.which("node")
    if not node:
        return None
    try:
        out = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.match(r"v?(\d+)\.(\d+)\.(\d+)", out.strip())
    return tuple(int(n) for n in found.groups()) if found else None


def installed_version(folder: Path | None = None) -> str | None:
    package = (folder or install_dir()) / "node_modules" / "node-llama-cpp" / "package.json"
    try:
        return json.loads(package.read_text(encoding="utf-8")).get("version")
    except (OSError, ValueError):
        return None


def llamacpp_missing() -> str | None:
    """None when llama.cpp can run here, else one sentence: what is missing and what it would take."""
    version = node_version()
    if version is None:
        return (f"llama.cpp is not set up here: it runs through Node.js {NODE_MIN}+, and this machine has no `node` "
                f"— fix: install Node.js {NODE_MIN} or newer, then `{INSTALL}` (about 20 s)")
    if version[0] < NODE_MIN:
        return (f"llama.cpp is not set up here: node-llama-cpp needs Node.js {NODE_MIN}+, this machine has "
                f"{'.'.join(map(str, version))} — fix: install Node.js {NODE_MIN} or newer, then `{INSTALL}`")
    have = installed_version()
    if have != VERSION:
        what = f"version {have} is" if have else "nothing is"
        return (f"llama.cpp is not set up here: node-llama-cpp {VERSION} is expected in "
                f"{paths.short(install_dir())}, {what} there — fix: `{INSTALL}` (about 20 s)")
    return None


def cores() -> int:
    """The cores this process may use: llama.cpp's default thread count oversubscribes a small machine."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # macOS
        return max(1, os.cpu_count() or 1)


def run(gguf_file, items: list[dict], how: str, stops: list[int], max_new_tokens: int,
        threads: int | None = None, timeout: float = 900) -> dict:
    """llama.cpp's greedy answers to `items` (see llamacpp_answer.mjs) -> {"template", "answers": [{prompt, ids,
    ended}]}. Raises RuntimeError with the one sentence of `llamacpp_missing()` where llama.cpp cannot run."""
    if how not in ("ids", "template"):
        raise ValueError(f"how={how!r} — fix: 'ids' (the course's prompt ids) or 'template' (the file's template)")
    problem = llamacpp_missing()
    if problem:
        raise RuntimeError(problem)
    gguf_file = Path(gguf_file).resolve()
    if not gguf_file.is_file():
        raise FileNotFoundError(f"{paths.short(gguf_file)}: no such GGUF file — fix: `export_gguf()` it first")
    job = {"gguf": str(gguf_file), "threads": threads or cores(), "max_new_tokens": int(max_new_tokens),
           "stops": [int(s) for s in stops], "how": how, "items": items}
    with tempfile.TemporaryDirectory(prefix="ftlab-llamacpp-") as tmp:
        job_path, result_path = Path(tmp) / "job.json", Path(tmp) / "result.json"
        job_path.write_text(json.dumps(job), encoding="utf-8")
        out = subprocess.run([shutil.which("node") or "node", str(SIDE), str(install_dir()), str(job_path),
                              str(result_path)], capture_output=True, text=True, timeout=timeout)
        if out.returncode or not result_path.is_file():
            raise RuntimeError(f"llama.cpp could not answer from {paths.short(gguf_file)} (exit {out.returncode}):\n"
                               + (out.stderr or out.stdout)[-2000:])
        return json.loads(result_path.read_text(encoding="utf-8"))


def conversation(row: dict) -> list[dict]:
    """The messages a user's chat tool sends for a row: the question, and a system prompt only where the row has a
    real one (an empty system turn is what a chat without a system prompt looks like to the template; sent as an
    empty message, node-llama-cpp's wrapper would render it as a block, which llama-server does not)."""
    return [{"role": m["role"], "content": m["content"]} for m in row["messages"]
            if m["role"] != "assistant" and not (m["role"] == "system" and not m["content"])]


def answer(gguf_file, merged_folder, rows: list[dict], max_new_tokens: int, how: str = "template",
           loaded: inference.Loaded | None = None) -> dict:
    """llama.cpp's answers from `gguf_file`, decoded with the merged folder's tokenizer as `exam()` decodes.
    -> {"answers": [str], "cut": [bool], "prompt_ids": [[int]], "template", "seconds"}"""
    loaded = loaded or inference.load(Path(merged_folder))
    if how == "ids":
        items = [{"ids": inference.encode_prompt(loaded.template, row)} for row in rows]
    else:
        items = [{"messages": conversation(row)} for row in rows]
    start = time.time()
    result = run(gguf_file, items, how, inference.stop_ids(loaded), max_new_tokens)
    decode = loaded.tokenizer.decode
    return {"answers": [decode(a["ids"], skip_special_tokens=True).strip() for a in result["answers"]],
            "ids": [a["ids"] for a in result["answers"]],
            "cut": [not a["ended"] for a in result["answers"]], "prompt_ids": [a["prompt"] for a in result["answers"]],
            "template": result["template"], "seconds": time.time() - start}


def exam_with_llamacpp(gguf_file, merged_folder, dataset, max_new_tokens: int, limit: int | None = None,
                       how: str = "template") -> scoring.ExamResult:
    """An exam answered by llama.cpp from the GGUF file, scored by the course's own rules (`scoring`)."""
    dataset = Path(dataset)
    rows = data.read_rows(dataset)[:limit]
    got = answer(gguf_file, merged_folder, rows, max_new_tokens, how)
    return scoring.score_responses(rows, got["answers"], cut=got["cut"], model=f"llama.cpp: {Path(gguf_file).name}",
                                   dataset=paths.short(dataset), seconds=got["seconds"],
                                   settings={"max_new_tokens": max_new_tokens, "limit": limit, "how": how,
                                             "threads": cores(), "node-llama-cpp": VERSION})


def parting(loaded: inference.Loaded, prompt: list[int], theirs: list[int]) -> dict | None:
    """Where llama.cpp's greedy tokens `theirs` first part from what the merged model would choose after the same
    tokens (one forward pass over prompt + theirs), and the merged model's margin there: its best next token's
    logit minus that of llama.cpp's token. None when the model would have chosen every one of them."""
    import torch

    with torch.inference_mode(), inference.threads(None):
        logits = loaded.lm(torch.tensor([prompt + theirs], device=loaded.lm.device)).logits[0, len(prompt) - 1:-1]
    for position, (row, token) in enumerate(zip(logits, theirs)):
        best = int(row.argmax())
        if best != token:
            return {"token": position, "margin": float(row[best] - row[token]),
                    "ours": loaded.tokenizer.decode([best]), "theirs": loaded.tokenizer.decode([token])}
    return None


@dataclass
class LlamacppCheck:
    """llama.cpp's answers from a GGUF file beside the merged model's, asked both ways (see the module)."""

    file: str
    total: int
    max_new_tokens: int
    folder_strict: int
    ways: dict = field(default_factory=dict)  # "ids" / "template" -> identical, same_number, strict, prompts_equal, seconds
    answers: list = field(default_factory=list)  # {"question", "folder", "ids", "template"}

    def summary(self) -> str:
        ids, tpl = self.ways["ids"], self.ways["template"]
        text = (f"llama.cpp read {self.file}: {ids['identical']} of {self.total} answers identical to the merged "
                f"model's from the course's prompt ids, {tpl['identical']} of {self.total} from the file's own chat "
                f"template (its prompts equal the training prompt token for token: {tpl['prompts_equal']} of "
                f"{self.total}); strict score {tpl['strict']} of {self.total}, the merged model's {self.folder_strict}")
        partings = [p for p in tpl["partings"].values() if p]
        if partings:
            worst = max(p["margin"] for p in partings)
            text += (f". Where an answer parts from the merged model's, the merged model itself ranked its choice "
                     f"and llama.cpp's within {worst:.4f} logits of each other: a near tie that rounding the weights "
                     "to 16 bits can tip")
        return text

    __str__ = __repr__ = summary

    def _repr_markdown_(self) -> str:
        rows = [(a["question"][:90] + ("…" if len(a["question"]) > 90 else ""), a["folder"], a["template"],
                 "same" if a["template"] == a["folder"] else "differs") for a in self.answers]
        return self.summary() + "\n\n" + view.table(rows, ["question", "merged model (exam)",
                                                          "llama.cpp, the file's template", ""])


def check_llamacpp(gguf_file, merged_folder, questions=None, max_new_tokens: int = 64,
                   folder_answers: list[str] | None = None) -> LlamacppCheck:
    """llama.cpp's greedy answers from the file, both ways, beside the merged folder's (default: the lesson's ten).

    folder_answers: the merged model's answers to the same questions when already at hand (the responses of an
    `exam()` of the merged folder with the same max_new_tokens), else generated here.
    """
    from .gguf_export import question_rows

    rows = question_rows(questions)
    loaded = inference.load(Path(merged_folder))
    if folder_answers is None:
        with inference.threads(None):
            folder_answers = inference.generate(loaded, [inference.encode_prompt(loaded.template, r) for r in rows],
                                                max_new_tokens)
    if len(folder_answers) != len(rows):
        raise ValueError(f"{len(folder_answers)} folder answers for {len(rows)} questions — fix: one per question")
    expected = [data.expected_answer(r) for r in rows]
    ours = [inference.encode_prompt(loaded.template, r) for r in rows]
    check = LlamacppCheck(Path(gguf_file).name, len(rows), max_new_tokens,
                          sum(scoring.strict_correct(a, e) for a, e in zip(folder_answers, expected)))
    by_way = {}
    for how in ("ids", "template"):
        got = answer(gguf_file, merged_folder, rows, max_new_tokens, how, loaded=loaded)
        by_way[how] = got["answers"]
        differ = [k for k, (a, b) in enumerate(zip(folder_answers, got["answers"])) if a != b]
        check.ways[how] = {
            "identical": len(rows) - len(differ),
            "same_number": sum(scoring.last_number(a) == scoring.last_number(b)
                               for a, b in zip(folder_answers, got["answers"])),
            "strict": sum(scoring.strict_correct(a, e) for a, e in zip(got["answers"], expected)),
            "prompts_equal": sum(list(p) == q for p, q in zip(got["prompt_ids"], ours)),
            "seconds": got["seconds"],
            # where an answer parts from the merged model's: the merged model's own margin between its choice and
            # llama.cpp's there (a near tie that f16's rounding of the weights can flip), by question number
            "partings": {k: parting(loaded, ours[k], got["ids"][k]) for k in differ}}
    check.answers = [{"question": data.question_of(r), "folder": f, "ids": a, "template": b}
                     for r, f, a, b in zip(rows, folder_answers, by_way["ids"], by_way["template"])]
    return check


def paired_difference(ours: scoring.ExamResult, theirs: scoring.ExamResult) -> dict:
    """Two strict scores on the same questions, and the sampling error of their difference.

    Each question either agrees (both right, both wrong) or not; only the disagreements move the difference, so its
    standard error is sqrt(b + c - (b - c)^2 / n) / n (b: right only in `theirs`, c: right only in `ours`; McNemar's
    paired view). A difference inside about two standard errors is what re-drawing the questions could give.
    """
    if [i.question for i in ours.items] != [i.question for i in theirs.items]:
        raise ValueError("the two results are not from the same questions — fix: score both on the same rows")
    n = ours.n
    b = sum(t.strict and not o.strict for o, t in zip(ours.items, theirs.items))
    c = sum(o.strict and not t.strict for o, t in zip(ours.items, theirs.items))
    diff = (b - c) / n if n else 0.0
    se = math.sqrt(max(b + c - n * diff * diff, 0.0)) / n if n else 0.0
    return {"n": n, "ours": sum(i.strict for i in ours.items), "theirs": sum(i.strict for i in theirs.items),
            "only_theirs": b, "only_ours": c, "difference_points": 100 * diff, "standard_error_points": 100 * se}


def llamacpp_score_line(llama: scoring.ExamResult, model: scoring.ExamResult, model_name: str = "the merged model") -> str:
    """One sentence for a learner: llama.cpp's strict score beside the model's on the same questions (the first
    `llama.n` of `model`'s), the difference and the sampling error that explains it (`paired_difference`)."""
    d = paired_difference(exams.first_questions(model, llama.n), llama)
    return (f"llama.cpp: {d['theirs']} of {d['n']} right (strict), {model_name}: {d['ours']} of {d['n']} on the same "
            f"questions; difference {d['difference_points']:+.0f} points, one standard error ± "
            f"{d['standard_error_points']:.0f} ({d['only_theirs']} right only through llama.cpp, {d['only_ours']} only "
            f"in {model_name}; the rest agree)")
