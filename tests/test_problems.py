"""The word-problem generator: deterministic, correct by an independent check, disjoint splits."""

import json
import random
from collections import Counter

import problems
import pytest
from problems import FAMILIES

from helpers import data

LESSON_ANSWERS = [78, 400, 60, 7, 25, 15, 30, 33, 364, 600]


@pytest.fixture(scope="module")
def splits():
    return problems.generate_splits()


def test_at_least_25_families():
    assert len(FAMILIES) >= 25


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_family_answer_matches_independent_check(name):
    fam = FAMILIES[name]
    for seed in range(300):
        p = fam.make(random.Random(seed))
        assert isinstance(p.answer, int) and p.answer > 0, (name, p.params)
        assert p.answer == fam.check(p.params), (name, p.params, p.answer)
        assert str(p.answer) in p.steps[-1], "the last step must show the answer"
        assert all(len(step) < 90 for step in p.steps), "steps stay short: one formula per line"


def test_same_seed_same_problems():
    fam = FAMILIES["calendar_days"]
    assert [fam.make(random.Random(5)).question for _ in range(3)] == [fam.make(random.Random(5)).question] * 3
    assert problems.generate_splits(1)["val"][0].question != problems.generate_splits(2)["val"][0].question


def test_lesson_exam_and_demo_facts():
    assert [p.answer for p in problems.lesson_test_problems()] == LESSON_ANSWERS
    for p in problems.lesson_test_problems() + [problems.demo_problem()]:
        assert p.answer == FAMILIES[p.family].check(p.params)
    assert problems.demo_problem().answer == 648
    assert "May 9" in problems.lesson_test_problems()[7].question


