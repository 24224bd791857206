"""Read and check the course's chat-format JSONL files.

A row looks like
    {"messages": [{"role": "system", "content": ""},
                  {"role": "user", "content": "#Output#\\n...\\n#Math Problem#\\n<question>"},
                  {"role": "assistant", "content": "<solution>\\n\\n{{ans:N}}"}]}
`validate_file` reports each problem as `FILE:LINE: reason — fix`, the way compilers do.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from . import models, paths

# The prompt format, written here once: the generator writes rows with it, the exam and "ask your model"
# build prompts with it, and question_of reads it back. No example number: a model that copied one
# would score whenever it happened to be an answer.
INSTRUCTION = "Reason step by step, then give the final number in the form {{ans:number}}."
QUESTION_MARK = "#Math Problem#\n"
ANS_RE = re.compile(r"\{\{\s*ans\s*:(.*?)\}\}", re.DOTALL)


def to_row(question: str, solution: str) -> dict:
    """A chat row in the course's format: empty system turn, the instruction and the question, the solution."""
    user = f"#Output#\n{INSTRUCTION}\n{QUESTION_MARK}{question}"
    return {"messages": [{"role": "system", "content": ""}, {"role": "user", "content": user},
                         {"role": "assistant", "content": solution}]}


def prompt_row(question: str) -> dict:
    """The row the exam would build for `question`: the system turn and the user message, no answer."""
    row = to_row(question.strip(), "")
    row["messages"] = row["messages"][:2]
    return row


