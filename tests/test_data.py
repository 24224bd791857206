"""Reading and validating chat-format JSONL files: every bad case names FILE:LINE and a fix."""

import json

import pytest

from helpers import data

GOOD = {"messages": [{"role": "system", "content": ""},
                     {"role": "user", "content": "#Output#\nSolve it.\n#Math Problem#\nWhat is 2 + 3?"},
                     {"role": "assistant", "content": "Sum = 2 + 3 = 5.\n\n{{ans:5}}"}]}


def write(tmp_path, *lines, name="f.jsonl", raw: bytes | None = None):
    path = tmp_path / name
    if raw is not None:
        path.write_bytes(raw)
    else:
        path.write_text("".join((ln if isinstance(ln, str) else json.dumps(ln)) + "\n" for ln in lines),
                        encoding="utf-8")
    return path


def with_messages(*msgs):
    return {"messages": [dict(zip(("role", "content"), m)) for m in msgs]}


def test_accessors():
    assert data.question_of(GOOD) == "What is 2 + 3?"
    assert data.question_of(with_messages(("user", "plain question"), ("assistant", "x"))) == "plain question"
    assert data.expected_answer(GOOD) == "5"
    two_tags = with_messages(("user", "q"), ("assistant", "{{ans:1}} no, {{ans: 1,200 }}"))
    assert data.expected_answer(two_tags) == "1,200"


def test_good_file_and_read_rows(tmp_path):
    path = write(tmp_path, GOOD, with_messages(("user", "Other?"), ("assistant", "{{ans:7}}")))
    assert data.validate_file(path) == []
    assert len(data.read_rows(path)) == 2


@pytest.mark.parametrize("line, reason", [
    ("{not json", "bad JSON"),
    ([1, 2], 'not an object with a "messages" list'),
    ({"msgs": []}, 'not an object with a "messages" list'),
    (with_messages(("assistant", "{{ans:1}}"), ("user", "q")), "roles are"),
    (with_messages(("user", "q")), "roles are"),
    (with_messages(("system", ""), ("user", "q"), ("user", "q2"), ("assistant", "{{ans:1}}")), "roles are"),
    (with_messages(("user", "  "), ("assistant", "{{ans:1}}")), "empty user content"),
    (with_messages(("user", "q"), ("assistant", "")), "empty assistant content"),
    (with_messages(("user", "q"), ("assistant", "the answer is 5")), "no {{ans:...}} tag"),
    (with_messages(("user", "q"), ("assistant", 78)), "assistant content is int 78, not text"),
])
def test_bad_line_reports_file_line_reason_and_fix(tmp_path, line, reason):
    path = write(tmp_path, GOOD, line)
    problems = data.validate_file(path)
    assert len(problems) == 1
    assert problems[0].startswith(f"{path}:2: {reason}")
    assert " — fix: " in problems[0]


def test_duplicate_question_names_first_line(tmp_path):
    path = write(tmp_path, GOOD, with_messages(("user", "Other?"), ("assistant", "{{ans:1}}")), GOOD)
    assert data.validate_file(path) == [f"{path}:3: duplicate question (first on line 1) — fix: remove one"]


def test_not_utf8_empty_and_missing(tmp_path):
    latin = write(tmp_path, raw=json.dumps(GOOD).encode() + b'\n{"x": "caf\xe9"}\n', name="latin.jsonl")
    assert data.validate_file(latin)[0].startswith(f"{latin}:2: not UTF-8")
    empty = write(tmp_path, raw=b"\n\n", name="empty.jsonl")
    assert data.validate_file(empty)[0].startswith(f"{empty}:1: empty file")
    missing = tmp_path / "nope.jsonl"
    assert data.validate_file(missing)[0].startswith(f"{missing}:0: file not found")
    assert len(data.validate_files([latin, empty, missing])) == 3


def test_file_name_is_reported_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write(tmp_path, "{oops")
    assert data.validate_file("f.jsonl")[0].startswith("f.jsonl:1: bad JSON")


def test_count_too_long(tmp_path):
    class CharTokenizer:  # one token per character of the joined contents
        def apply_chat_template(self, msgs, tokenize=True):
            return list("".join(m["content"] for m in msgs))

    path = write(tmp_path, GOOD, with_messages(("user", "x" * 500), ("assistant", "{{ans:1}}")))
    assert data.count_too_long(path, CharTokenizer(), 100) == 1
    assert data.count_too_long(path, CharTokenizer(), 1000) == 0
