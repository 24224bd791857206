"""`validate` agrees with the trainer on hand-made files (tests/edge_files/: saved on Windows, edited in a
spreadsheet, glued from several sources).

Rule: every file `validate` accepts, ms-swift trains on all its rows (a row longer than max_length, which
swift drops, is a warning naming it); every file it refuses gets FILE:LINE: reason — fix, and the fix works.
What swift does with each file is checked by swift itself: its own data pipeline (`SwiftSft`'s dataset
loading, preprocessing and encoding, with the argv a ci-track `sft()` builds), one process for the corpus,
and one real 1-step `sft()` on a file that needs every repair. `tools/edge_files_swift.py` runs a full
1-step `swift sft` per file (minutes; the table in the notes comes from it).
"""

import json
import subprocess
import sys

import pytest
from conftest import ROOT

from helpers import data, knobs, models, paths, swift_runner, tracks, training

pytestmark = pytest.mark.timeout(600)
EDGE = ROOT / "tests" / "edge_files"
MAX_LENGTH = 256  # the ci track's
# file -> what validate says: rows it accepts (those swift must train), or the start of the refusal
EXPECTED = {
    "bom.jsonl": 3,
    "crlf.jsonl": 3,
    "blank_lines.jsonl": 3,
    "extra_keys.jsonl": 2,
    "mixed_extra_key.jsonl": 3,
    "non_ascii.jsonl": 2,
    "multi_turn.jsonl": 2,
    "no_final_newline.jsonl": 3,
    "json_array.json": 2,
    "too_long.jsonl": 3,  # accepted, with a warning for line 2: swift drops it
    "empty_or_missing_system.jsonl": ":3: system content is missing or null",
    "number_content.jsonl": ":2: assistant content is int 232, not text",
    "trailing_comma.jsonl": ":1: bad JSON (Extra data, column 478) — fix: remove the comma after the row",
    "utf16.jsonl": ":1: the file is UTF-16",
}
REPAIRS = {"bom.jsonl": ["a byte-order mark"], "crlf.jsonl": ["Windows line ends (CRLF)"],
           "blank_lines.jsonl": ["blank lines"], "json_array.json": ["a JSON array instead of one row per line"]}


def test_the_corpus_is_what_the_table_covers():
    assert sorted(p.name for p in EDGE.iterdir()) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_validate_verdict(name):
    check = data.check_file(EDGE / name)
    want = EXPECTED[name]
    if isinstance(want, int):
        assert check.errors == [] and len(check.rows) == want
        assert check.repairs == REPAIRS.get(name, [])
    else:
        assert len(check.errors) == 1 and check.errors[0].startswith(f"{EDGE / name}{want}"), check.errors
        assert " — fix: " in check.errors[0]


def test_too_long_row_is_named_with_its_length():
    check = data.check_file(EDGE / "too_long.jsonl")
    warnings = data.long_rows(check, models.embedded_dir(), MAX_LENGTH)
    assert len(warnings) == 1
    assert warnings[0].startswith(f"{EDGE / 'too_long.jsonl'}:2: ") and f"longer than max_length={MAX_LENGTH}" in warnings[0]
    assert int(warnings[0].split(": ")[1].split()[0]) > MAX_LENGTH


# each fix exactly as its message words it
FIXES = {
    "empty_or_missing_system.jsonl": lambda t: t.replace('"content": null', '"content": ""'),
    "number_content.jsonl": lambda t: t.replace('"content": 232', '"content": "232\\n\\n{{ans:232}}"'),
    "trailing_comma.jsonl": lambda t: t.replace("}]},\n", "}]}\n"),
    "utf16.jsonl": None,  # "save it as UTF-8"
}


@pytest.mark.parametrize("name", sorted(FIXES))
def test_the_fix_each_refusal_names_makes_the_file_valid(name, tmp_path):
    src = EDGE / name
    fixed = tmp_path / name
    if FIXES[name] is None:
        fixed.write_text(src.read_bytes().decode("utf-16"), encoding="utf-8")
    else:
        fixed.write_text(FIXES[name](src.read_text(encoding="utf-8")), encoding="utf-8")
    assert data.validate_file(fixed) == []


SWIFT_ROWS = r"""
import json, sys
from swift.pipelines import SwiftSft
out = {}
for item in json.loads(sys.argv[1]):
    pipeline = SwiftSft(item["argv"])
    train, _ = pipeline._prepare_dataset()
    out[item["name"]] = 0 if train is None else len(train)
print("ROWS " + json.dumps(out))
"""


def test_swift_trains_every_row_validate_accepts(tmp_path):
    """swift's own data pipeline, fed what a ci-track sft() would feed it (the run's own copy of the data)."""
    model = models.get_model(None)
    p = tracks.experiments("ci")[1].params
    params = knobs.check(p["learning_rate"], p["lora_rank"], 1, 2, MAX_LENGTH, 1)
    items, expected = [], {}
    for name, want in EXPECTED.items():
        if not isinstance(want, int):
            continue
        check = data.check_file(EDGE / name)
        (tmp_path / name).mkdir()
        train_file = data.write_run_copy(check, None, tmp_path / name)
        argv = swift_runner.sft_command(model, train_file, None, params, tmp_path / name / "out",
                                        {"max_steps": 1, "split_dataset_ratio": 0, "dataset_num_proc": 1})
        items.append({"name": name, "argv": argv})
        expected[name] = want - len(data.long_rows(check, model.path, MAX_LENGTH))
    r = subprocess.run([sys.executable, "-c", SWIFT_ROWS, json.dumps(items)], cwd=ROOT, capture_output=True,
                       text=True, timeout=500, env={**swift_runner.SWIFT_ENV, **dict(__import__("os").environ)})
    line = [ln for ln in r.stdout.splitlines() if ln.startswith("ROWS ")]
    assert r.returncode == 0 and line, r.stdout[-2000:] + r.stderr[-3000:]
    assert json.loads(line[0][5:]) == expected


def test_a_file_needing_every_repair_trains_all_rows_and_stays_untouched(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(paths, "OUTPUT_DIR", tmp_path / "output")
    rows = [json.dumps(r, ensure_ascii=False) for r in data.read_rows(EDGE / "crlf.jsonl")]
    mine = tmp_path / "my data.jsonl"
    mine.write_bytes(b"\xef\xbb\xbf" + ("\r\n".join(rows[:2]) + "\r\n\r\n" + rows[2]).encode("utf-8"))
    before = mine.read_bytes()
    p = {**tracks.experiments("ci")[1].params, "dataset": mine, "train_rows": None, "max_steps": 1}
    run = training.sft(models.standin_model(), **p, label="repaired", show=True)
    out = capsys.readouterr().out
    assert "a byte-order mark and Windows line ends (CRLF) and blank lines" in out and "your file is unchanged" in out
    assert run.status == "finished", run.error
    assert mine.read_bytes() == before, "the learner's file was rewritten"
    trained = run.run_dir / "data" / "my data.jsonl"
    assert f"--dataset '{paths.short(trained)}'" in run.command or f"--dataset {paths.short(trained)}" in run.command
    log = (run.run_dir / "swift.log").read_text(errors="replace")
    assert "num_rows: 3" in log.split("train_dataset:", 1)[1][:400], "swift must train all 3 rows"
