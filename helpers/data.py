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
from dataclasses import dataclass, field
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
    """All rows of a JSONL file (blank lines and a byte-order mark skipped). Raises on bad JSON: call
    `validate_file` first."""
    with open(path, encoding="utf-8-sig") as f:
        return [json.loads(line) for line in f if line.strip()]


def turn(row: dict, role: str) -> str:
    """The content of the first message with this role ('' when there is none)."""
    return next((m.get("content") or "" for m in row["messages"] if m.get("role") == role), "")


def question_of(row: dict) -> str:
    """The problem text: what follows `#Math Problem#` in the user turn, else the whole user turn."""
    user = turn(row, "user")
    return user.split(QUESTION_MARK, 1)[1].strip() if QUESTION_MARK in user else user.strip()


def wording(question: str) -> str:
    """A question with its numbers masked ("A field of 18 m …" → "A field of # m …"): two questions with the same
    wording are the same exercise with other numbers."""
    return re.sub(r"\d+(?:[.,/]\d+)*", "#", " ".join(question.split()))


def tagged_answer(text: str) -> str | None:
    """The text inside the last `{{ans:...}}` tag (the one the strict rule reads), or None: the one tag reader,
    for the answers in the data and the model's alike."""
    tags = ANS_RE.findall(text)
    return tags[-1].strip() if tags else None


def expected_answer(row: dict) -> str:
    """N from the last `{{ans:N}}` of the assistant turn ('' when there is none)."""
    return tagged_answer(turn(row, "assistant")) or ""


# Top-level keys that ms-swift reads itself (its RowPreprocessor.standard_keys and the system-prompt columns):
# an extra key with one of these names would change what is trained, so validate refuses it.
SWIFT_KEYS = frozenset({"system", "system_prompt", "conversation", "conversations", "images", "videos", "audios",
                        "tools", "objects", "label", "channel", "margin", "rejected_response", "teacher_prompt",
                        "teacher_images", "chat_template_kwargs", "ref_audios", "audio_codes"}
                       | {f"{prefix}_{k}" for prefix in ("rejected", "positive", "negative")
                          for k in ("messages", "images", "videos", "audios", "tools", "objects")})