def test_written_files_are_reproducible_and_committed(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    problems.main(["--out", str(first)])
    problems.main(["--out", str(second)])
    for path in sorted(first.iterdir()):
        assert path.read_bytes() == (second / path.name).read_bytes()
        committed = problems.DATA_DIR / path.name
        assert committed.read_bytes() == path.read_bytes(), f"{committed} is stale: run python tools/problems.py"


def test_split_sizes(splits):
    sizes = {name: len(rows) for name, rows in splits.items()}
    assert sizes == {"exam_100": 100, "val": 100, "train_1k": 1000, "train_100": 100, "test": 10, "demo": 1}
    assert splits["train_100"] == splits["train_1k"][:100]


def test_splits_share_no_question(splits):
    held = ["test", "demo", "train_1k", "val", "exam_100"]  # train_100 is a prefix of train_1k by design
    owner = {}
    for name in held:
        for p in splits[name]:
            assert p.question not in owner, f"{p.question!r} in {owner.get(p.question)} and {name}"
            owner[p.question] = name


def test_every_family_in_train_and_exam_and_exam_balanced(splits):
    for name in ("train_1k", "exam_100"):
        assert {p.family for p in splits[name]} == set(FAMILIES)
    counts = Counter(p.family for p in splits["exam_100"]).values()
    assert max(counts) - min(counts) <= 1


def test_row_format_exactly_the_course_one():
    for path in sorted(problems.DATA_DIR.glob("*.jsonl")):
        assert data.validate_file(path) == [], path
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant"]
            assert row["messages"][0]["content"] == ""
            user = row["messages"][1]["content"]
            assert user.startswith("#Output#\n") and "\n#Math Problem#\n" in user and "{{ans:" in user
            answer = row["messages"][2]["content"]
            assert answer.endswith("}}") and "\n\n{{ans:" in answer
            assert json.dumps(row, ensure_ascii=False) == line


def test_rows_are_short_for_a_small_model():
    from transformers import AutoTokenizer

    from helpers.models import embedded_model

    tok = AutoTokenizer.from_pretrained(embedded_model().path)
    # chatml exactly as ms-swift renders it for these rows: the empty system turn adds no block
    texts = [f"<|im_start|>user\n{r['messages'][1]['content']}<|im_end|>\n<|im_start|>assistant\n"
             f"{r['messages'][2]['content']}<|im_end|>\n" for r in data.read_rows(problems.DATA_DIR / "train_1k.jsonl")]
    lengths = [len(ids) for ids in tok(texts)["input_ids"]]
    assert max(lengths) <= 192, "the data card promises --max_length 192 keeps every row"


def test_card_table_lists_every_family():
    table = problems.card_table()
    assert all(f"| {name} |" in table for name in FAMILIES)
    assert "| **total** | 1 | 10 | 100 | 1000 | 100 | 100 |" in table


def test_data_card_table_is_current():
    assert problems.card_table() in (problems.DATA_DIR.parent / "README.md").read_text(encoding="utf-8")


def test_no_number_in_the_prompt_is_an_answer(splits):
    """An example number in the instruction would hand out credit whenever it is an answer: none may be."""
    import re

    answers = {p.answer for rows in splits.values() for p in rows}
    for path in sorted(problems.DATA_DIR.glob("*.jsonl")):
        for line_no, row in enumerate(data.read_rows(path), 1):
            user = row["messages"][1]["content"]
            prompt = user.partition("#Math Problem#")[0]  # everything the model sees besides the question
            leaked = {int(n) for n in re.findall(r"\d+", prompt)} & answers
            assert not leaked, f"{path.name}:{line_no}: prompt number(s) {sorted(leaked)} are answers in the data"
    assert not re.search(r"\d", data.INSTRUCTION), "the instruction shows the tag without an example number"


@pytest.mark.parametrize("name", sorted(problems.REWORDINGS))
def test_rewordings_keep_every_number_of_the_exercise(name):
    """Another wording must ask the same exercise: every number of the first wording appears in it."""
    import re

    fam = FAMILIES[name]
    for seed in range(50):
        p = fam.make(random.Random(seed))
        wanted = Counter(re.findall(r"\d+", p.question))
        for wording in problems.REWORDINGS[name]:
            text = wording(p.params)
            assert not wanted - Counter(re.findall(r"\d+", text)), (name, p.question, text)
            assert text != p.question


def test_training_rows_use_several_wordings_and_held_out_splits_one(splits):
    reworded = [p for p in splits["train_1k"] if p.question != FAMILIES[p.family].problem(p.params).question]
    assert {p.family for p in reworded} == set(problems.REWORDINGS)
    for split in ("exam_100", "val"):
        assert all(p.question == FAMILIES[p.family].problem(p.params).question for p in splits[split])


def _stages(step: str) -> list[str]:
    """The arithmetic stages of a solution line: 'Area = 18 × 6 ÷ 2 = 108 ÷ 2 = 54 m².' -> ['18 × 6 ÷ 2', '108 ÷ 2', '54']."""
    parts = step.rstrip(".").split(" = ")
    parts[0] = parts[0].rpartition(": ")[2]
    stages = [p for p in parts if p and set(p) <= set("0123456789 ×÷+-()")]
    last = parts[-1].split(" ")[0]
    if last.isdigit() and parts[-1] not in stages:
        stages.append(last)
    return stages


def _value(expr: str) -> int:
    return eval(expr.replace("×", "*").replace("÷", "//"))  # noqa: S307 - our own digits and operators only


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_every_written_calculation_is_right_and_does_one_operation_at_a_time(name):
    """Each `=` of a worked line keeps the value, and between two `=` exactly one operation is carried out:
    the model never has to do two sums in its head (18 × 6 ÷ 2 = 108 ÷ 2 = 54)."""
    ops = lambda s: sum(s.count(o) for o in "×÷+-")  # noqa: E731
    fam = FAMILIES[name]
    for seed in range(200):
        for step in fam.make(random.Random(seed)).steps:
            if " remainder " in step:
                continue
            stages = _stages(step)
            assert len({_value(s) for s in stages}) <= 1, step
            for before, after in zip(stages, stages[1:]):
                assert ops(before) - ops(after) == 1, (step, before, after)


def test_one_operation_per_step():
    assert problems.worked("(150 + 50) × 2") == ["(150 + 50) × 2", "200 × 2", "400"]
    assert problems.worked("31 - 9 + 1") == ["31 - 9 + 1", "22 + 1", "23"]
    assert problems.one_step_at_a_time("Area = 18 × 6 ÷ 2 = 54 square meters.") == \
        "Area = 18 × 6 ÷ 2 = 108 ÷ 2 = 54 square meters."
    assert problems.one_step_at_a_time("LCM(3, 4) = 12.") == "LCM(3, 4) = 12."
    with pytest.raises(ValueError, match="the solution line says"):
        problems.one_step_at_a_time("Area = 18 × 6 ÷ 2 = 55 square meters.")


def test_calculator_lines_hand_each_calculation_to_the_tool():
    assert problems.with_calculator("Area = 18 × 6 ÷ 2 = 108 ÷ 2 = 54 square meters.") == \
        "Area = <<18 × 6 ÷ 2>>54 square meters."
    assert problems.with_calculator("June: 30 - 20 + 1 = 10 + 1 = 11 days.") == "June: <<30 - 20 + 1>>11 days."
    assert problems.with_calculator("9 kg = 9 × 1000 = 9000 g.") == "9 kg = <<9 × 1000>>9000 g."
    for kept in ("LCM(3, 4) = 12.", "73 ÷ 6 = 12 remainder 1.", "9:50 to 13:10 = 3 hours 20 minutes.", "July: 4 days."):
        assert problems.with_calculator(kept) == kept  # the calculator does no LCM, remainder or clock
    with pytest.raises(ValueError, match="the calculator gives"):
        problems.with_calculator("Area = 18 × 6 ÷ 2 = 55 square meters.")


@pytest.mark.parametrize("split", problems.CALCULATOR_SPLITS)
def test_calculator_files_are_the_same_rows_with_every_call_right(split):
    """Same questions in the same order as the plain split, the same final answers; every call's written
    result is the calculator's, and with the calls worked out the text is the plain solution's final numbers."""
    from helpers import calculator

    plain = data.read_rows(problems.DATA_DIR / f"{split}.jsonl")
    calc = data.read_rows(problems.DATA_DIR / f"{split}{problems.CALCULATOR}.jsonl")
    assert [data.question_of(r) for r in calc] == [data.question_of(r) for r in plain]
    assert [data.expected_answer(r) for r in calc] == [data.expected_answer(r) for r in plain]
    with_calls = 0
    for row in calc:
        answer = data.turn(row, "assistant")
        found = calculator.calls(answer)
        with_calls += bool(found)
        assert all(c.result is not None and c.result == c.written for c in found), answer
    assert with_calls >= 0.8 * len(calc)  # most rows have a calculation the tool can do


def test_no_exam_question_is_in_any_training_file():
    """Read from the committed files, plain and calculator versions alike (numbers and wording both)."""
    exams = {data.question_of(r) for name in ("test", "exam_100", "demo")
             for r in data.read_rows(problems.DATA_DIR / f"{name}.jsonl")}
    for name in ("train_100", "train_1k", "val"):
        for suffix in ("", problems.CALCULATOR):
            trained = {data.question_of(r) for r in data.read_rows(problems.DATA_DIR / f"{name}{suffix}.jsonl")}
            assert not exams & trained, f"{name}{suffix}: {sorted(exams & trained)[:3]}"
