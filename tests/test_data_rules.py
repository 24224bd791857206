"""helpers.data's rules worked out by hand: every message a data check writes, word for word, the line it
names, the repairs it finds, and the token counts, which must be transformers' own. Written against the
survivors of a mutation run on data.py (tools/mutation.sh): each test pins what a learner reads or a run uses."""

import json
from pathlib import Path

import pytest
from test_data import with_messages as row
from test_data import write

from helpers import data, models, paths

FIX_ROLES = ("— fix: an optional system turn, then user and assistant turns taking turns, ending with the assistant")


def good(n: int) -> dict:
    return row(("system", ""), ("user", f"#Output#\nSolve.\n#Math Problem#\nWhat is {n} + 1?"),
               ("assistant", f"{n} + 1 = {n + 1}.\n\n{{{{ans:{n + 1}}}}}"))


def jsonl(*rows) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def check_text(tmp_path, text: str | bytes, name="d.jsonl"):
    path = write(tmp_path, name=name, raw=text if isinstance(text, bytes) else text.encode("utf-8"))
    return path, data.check_file(path)


# ---- what a row may not be: the reason and the fix, word for word ------------------------------------------

ROW_CASES = [
    ({"messages": []}, 'a message is not an object — fix: each message needs "role" and "content"'),
    ({"messages": ["hi"]}, 'a message is not an object — fix: each message needs "role" and "content"'),
    (row(("system", "")), f"roles are ['system'] {FIX_ROLES}"),
    (row(("user", "q")), f"roles are ['user'] {FIX_ROLES}"),
    ({**row(("user", "q"), ("assistant", "{{ans:1}}")), "images": [], "system": "s"},
     'extra key "images" is one ms-swift reads itself (it would change what is trained) — fix: remove it or '
     'rename it, e.g. "note_images"'),
    (row(("system", None), ("user", "q"), ("assistant", "{{ans:1}}")),
     'system content is missing or null (ms-swift would drop this row without a word) — fix: write "" for an '
     'empty system turn, or leave the system turn out'),
    (row(("user", None), ("assistant", "{{ans:1}}")),
     "user content is missing or null (ms-swift would drop this row without a word) — fix: write the user text"),
    (row(("user", ["七"]), ("assistant", "{{ans:1}}")),
     "user content is list [\"\\u4e03\"], not text (ms-swift would drop this row without a word) — fix: write it "
     "as a string: \"content\": \"['七']\""),
    (row(("user", "q"), ("assistant", 7)),
     'assistant content is int 7, not text (ms-swift would drop this row without a word) — fix: write it as a '
     'string: "content": "7\\n\\n{{ans:7}}"'),
    (row(("system", ""), ("user", "q"), ("assistant", 7)),
     'assistant content is int 7, not text (ms-swift would drop this row without a word) — fix: write it as a '
     'string: "content": "7\\n\\n{{ans:7}}"'),
    (row(("user", "q"), ("assistant", "seven")),
     "no {{ans:...}} tag in the assistant answer — fix: end the answer with {{ans:N}}"),
]


@pytest.mark.parametrize("bad, reason", ROW_CASES)
def test_each_bad_row_gets_its_own_reason_and_fix(tmp_path, bad, reason):
    path, check = check_text(tmp_path, jsonl(good(1), bad, good(2)))
    assert check.errors == [f"{path}:2: {reason}"]
    assert [no for no, _ in check.rows] == [1, 3]  # the rows around it are kept, with their own lines


# ---- the file as a whole ------------------------------------------------------------------------------------