def _row_problem(row) -> str | None:
    """Why a parsed row is not a valid training row, or None when it is (what ms-swift 4.6 trains, see
    tests/edge_files: it drops a row with a null or non-text content without a word)."""
    if not isinstance(row, dict) or not isinstance(row.get("messages"), list):
        return 'not an object with a "messages" list — fix: write {"messages": [{"role": ..., "content": ...}, ...]}'
    clash = sorted(SWIFT_KEYS & set(row))
    if clash:
        return (f'extra key "{clash[0]}" is one ms-swift reads itself (it would change what is trained) — fix: '
                f'remove it or rename it, e.g. "note_{clash[0]}"')
    msgs = row["messages"]
    if not msgs or not all(isinstance(m, dict) for m in msgs):
        return 'a message is not an object — fix: each message needs "role" and "content"'
    roles = [m.get("role") for m in msgs]
    talk = roles[1:] if roles[0] == "system" else roles
    if not talk or len(talk) % 2 or talk != ["user", "assistant"] * (len(talk) // 2):
        return (f"roles are {roles} — fix: an optional system turn, then user and assistant turns taking turns, "
                f"ending with the assistant")
    for m in msgs:
        content = m.get("content")
        if content is None:
            hint = 'write "" for an empty system turn, or leave the system turn out' if m["role"] == "system" \
                else f"write the {m['role']} text"
            return f"{m['role']} content is missing or null (ms-swift would drop this row without a word) — fix: {hint}"
        if not isinstance(content, str):
            text = f"{content}\n\n{{{{ans:{content}}}}}" if m is msgs[-1] else str(content)  # an answer keeps its tag
            return (f"{m['role']} content is {type(content).__name__} {json.dumps(content)}, not text (ms-swift would "
                    f"drop this row without a word) — fix: write it as a string: \"content\": "
                    f"{json.dumps(text, ensure_ascii=False)}")
        if m["role"] != "system" and not content.strip():
            return f"empty {m['role']} content — fix: write the {m['role']} text"
    if not ANS_RE.search(msgs[-1]["content"]):
        return "no {{ans:...}} tag in the assistant answer — fix: end the answer with {{ans:N}}"
    return None


@dataclass
class FileCheck:
    """One data file read the way ms-swift reads it: its rows with their line numbers, what is wrong with it,
    and the harmless differences (`repairs`) a run's own copy of the data leaves out."""

    path: Path
    rows: list = field(default_factory=list)  # (line number, row)
    errors: list = field(default_factory=list)  # FILE:LINE: reason — fix: ...
    repairs: list = field(default_factory=list)  # e.g. "a byte-order mark"

    def first(self, rows: int | None = None) -> list:
        """The (line, row) pairs a run uses: all of them, or the first `rows` (the cpu and ci tracks)."""
        if rows and rows > len(self.rows):
            raise ValueError(f"{paths.short(self.path)} has {len(self.rows)} rows, fewer than the {rows} asked for.")
        return self.rows[:rows] if rows else self.rows

    def jsonl(self, rows: int | None = None) -> str:
        """The first `rows` rows (all by default) as clean JSONL: UTF-8, one row per line, LF line ends."""
        return "".join(json.dumps(r, ensure_ascii=False) + "\n" for _, r in self.first(rows))


def _json_rows(name: str, text: str, check: FileCheck) -> list:
    """(line, row) of a JSON array file (ms-swift reads those too); errors go to `check`."""
    dec, i, out = json.JSONDecoder(), text.index("[") + 1, []
    try:
        while True:
            while text[i].isspace() or text[i] == ",":
                i += 1
            if text[i] == "]":
                return out
            row, end = dec.raw_decode(text, i)
            out.append((text.count("\n", 0, i) + 1, row))
            i = end
    except (json.JSONDecodeError, IndexError) as e:
        line = getattr(e, "lineno", text.count("\n") + 1)
        check.errors.append(f"{name}:{line}: bad JSON in the array ({getattr(e, 'msg', 'it never closes')}) — fix: "
                            "one JSON object per line (JSONL), or a valid JSON array of objects")
        return out


def check_file(path: str | Path) -> FileCheck:
    """Read and check one data file; `validate_file` is its list of errors."""
    name, p = str(path), Path(path)
    check = FileCheck(p)
    if not p.is_file():
        check.errors.append(f"{name}:0: file not found — fix: check the path (it is relative to {Path.cwd()})")
        return check
    raw = p.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        check.errors.append(f"{name}:1: the file is UTF-16 (Windows' \"Unicode\"), which ms-swift cannot read — fix: "
                            "save it as UTF-8")
        return check
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        check.errors.append(f"{name}:{line}: not UTF-8 text — fix: save the file as UTF-8")
        return check
    if text.startswith("\ufeff"):
        check.repairs.append("a byte-order mark")
        text = text[1:]
    if "\r\n" in text:
        check.repairs.append("Windows line ends (CRLF)")
    if text.lstrip().startswith("["):
        check.repairs.append("a JSON array instead of one row per line")
        parsed = _json_rows(name, text, check)
    else:
        parsed, blank = [], False
        for no, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                blank = True
                continue
            try:
                parsed.append((no, json.loads(line)))
            except json.JSONDecodeError as e:
                fix = "one JSON object per line"
                if line.rstrip().endswith(","):
                    fix = "remove the comma after the row (JSONL rows are not separated by commas)"
                check.errors.append(f"{name}:{no}: bad JSON ({e.msg}, column {e.colno}) — fix: {fix}")
        if blank:
            check.repairs.append("blank lines")
    first_seen: dict[str, int] = {}
    for no, row in parsed:
        reason = _row_problem(row)
        if reason:
            check.errors.append(f"{name}:{no}: {reason}")
            continue
        q = question_of(row)
        if q in first_seen:
            check.errors.append(f"{name}:{no}: duplicate question (first on line {first_seen[q]}) — fix: remove one")
            continue
        first_seen[q] = no
        check.rows.append((no, row))
    if not parsed and not check.errors:
        check.errors.append(f"{name}:1: empty file — fix: add at least one row")
    return check


def validate_file(path: str | Path) -> list[str]:
    """Problems found in one data file, as `FILE:LINE: reason — fix`; empty list when the file is fine."""
    return check_file(path).errors


def validate_files(paths) -> list[str]:
    return [problem for path in paths for problem in validate_file(path)]


def long_rows(check: FileCheck, model_dir: str | Path, max_length: int, rows: int | None = None) -> list[str]:
    """A warning `FILE:LINE: N tokens > max_length` for each of the first `rows` rows that ms-swift would drop."""
    used = check.first(rows)
    lengths = token_lengths(model_dir, [r for _, r in used])
    return [f"{check.path}:{no}: {n} tokens, longer than max_length={max_length}: ms-swift drops this row without a "
            "word (--truncation_strategy delete) — fix: shorten it, or raise max_length"
            for (no, _), n in zip(used, lengths) if n > max_length]


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


def write_run_copy(check: FileCheck, rows: int | None, folder: Path) -> Path:
    """The data a run trains on: the learner's file itself when it is used whole and clean, else a clean copy
    of its first `rows` rows in the run's own `data/` folder. The learner's file is never rewritten."""
    if not rows and not check.repairs:
        return check.path
    out = Path(folder) / "data" / (f"{check.path.stem}_first{rows}.jsonl" if rows else f"{check.path.stem}.jsonl")
    out.parent.mkdir(exist_ok=True)
    out.write_text(check.jsonl(rows), encoding="utf-8")
    return out
