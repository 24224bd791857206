"""Exam scoring rules, result objects, model resolution, swift-identical prompts and a tiny real exam."""

import json
import time
from types import SimpleNamespace

import pytest

import helpers.exams as ex
import helpers.inference as inf
import helpers.scoring as sc
from helpers import data, paths
from helpers.cards import ExamReport
from helpers.models import embedded_model

DATA = paths.DATA_DIR


def row(question, answer):
    return {"messages": [{"role": "system", "content": ""},
                         {"role": "user", "content": f"#Output#\nSolve.\n#Math Problem#\n{question}"},
                         {"role": "assistant", "content": f"Steps.\n\n{{{{ans:{answer}}}}}"}]}


# ---------------------------------------------------------------- rules

def test_seed_rule_over_credits_a_number_inside_a_bigger_one():
    assert sc.seed_score("so she read 780 pages", "78") == 0.5
    assert not sc.strict_correct("so she read 780 pages", "78")
    assert sc.seed_score("answer {{ans:78}}", "78") == 1.0
    assert sc.seed_score("no idea", "78") == 0.0


@pytest.mark.parametrize("response, expected, ok", [
    ("{{ans: 1,200}}", "1200", True),
    ("{{ans:1200}}", "1,200", True),
    ("{{ans:60.0}}", "60", True),
    ("{{ ans : 60 }}", 60, True),
    ("{{ans:61}}", "60", False),
    ("{{ans:60}} wait, {{ans:61}}", "60", False),   # only the last tag counts
    ("{{ans:61}} wait, {{ans:60}}", "60", True),
    ("{{ans:sixty}}", "60", False),
    ("60", "60", False),
])
def test_strict_rule(response, expected, ok):
    assert sc.strict_correct(response, expected) is ok


def test_format():
    assert sc.has_format("x\n\n{{ans:5}}") and sc.has_format("{{ans: 1,200}}")
    assert not sc.has_format("the answer is 5") and not sc.has_format("{{ans:?}}")


# ---------------------------------------------------------------- results

@pytest.fixture
def result():
    rows = [row("Q one", 78), row("Q two", 60), row("Q <three>", 5)]
    return sc.score_responses(rows, ["I get 780 pages", "{{ans:60.0}}", "<b>{{ans:4}}</b>"], ExamReport,
                              model="m", dataset="x/test.jsonl")


def test_scores(result):
    assert [i.seed for i in result.items] == [0.5, 0.5, 0.0]  # "60" is inside "60.0": half a point
    assert (result.seed_score, result.strict_score, result.format_rate) == (33, 33, 67)
    assert "seed score 33, strict score 33" in result.summary()
    assert "(3 questions)" in result.summary()
    one = sc.score_responses([row("Q one", 78)], ["{{ans:78}}"], ExamReport, model="m", dataset="x/demo.jsonl")
    assert "on demo.jsonl (1 question): " in one.summary()  # not "(1 questions)"


def test_save_never_overwrites_and_round_trips(result, tmp_path):
    first = ex.save(result, tmp_path / "exam-test.json")
    second = ex.save(result, tmp_path / "exam-test.json")
    assert (first.name, second.name) == ("exam-test.json", "exam-test-2.json")
    saved = json.loads(first.read_text())
    assert saved["strict_score"] == 33 and saved["items"][0]["response"] == "I get 780 pages"
    assert ex.load(first).seed_score == result.seed_score


def test_html_table_escapes_text(result):
    page = result._repr_html_()
    assert "&lt;b&gt;" in page and "<b>{{" not in page and "Q &lt;three&gt;" in page
    assert page.count("<tr>") == 4


@pytest.mark.parametrize("response,expected,ok", [
    ("18 × 6 ÷ 2 = 54, so 54 × 14 = 756 kg.", "756", True),  # no tag needed
    ("The answer is 756.\n\n{{ans:756}}", "756", True),
    ("756 kg in all, from 54 m²", "756", False),  # the last number decides
    ("a loss of −3", "-3", True), ("1,200 pages", "1200", True), ("no number", "5", False),
])
def test_last_number_rule(response, expected, ok):
    assert sc.last_number_correct(response, expected) is ok


