"""The calculator the fine-tuned model calls: arithmetic only, exact, bounded; anything else is refused."""

from fractions import Fraction

import pytest

from helpers import calculator
from helpers.calculator import CalculatorError, evaluate


def test_arithmetic_is_exact_with_the_lesson_symbols():
    assert evaluate("18 × 6 ÷ 2") == 54
    assert evaluate("(148 + 84) × 2") == 464
    assert evaluate("91 ÷ (2 + 5)") == 13
    assert evaluate("30 - 23 + 1") == 8  # left to right
    assert evaluate("2 + 3 × 4") == 14  # × before +
    assert evaluate("-3 + 5") == 2
    assert evaluate("1 ÷ 3") == Fraction(1, 3)
    assert evaluate("2.5 × 4") == 10  # a decimal is exact, not a binary float
    assert evaluate("0.1 + 0.2") == Fraction(3, 10)
    assert evaluate("1,000 × 3") == 3000  # a thousands separator


@pytest.mark.parametrize("text", [
    "__import__('os').system('echo hi')",  # a call
    "x + 1",  # a name
    "(1).real",  # an attribute
    "2 ** 100000",  # a huge power
    "9 ** 9 ** 9",
    "10 // 3",  # floor division is not the lesson's ÷
    "[1, 2]", "1 if 1 else 2", "lambda: 1", "'12'", "",  # not arithmetic at all
    "1 ÷ 0",  # no value
    "1 +",  # incomplete
    "9" * 16,  # a number over the bound
    "999999999 × 999999999 × 999999999",  # a result over the bound
    "1 + " * 30 + "1",  # a call over the length bound
])
def test_anything_but_bounded_arithmetic_is_refused(text):
    with pytest.raises(CalculatorError):
        evaluate(text)


def test_results_are_written_as_the_data_writes_them():
    assert calculator.show(Fraction(54)) == "54"
    assert calculator.show(Fraction(5, 2)) == "2.5"
    assert calculator.show(Fraction(1, 3)) == "1/3"
    assert calculator.show(Fraction(-7, 4)) == "-1.75"


def test_the_decoder_answers_only_a_call_just_closed():
    assert calculator.answer("Area = <<18 × 6 ÷ 2>>") == "54"
    assert calculator.answer("Area = <<18 × 6 ÷ 2>>54 square") is None  # answered already
    assert calculator.answer("Area = 18 × 6>>") is None  # no call opened
    assert calculator.answer("Area = <<18 × x>>") is None  # malformed: left as written


def test_calls_lists_each_call_its_result_and_what_was_written_after_it():
    found = calculator.calls("Area = <<18 × 6 ÷ 2>>54 m.\nWeight = <<54 × 12>>640 kg.\nBad = <<a>>3")
    assert [(c.expression, c.result, c.written) for c in found] == [
        ("18 × 6 ÷ 2", "54", "54"), ("54 × 12", "648", "640"), ("a", None, "3")]


def test_an_exam_table_shows_each_call_and_its_result():
    from helpers import scoring
    from helpers.cards import ExamReport
    from helpers.data import read_rows
    from helpers.paths import DATA_DIR

    row = read_rows(DATA_DIR / "demo.jsonl")[0]  # the radish field, answer 648
    with_tool = "Area = <<18 × 6 ÷ 2>>54 square meters.\nWeight = <<54 × 12>>648 kg.\n\n{{ans:648}}"
    without = "Area = <<18 × 6 ÷ 2>>54 square meters.\nWeight = <<54 × 12>>640 kg.\n\n{{ans:640}}"
    tooled = scoring.score_responses([row], [with_tool], ExamReport, settings={"tool": True})
    plain = scoring.score_responses([row], [without], ExamReport, settings={"tool": False})
    assert tooled.calls == (2, 0) and tooled.strict_score == 100 and plain.strict_score == 0
    assert "2 calculator calls (answered by the calculator)" in tooled.summary()
    assert "the model wrote each result" in plain.summary()
    page = plain._repr_html_()
    assert "calculator calls" in page and "54 × 12 = 648 (written: 640)" in page
    assert "<code class='ftlab-call'>&lt;&lt;54 × 12&gt;&gt;</code>" in page  # the call marked, safely escaped
