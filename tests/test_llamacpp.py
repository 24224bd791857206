"""llama.cpp itself (node-llama-cpp's prebuilt binary, installed by set-up) reads the GGUF file of the suite's trained
run: its greedy answers equal the merged model's exam() answers, from the course's prompt ids and from a prompt built
with the file's own chat template the way llama-cli --jinja, llama-server and LM Studio build it."""

import os
import subprocess
from pathlib import Path

import pytest

from helpers import DATA_DIR, exam, gguf_export, llamacpp, paths, scoring


def _need_llamacpp():
    """Skipped only where Node.js 20+ is missing, with the sentence that says so; with Node.js there, a missing
    llama.cpp is set-up's failure and fails the test."""
    version = llamacpp.node_version()
    if version is None or version[0] < llamacpp.NODE_MIN:
        pytest.skip(llamacpp.llamacpp_missing())
    problem = llamacpp.llamacpp_missing()
    assert problem is None, problem


@pytest.fixture(scope="module")
def trained_files(lesson_flow, tmp_path_factory):
    """The f16 and q8_0 files of the suite's trained run (its merged folder), written beside the test, not the run."""
    _need_llamacpp()
    merged = Path(lesson_flow["merged"])
    out = tmp_path_factory.mktemp("llamacpp")
    return merged, {q: gguf_export.export_gguf(merged, q, out_dir=out, show=False) for q in ("f16", "q8_0")}


NEAR_TIE = 0.01  # logits: f16 weights move this run's logits by about this much (0.0005 margin flipped, 2026-12-07)


def test_llama_cpp_answers_like_the_merged_model_both_ways(trained_files):
    """From the course's prompt ids and from the file's own template (its prompts token for token the training
    prompt), llama.cpp gives the merged model's exam() answers: word for word, except where the merged model itself
    had a near tie (its two best next tokens closer than NEAR_TIE), which the f16 file's rounding may tip; and the
    two ways give each other's answers exactly, since their prompts are the same ids."""
    merged, files = trained_files
    tokens = 48
    folder = exam(merged, DATA_DIR / "test.jsonl", max_new_tokens=tokens, save_to=False, progress=False)
    check = llamacpp.check_llamacpp(files["f16"], merged, max_new_tokens=tokens,
                                    folder_answers=[i.response for i in folder.items])
    print("\n" + check.summary())
    assert check.total == 10
    assert check.ways["template"]["prompts_equal"] == 10  # the file's template + llama.cpp's tokenizer = training's ids
    assert [a["template"] for a in check.answers] == [a["ids"] for a in check.answers]
    assert all(a["template"] for a in check.answers)
    for how in ("ids", "template"):
        way = check.ways[how]
        assert way["identical"] >= 8 and way["identical"] + len(way["partings"]) == 10
        for k, parted in way["partings"].items():
            # None: every token llama.cpp chose is the merged model's own greedy choice (unbatched), so what differs is
            # exam()'s padded batch, not the file
            assert parted is None or 0 <= parted["margin"] < NEAR_TIE, (how, check.answers[k], parted)
    assert check.folder_strict == sum(i.strict for i in folder.items)
    identical = check.ways["template"]["identical"]
    assert f"{identical} of 10 from the file's own chat template" in check.summary()
    assert ("near tie" in str(check)) == (identical < 10)
    assert check._repr_markdown_().count("<td>same</td>") == identical


def test_an_answer_that_ends_before_the_limit_is_not_cut_off(trained_files):
    """node-llama-cpp stops at the end-of-generation token without yielding it: such an answer ended by itself, and
    the exam's "cut off" count must not call it cut (2026-12-07: every q8_0 answer of a real run was counted cut off,
    each 33-58 tokens long, under a limit of 80)."""
    merged, files = trained_files
    rows = [{"messages": [{"role": "system", "content": ""}, {"role": "user", "content": "Say hello in one word."}]}]
    limit = 64
    got = llamacpp.answer(files["f16"], merged, rows, limit, how="template")
    assert 0 < len(got["ids"][0]) < limit, got  # this question gets a short answer that ends ...
    assert got["cut"] == [False]  # ... by itself
    assert llamacpp.answer(files["f16"], merged, rows, 2, how="template")["cut"] == [True]  # at the limit: cut off


def test_q8_0_scored_through_llama_cpp_beside_the_merged_model(trained_files):
    merged, files = trained_files
    rows = 3
    theirs = llamacpp.exam_with_llamacpp(files["q8_0"], merged, DATA_DIR / "exam_100.jsonl", max_new_tokens=24,
                                         limit=rows)
    ours = exam(merged, DATA_DIR / "exam_100.jsonl", max_new_tokens=24, limit=rows, save_to=False, progress=False)
    assert theirs.n == rows and all(i.response for i in theirs.items)
    assert [i.strict for i in theirs.items] == [scoring.strict_correct(i.response, i.expected) for i in theirs.items]
    assert theirs.settings["how"] == "template" and theirs.model.endswith(".q8_0.gguf")
    line = llamacpp.llamacpp_score_line(theirs, ours)
    assert line.startswith(f"llama.cpp: {sum(i.strict for i in theirs.items)} of 3 right (strict), the merged model: ")