def test_a_missing_file_is_named_with_the_folder_it_is_relative_to(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert data.check_file("gone.jsonl").errors == [
        f"gone.jsonl:0: file not found — fix: check the path (it is relative to {tmp_path})"]


@pytest.mark.parametrize("bom", [b"\xff\xfe", b"\xfe\xff"])
def test_utf16_either_way_round_is_refused_with_the_fix(tmp_path, bom):
    path, check = check_text(tmp_path, bom + jsonl(good(1)).encode("utf-16-le"))
    assert check.errors == [f"{path}:1: the file is UTF-16 (Windows' \"Unicode\"), which ms-swift cannot read — "
                            "fix: save it as UTF-8"]
    assert check.rows == []


def test_not_utf8_names_the_line_of_the_first_bad_byte(tmp_path):
    path, check = check_text(tmp_path, jsonl(good(1)).encode() + b'{"x": "caf\xe9"}\n')
    assert check.errors == [f"{path}:2: not UTF-8 text — fix: save the file as UTF-8"]


def test_harmless_differences_are_repairs_and_keep_their_line_numbers(tmp_path):
    text = "\ufeff" + jsonl(good(1)).replace("\n", "\r\n") + "\r\n" + jsonl(good(2)).replace("\n", "\r\n")
    path, check = check_text(tmp_path, text)
    assert check.errors == []
    assert check.repairs == ["a byte-order mark", "Windows line ends (CRLF)", "blank lines"]
    assert [no for no, _ in check.rows] == [1, 3]
    assert data.read_rows(path) == [good(1), good(2)]  # read_rows skips the mark and the blank line too


def test_bad_json_lines_name_the_column_and_the_comma_fix(tmp_path):
    text = jsonl(good(1)) + json.dumps(good(2)) + ",  \n" + "{oops\n"
    path, check = check_text(tmp_path, text)
    width = len(json.dumps(good(2)))
    assert check.errors == [
        f"{path}:2: bad JSON (Extra data, column {width + 1}) — fix: remove the comma after the row (JSONL rows are "
        "not separated by commas)",
        f"{path}:3: bad JSON (Expecting property name enclosed in double quotes, column 2) — fix: one JSON object "
        "per line"]


def test_duplicates_and_the_empty_file(tmp_path):
    path, check = check_text(tmp_path, jsonl(good(1), good(2), good(1), good(3)))
    assert check.errors == [f"{path}:3: duplicate question (first on line 1) — fix: remove one"]
    assert [no for no, _ in check.rows] == [1, 2, 4]  # the rows after it are still read
    empty, check = check_text(tmp_path, "\n\n", name="empty.jsonl")
    assert check.errors == [f"{empty}:1: empty file — fix: add at least one row"]


def test_a_json_array_is_read_with_each_rows_line(tmp_path):
    text = "\n  [\n" + json.dumps(good(1)) + ",\n\n  " + json.dumps(good(2)) + "\n]\n"
    path, check = check_text(tmp_path, text)
    assert check.errors == [] and check.repairs == ["a JSON array instead of one row per line"]
    assert [no for no, _ in check.rows] == [3, 5]
    compact, check = check_text(tmp_path, "[" + json.dumps(good(1)) + "]", name="one.json")
    assert [no for no, _ in check.rows] == [1] and check.errors == []


def test_a_broken_json_array_names_its_line_and_keeps_what_came_before(tmp_path):
    path, check = check_text(tmp_path, "[\n" + json.dumps(good(1)) + ",\n{oops}\n]\n")
    assert check.errors == [f"{path}:3: bad JSON in the array (Expecting property name enclosed in double quotes) "
                            "— fix: one JSON object per line (JSONL), or a valid JSON array of objects"]
    assert [no for no, _ in check.rows] == [2]
    path, check = check_text(tmp_path, "[\n" + json.dumps(good(1)) + ",\n", name="open.json")
    assert check.errors == [f"{path}:3: bad JSON in the array (it never closes) — fix: one JSON object per line "
                            "(JSONL), or a valid JSON array of objects"]


# ---- the rows a run uses, and its own copy -------------------------------------------------------------------

def test_first_takes_all_or_exactly_as_many_as_there_are(tmp_path):
    path, check = check_text(tmp_path, jsonl(good(1), good(2), good(3)))
    assert check.first() == check.rows and check.first(None) == check.rows
    assert [no for no, _ in check.first(2)] == [1, 2] and len(check.first(3)) == 3
    with pytest.raises(ValueError) as e:
        check.first(4)
    assert str(e.value) == f"{paths.short(path)} has 3 rows, fewer than the 4 asked for."


def test_jsonl_is_one_clean_utf8_row_per_line(tmp_path):
    rows = [good(1), row(("user", "Wie viel ist 2 × 3?"), ("assistant", "{{ans:6}}"))]
    _, check = check_text(tmp_path, "\ufeff" + jsonl(*rows).replace("\n", "\r\n"))
    assert check.jsonl() == jsonl(*rows) and "×" in check.jsonl()
    assert check.jsonl(1) == jsonl(rows[0])


def test_the_run_copy_is_the_file_itself_only_when_used_whole_and_clean(tmp_path):
    clean, check = check_text(tmp_path, jsonl(good(1), good(2), good(3)), name="clean.jsonl")
    assert data.write_run_copy(check, None, tmp_path / "run") == clean  # nothing written
    assert not (tmp_path / "run").exists()
    (tmp_path / "run").mkdir()
    first2 = data.write_run_copy(check, 2, tmp_path / "run")
    assert first2 == tmp_path / "run" / "data" / "clean_first2.jsonl"
    assert first2.read_bytes() == jsonl(good(1), good(2)).encode("utf-8")
    repaired, check = check_text(tmp_path, "\ufeff" + jsonl(good(1), row(("user", "2 × 3?"), ("assistant", "{{ans:6}}"))),
                                 name="bom.jsonl")
    whole = data.write_run_copy(check, None, tmp_path / "run")  # the data/ folder is there already: fine
    assert whole == tmp_path / "run" / "data" / "bom.jsonl"
    assert whole.read_bytes() == jsonl(*data.read_rows(repaired)).encode("utf-8")
    assert repaired.read_bytes().startswith("\ufeff".encode())  # the learner's file is never rewritten


def test_resolve_dataset_names_paths_and_refusals(tmp_path, monkeypatch):
    assert data.resolve_dataset("val") == paths.DATA_DIR / "val.jsonl"
    bare = tmp_path / "mydata"  # an existing file without a suffix is taken as given
    bare.write_text(jsonl(good(1)))
    assert data.resolve_dataset(bare) == bare
    stems = sorted(p.stem for p in paths.DATA_DIR.glob("*.jsonl"))
    with pytest.raises(FileNotFoundError) as e:
        data.resolve_dataset("train_7")
    assert str(e.value) == f"train_7: no such dataset file. Fix: pass a .jsonl path or one of {stems}."
    hashed = tmp_path / "rows#3.jsonl"
    hashed.write_text(jsonl(good(1)))
    with pytest.raises(ValueError) as e:
        data.resolve_dataset(hashed)
    assert str(e.value) == (f"{hashed}: ms-swift reads '#N' in a dataset name as 'sample N rows'. Fix: rename "
                            "the file.")


# ---- reading rows back ------------------------------------------------------------------------------------------

def test_turn_question_and_answer_readers():
    assert data.turn(row(("user", "q")), "assistant") == ""
    assert data.turn(row(("user", None), ("user", "second")), "user") == ""
    twice = row(("user", "#Math Problem#\nA field #Math Problem#\nB"))
    assert data.question_of(twice) == "A field #Math Problem#\nB"  # everything after the first mark
    assert data.tagged_answer("no tag here") is None and data.tagged_answer("{{ans: 4 }} {{ans:5}}") == "5"
    assert data.expected_answer(row(("user", "q"), ("assistant", "five"))) == ""


def test_prompt_row_and_wording():
    assert data.prompt_row("  What is 2 + 2?\n") == {"messages": [
        {"role": "system", "content": ""},
        {"role": "user", "content": f"#Output#\n{data.INSTRUCTION}\n#Math Problem#\nWhat is 2 + 2?"}]}
    assert data.wording("A  field of 18 m,\n 1,500 kg or 3/4 of 2.5 t") == "A field of # m, # kg or # of # t"


# ---- token counts: transformers' own -----------------------------------------------------------------------------

TEMPLATE = """{{ bos_token }}{% for m in messages %}
 \t \t {% if m['role'] not in ['system', 'user', 'assistant'] %}{{ raise_exception('no role ' + m['role']) }}{% endif %}
  <|im_start|>{{ m['role'] }}
{{ m['content'] }}{{ eos_token }}
{% endfor %}
{% if add_generation_prompt %}<|im_start|>assistant
{% endif %}"""


def odd_model(folder: Path, bos) -> Path:
    """The embedded tokenizer with a template that uses everything transformers gives a template: bos and eos
    (bos written as an AddedToken object, or absent), raise_exception, and block tags whose whitespace counts;
    its tokenizer adds a token of its own to every text it encodes (which a chat template's count leaves out)."""
    folder.mkdir()
    src = models.embedded_dir()
    tokenizer = json.loads((src / "tokenizer.json").read_text(encoding="utf-8"))
    tokenizer["post_processor"] = {
        "type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}},
                                                 {"Sequence": {"id": "A", "type_id": 0}}],
        "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
        "special_tokens": {"<|endoftext|>": {"id": "<|endoftext|>", "ids": [0], "tokens": ["<|endoftext|>"]}}}
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer), encoding="utf-8")
    cfg = json.loads((src / "tokenizer_config.json").read_text(encoding="utf-8"))
    cfg.pop("chat_template", None)
    cfg["bos_token"] = bos
    cfg["eos_token"] = "<|im_end|>"
    (folder / "tokenizer_config.json").write_text(json.dumps(cfg), encoding="utf-8")
    (folder / "chat_template.jinja").write_text(TEMPLATE, encoding="utf-8")
    return folder