def read_rows(path: str | Path) -> list[dict]:
    """All rows of a JSONL file (blank lines skipped). Raises on bad JSON: call `validate_file` first."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def turn(row: dict, role: str) -> str:
    """The content of the first message with this role ('' when there is none)."""
    return next((m.get("content") or "" for m in row["messages"] if m.get("role") == role), "")


def question_of(row: dict) -> str:
    """The problem text: what follows `#Math Problem#` in the user turn, else the whole user turn."""
    user = turn(row, "user")
    return user.split(QUESTION_MARK, 1)[1].strip() if QUESTION_MARK in user else user.strip()


def expected_answer(row: dict) -> str:
    """N from the last `{{ans:N}}` of the assistant turn ('' when there is none)."""
    tags = ANS_RE.findall(turn(row, "assistant"))
    return tags[-1].strip() if tags else ""


def _row_problem(row) -> str | None:
    """Why a parsed row is not a valid training row, or None when it is."""
    if not isinstance(row, dict) or not isinstance(row.get("messages"), list):
        return 'not an object with a "messages" list — fix: write {"messages": [{"role": ..., "content": ...}, ...]}'
    msgs = row["messages"]
    if not all(isinstance(m, dict) for m in msgs):
        return 'a message is not an object — fix: each message needs "role" and "content"'
    roles = [m.get("role") for m in msgs]
    if roles not in (["system", "user", "assistant"], ["user", "assistant"]):
        return (f"roles are {roles} — fix: use an optional system turn, then one user turn, then one "
                f"assistant turn, in that order")
    for m in msgs:
        content = m.get("content")
        if m["role"] != "system" and content is not None and not isinstance(content, str):
            return (f"{m['role']} content is {type(content).__name__} {json.dumps(content)}, not text — fix: write it "
                    f"as a string, e.g. \"{content}\"")
        if m["role"] != "system" and not (isinstance(content, str) and content.strip()):
            return f"empty {m['role']} content — fix: write the {m['role']} text"
    if not ANS_RE.search(msgs[-1]["content"]):
        return "no {{ans:...}} tag in the assistant answer — fix: end the answer with {{ans:N}}"
    return None


def validate_file(path: str | Path) -> list[str]:
    """Problems found in one JSONL file, as `FILE:LINE: reason — fix`; empty list when the file is fine."""
    name = str(path)
    p = Path(path)
    if not p.is_file():
        return [f"{name}:0: file not found — fix: check the path (it is relative to {Path.cwd()})"]
    try:
        text = p.read_bytes().decode("utf-8")
    except UnicodeDecodeError as e:
        line = p.read_bytes()[: e.start].count(b"\n") + 1
        return [f"{name}:{line}: not UTF-8 text — fix: save the file as UTF-8"]
    problems: list[str] = []
    first_seen: dict[str, int] = {}
    rows = 0
    for no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        rows += 1
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            problems.append(f"{name}:{no}: bad JSON ({e.msg}, column {e.colno}) — fix: one JSON object per line")
            continue
        reason = _row_problem(row)
        if reason:
            problems.append(f"{name}:{no}: {reason}")
            continue
        q = question_of(row)
        if q in first_seen:
            problems.append(f"{name}:{no}: duplicate question (first on line {first_seen[q]}) — fix: remove one")
        else:
            first_seen[q] = no
    if rows == 0:
        problems.append(f"{name}:1: empty file — fix: add at least one row")
    return problems


def validate_files(paths) -> list[str]:
    return [problem for path in paths for problem in validate_file(path)]


def count_too_long(path: str | Path, tokenizer, max_length: int) -> int:
    """How many rows are longer than `max_length` tokens once the chat template is applied.

    ms-swift's default `--truncation_strategy delete` drops such rows silently; this counts them first.
    `tokenizer` may be a model folder (fast: see token_lengths), a Hugging Face tokenizer, or an ms-swift template (exactly what
    training sees; `helpers.exams.swift_template(model)` builds one). With a tokenizer, an empty system turn
    is kept as an empty block, so the count can only err on the long side by a few tokens.
    """
    rows = read_rows(path)
    if hasattr(tokenizer, "template_meta"):  # an ms-swift Template
        return sum(len(tokenizer.encode({"messages": r["messages"]})["input_ids"]) > max_length for r in rows)
    if isinstance(tokenizer, (str, Path)):
        return sum(n > max_length for n in token_lengths(tokenizer, rows))
    too_long = 0
    for row in rows:
        ids = tokenizer.apply_chat_template(row["messages"], tokenize=True)
        too_long += len(ids["input_ids"] if hasattr(ids, "keys") else ids) > max_length
    return too_long


def token_lengths(model_dir: str | Path, rows: list[dict]) -> list[int]:
    """Chat-template token counts using only `tokenizers` and jinja2 (no transformers/torch import: ~0.1 s).

    Renders the model's own chat template from tokenizer_config.json, as transformers does.
    """
    import jinja2.sandbox
    from tokenizers import Tokenizer

    model_dir = Path(model_dir)
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    cfg = json.loads((model_dir / "tokenizer_config.json").read_text(encoding="utf-8"))
    source = models.chat_template(model_dir)

    def _raise(message):
        raise jinja2.exceptions.TemplateError(message)

    env = jinja2.sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = _raise
    template = env.from_string(source)
    special = {k: cfg.get(k) for k in ("bos_token", "eos_token")}
    special = {k: (v.get("content") if isinstance(v, dict) else v) or "" for k, v in special.items()}
    texts = [template.render(messages=r["messages"], add_generation_prompt=False, **special) for r in rows]
    return [len(e.ids) for e in tok.encode_batch(texts, add_special_tokens=False)]


def resolve_dataset(dataset) -> Path:
    """'train_100' -> resources/2_7/train_100.jsonl; a path is taken as given. Must exist."""
    p = Path(dataset)
    if not p.suffix and not p.exists():
        p = paths.DATA_DIR / f"{dataset}.jsonl"
    if not p.is_file():
        raise FileNotFoundError(f"{dataset}: no such dataset file. Fix: pass a .jsonl path or one of "
                                f"{sorted(x.stem for x in paths.DATA_DIR.glob('*.jsonl'))}.")
    if "#" in p.name:
        raise ValueError(f"{p}: ms-swift reads '#N' in a dataset name as 'sample N rows'. Fix: rename the file.")
    return p


def first_rows(path: Path | None, rows: int | None) -> list[str]:
    """The dataset lines a run will use: all of them, or the first `rows` (the cpu and ci tracks)."""
    if path is None:
        return []
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if rows and rows > len(lines):
        raise ValueError(f"{paths.short(path)} has {len(lines)} rows, fewer than the {rows} asked for.")
    return lines[:rows] if rows else lines


def write_subset(path: Path, rows: int | None, lines: list[str], folder: Path) -> Path:
    """The first `rows` lines as a file in `folder` (a run's own copy of its data); the file itself when all rows."""
    if not rows:
        return path
    out = Path(folder) / "data" / f"{path.stem}_first{rows}.jsonl"
    out.parent.mkdir(exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out