def test_results_saved_before_the_last_number_rule_get_it_from_their_answers(result):
    old = result.to_json()
    for item in old["items"]:
        del item["last_number"], item["cut"]
    again = sc.ExamResult.from_json(old)
    assert [i.last_number for i in again.items] == [False, True, False] and again.last_number_score == 33


def test_compare(result):
    tuned = sc.score_responses([row("Q one", 78), row("Q two", 60), row("Q <three>", 5)],
                               ["{{ans:78}}", "{{ans:60}}", "{{ans:5}}"])
    table = ex.compare_exams(result, tuned)
    assert "strict_score" in str(table) and "+67" in table._repr_html_()
    with pytest.raises(ValueError):
        ex.compare_exams(result, sc.score_responses([row("other", 1)], ["1"]))


def test_over_credit_example(result):
    assert ex.over_credit_example(result).startswith("**Real example") and "780" in ex.over_credit_example(result)
    clean = sc.score_responses([row("Q", 5)], ["{{ans:5}}"])
    assert ex.over_credit_example(clean).startswith("**Constructed example**")


def test_response_count_must_match():
    with pytest.raises(ValueError, match="one response per row"):
        sc.score_responses([row("Q", 1)], [])


# ---------------------------------------------------------------- what to load

def test_resolve_model_run_and_adapter(tmp_path):
    model = embedded_model()
    base, mtype, tmpl, adapter, home, _ = inf.resolve(model)
    assert (base, mtype, tmpl, adapter) == (model.path, "llama", "chatml", None)
    ckpt = tmp_path / "v0-x" / "checkpoint-5"
    ckpt.mkdir(parents=True)
    (ckpt / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "/nowhere"}))
    (ckpt / "args.json").write_text(json.dumps({"model": str(model.path), "model_type": "llama",
                                                "template": "chatml"}))
    run = SimpleNamespace(best_checkpoint=None, last_checkpoint=str(ckpt))
    assert inf.resolve(run)[:5] == (model.path, "llama", "chatml", ckpt, ckpt)
    with pytest.raises(ValueError, match="neither a model folder"):
        inf.resolve(tmp_path)
    with pytest.raises(ValueError, match="no checkpoint yet"):
        inf.resolve(SimpleNamespace(best_checkpoint=None, last_checkpoint=None))