def _result(flags):
    items = [scoring.ExamItem(f"q{k}", "1", "", 0.0, bool(f), False) for k, f in enumerate(flags)]
    return scoring.ExamResult(items)


def test_paired_difference_worked_by_hand():
    ours = _result([1, 1, 0, 0, 1, 0, 1, 0])
    theirs = _result([1, 0, 1, 1, 1, 0, 1, 0])
    d = llamacpp.paired_difference(ours, theirs)
    # one right only in ours, two only in theirs: difference +1/8; per-question differences 0,-1,+1,+1,0,0,0,0
    # have variance 3/8 - (1/8)^2 = 23/64, so the error of their mean is sqrt(23/64 / 8) = 0.2120
    assert (d["only_ours"], d["only_theirs"], d["ours"], d["theirs"], d["n"]) == (1, 2, 4, 5, 8)
    assert d["difference_points"] == pytest.approx(12.5)
    assert d["standard_error_points"] == pytest.approx(100 * (23 / 64 / 8) ** 0.5)
    same = llamacpp.paired_difference(ours, ours)
    assert same["difference_points"] == 0 and same["standard_error_points"] == 0
    with pytest.raises(ValueError, match="not from the same questions"):
        llamacpp.paired_difference(ours, _result([1, 0]))
    line = llamacpp.llamacpp_score_line(_result([1, 0, 1]), ours, "exp5")
    assert line == ("llama.cpp: 2 of 3 right (strict), exp5: 2 of 3 on the same questions; difference +0 points, one "
                    "standard error ± 47 (1 right only through llama.cpp, 1 only in exp5; the rest agree)")


def test_without_node_it_says_what_it_would_take(monkeypatch, tmp_path):
    monkeypatch.setattr(llamacpp, "node_version", lambda node=None: None)
    problem = llamacpp.llamacpp_missing()
    assert problem.startswith("llama.cpp is not set up here: it runs through Node.js 20+, and this machine has no")
    assert "fix: install Node.js 20 or newer, then `bash tools/install_llamacpp.sh`" in problem
    with pytest.raises(RuntimeError, match="no `node`"):
        llamacpp.run(tmp_path / "x.gguf", [], "ids", [], 8)
    monkeypatch.setattr(llamacpp, "node_version", lambda node=None: (18, 19, 0))
    assert "needs Node.js 20+, this machine has 18.19.0" in llamacpp.llamacpp_missing()
    monkeypatch.setattr(llamacpp, "node_version", lambda node=None: (22, 1, 0))
    monkeypatch.setattr(llamacpp, "install_dir", lambda: tmp_path)
    assert llamacpp.llamacpp_missing() == (f"llama.cpp is not set up here: node-llama-cpp {llamacpp.VERSION} is "
                                           f"expected in {paths.short(tmp_path)}, nothing is there — fix: "
                                           "`bash tools/install_llamacpp.sh` (about 20 s)")
    with pytest.raises(ValueError, match="how='chat'.*fix: 'ids'"):
        llamacpp.run(tmp_path / "x.gguf", [], "chat", [], 8)


def test_the_install_script_skips_in_one_line_without_node(tmp_path):
    """No Node.js on PATH: the script says so in one line and set-up goes on (exit 0)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname"):
        target = subprocess.run(["which", tool], capture_output=True, text=True).stdout.strip()
        if target:
            os.symlink(target, bin_dir / tool)
    root = Path(__file__).resolve().parent.parent
    out = subprocess.run([str(bin_dir / "bash"), str(root / "tools" / "install_llamacpp.sh")], capture_output=True,
                         text=True, env={"PATH": str(bin_dir), "FTLAB_CACHE": str(tmp_path / "cache")})
    assert out.returncode == 0
    assert out.stderr.strip().splitlines() == [
        f"llama.cpp skipped: no Node.js here (node-llama-cpp {llamacpp.VERSION} needs Node.js 20+); the GGUF checks "
        "with llama.cpp will say so."]
    assert not (tmp_path / "cache").exists()


def test_a_missing_file_is_named(tmp_path):
    _need_llamacpp()
    with pytest.raises(FileNotFoundError, match="no such GGUF file.*fix: `export_gguf\\(\\)` it first"):
        llamacpp.run(tmp_path / "none.gguf", [], "ids", [], 8)


def test_the_side_script_is_valid_for_node():
    """The node side parses (node --check) wherever node is."""
    _need_llamacpp()
    out = subprocess.run(["node", "--check", str(llamacpp.SIDE)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