ADDED_BOS = {"__type": "AddedToken", "content": "<|endoftext|>", "lstrip": False, "rstrip": False,
             "normalized": False, "single_word": False, "special": True}


@pytest.mark.parametrize("bos", [ADDED_BOS, None], ids=["bos-object", "no-bos"])
def test_token_lengths_are_transformers_counts(tmp_path, bos):
    from transformers import AutoTokenizer

    folder = odd_model(tmp_path / "odd", bos)
    rows = [good(1), row(("user", "Wie viel ist 2 × 3?"), ("assistant", "{{ans:6}}"))]
    tok = AutoTokenizer.from_pretrained(folder)
    expected = [len(tok.apply_chat_template(r["messages"], tokenize=True, return_dict=True)["input_ids"])
                for r in rows]
    assert data.token_lengths(folder, rows) == expected
    if bos is None:
        return
    embedded = models.embedded_dir()
    tok = AutoTokenizer.from_pretrained(embedded)
    assert data.token_lengths(embedded, rows) == [
        len(tok.apply_chat_template(r["messages"], tokenize=True, return_dict=True)["input_ids"]) for r in rows]
    with pytest.raises(Exception, match="no role tool"):
        data.token_lengths(folder, [row(("tool", "x"))])


def test_too_long_counts_and_warnings_end_exactly_at_max_length(tmp_path):
    from transformers import AutoTokenizer

    from helpers import inference

    rows = [good(1), good(22), good(333)]
    path, check = check_text(tmp_path, jsonl(*rows))
    embedded = models.embedded_dir()
    lengths = data.token_lengths(embedded, rows)
    assert len(set(lengths)) == 3, lengths
    limit = sorted(lengths)[0]  # the shortest row fits exactly, the two others are longer
    assert data.count_too_long(path, embedded, limit) == 2
    assert data.count_too_long(path, embedded, max(lengths)) == 0
    tok = AutoTokenizer.from_pretrained(embedded)  # a Hugging Face tokenizer counts the same here
    assert data.count_too_long(path, tok, limit) == 2 and data.count_too_long(path, tok, max(lengths)) == 0
    template = inference.swift_template(embedded, "llama", "chatml")  # exactly what training sees
    swift_lengths = [len(template.encode({"messages": r["messages"]})["input_ids"]) for r in rows]
    low = sorted(swift_lengths)[0]
    assert data.count_too_long(path, template, low) == 2 and data.count_too_long(path, template, max(swift_lengths)) == 0
    warnings = data.long_rows(check, embedded, limit)
    assert [w.split(":")[1] for w in warnings] == [str(1 + lengths.index(n)) for n in lengths if n > limit]
    no = 1 + lengths.index(max(lengths))
    assert warnings[-1] == (f"{path}:{no}: {max(lengths)} tokens, longer than max_length={limit}: ms-swift drops "
                            "this row without a word (--truncation_strategy delete) — fix: shorten it, or raise "
                            "max_length")
    assert data.long_rows(check, embedded, limit, rows=1) == [w for w in warnings if w.split(":")[1] == "1"]