def test_exam_rejects_an_invalid_dataset(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{oops\n")
    with pytest.raises(ValueError, match="bad.jsonl:1: bad JSON"):
        ex.exam(embedded_model(), bad)


# ---------------------------------------------------------------- the real model

@pytest.fixture(scope="module")
def loaded():
    return inf.load(embedded_model())


def test_prompt_ids_equal_what_swift_trains_on(loaded):
    example = data.read_rows(DATA / "test.jsonl")[0]
    prompt = inf.encode_prompt(loaded.template, example)
    trainer = inf.swift_template(embedded_model().path, "llama", "chatml")
    trainer.set_mode("train")
    encoded = trainer.encode(example)
    first_label = next(k for k, label in enumerate(encoded["labels"]) if label != -100)
    assert prompt == encoded["input_ids"][:first_label]
    text = loaded.tokenizer.decode(prompt)
    assert text.startswith("<|im_start|>user\n#Output#") and text.endswith("<|im_start|>assistant\n")


def test_tiny_real_exam_batched_equals_one_by_one(loaded, tmp_path):
    out = tmp_path / "exam.json"
    result = ex.exam(None, DATA / "test.jsonl", limit=2, max_new_tokens=16, save_to=out, loaded=loaded,
                     progress=False)
    assert result.n == 2 and out.is_file() and all(i.response for i in result.items)
    loop = ex.lesson_loop_exam(None, DATA / "test.jsonl", limit=2, max_new_tokens=16, loaded=loaded)
    assert [i.response for i in loop.items] == [i.response for i in result.items]
    # the base model explains at length: 16 tokens cut every answer off, and the table says so
    assert [i.cut for i in result.items] == [True, True] and result.cut_count == 2
    assert "2 cut off at 16 tokens" in result.summary()
    assert result._repr_html_().count("(cut off at 16 tokens)") == 2


def test_an_answer_that_ends_by_itself_is_not_cut(loaded):
    prompt = inf.encode_prompt(loaded.template, {"messages": [{"role": "user", "content": "Say only: yes"}]})
    (text, cut), = inf.generate_ends(loaded, [prompt], 200)
    assert text and not cut


def test_exam_threads_follow_what_other_processes_use_now():
    """A process busy on one core right now leaves the exam the other cores, whatever the load average says."""
    import os
    import subprocess
    import sys

    cores = os.cpu_count() or 1
    spinner = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 20: pass"])
    try:
        time.sleep(0.5)
        busy = inf.cpu_threads(sample_s=0.5)
    finally:
        spinner.kill()
        spinner.wait()
    assert 1 <= busy <= max(1, cores - 1)
    time.sleep(0.5)
    assert inf.cpu_threads(sample_s=0.5) >= busy  # the spinner is gone: at least as many threads


def test_misses_names_the_first_wrong_step_and_why():
    rows = data.read_rows(DATA / "test.jsonl")
    q = [data.question_of(r) for r in rows[:3]]
    result = sc.ExamResult([
        sc.ExamItem(q[0], "78", "Day 1 = 240 ÷ 8 = 32 pages.\nDay 2 = 240 ÷ 5 = 48 pages.\n\n{{ans:80}}", 0, False, True),
        sc.ExamItem(q[1], "400", "Width = 150 - 100 = 50 cm.\nPerimeter = 150 + 50 = 200 cm.\n\n{{ans:200}}", 0, False, True),
        sc.ExamItem(q[2], "60", "It is 60", 0.5, False, False),
    ])
    table = ex.misses(result, DATA / "test.jsonl")
    lines = table.splitlines()
    assert "`Day 1 = 240 ÷ 8 = 32 pages.`" in lines[2] and "`Day 1 = 240 ÷ 8 = 30 pages.`" in lines[2]
    assert "arithmetic slip" in lines[2]
    assert "wrong formula" in lines[3] and "(150 + 50) × 2" in lines[3]
    assert "format was not followed" in lines[4]
    # a slip inside a worked-out line, or in a line with no label, is still the right formula
    for said, ref in [("May: 31 - 9 + 1 = 20 + 1 = 21 days.", "May: 31 - 9 + 1 = 22 + 1 = 23 days."),
                      ("LCM(3, 4) = 8.", "LCM(3, 4) = 12.")]:
        assert "arithmetic slip" in sc.first_wrong_step(said, ref)[2], said
    assert "wrong formula" in sc.first_wrong_step("One part = 25 ÷ 8 = 3.", "One part = 25 ÷ 5 = 5.")[2]
    right = sc.ExamResult([sc.ExamItem(q[0], "78", "x\n\n{{ans:78}}", 1, True, True)])
    assert ex.misses(right, DATA / "test.jsonl") == "Every answer is right."


def test_wording_split_tells_new_numbers_from_new_wording(tmp_path):
    from helpers import data

    assert data.wording("A field of 18 m by 6.5 m, 3/4 of it") == "A field of # m by # m, # of it"
    train = tmp_path / "train.jsonl"
    train.write_text(json.dumps(data.to_row("Tom has 3 apples and buys 4. How many?", "3 + 4 = 7\n\n{{ans:7}}")) + "\n")
    rows = [row("Tom has 5 apples and buys 2. How many?", 7), row("A farm has 9 cows; 2 leave. How many stay?", 7)]
    base = sc.score_responses(rows, ["I think 7", "Maybe 8"])
    tuned = sc.score_responses(rows, ["{{ans:7}}", "9 - 2 = 7\n\n{{ans:7}}"])
    table = ex.wording_split(base, tuned, train)
    assert "| same wording as a training question, new numbers | 1 | 0 / 100 % | 100 / 100 % |" in table
    assert "| new wording | 1 | 0 / 0 % | 100 / 100 % |" in table
