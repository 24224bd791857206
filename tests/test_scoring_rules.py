"""The scoring rules' smaller pieces, each checked on written-out cases (these were the survivors of a mutation
run on helpers/scoring.py: tests that exercised them without looking at what they returned)."""

import pytest

from helpers import scoring as sc


def row(answer: str) -> dict:
    return {"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": f"steps\n\n{{{{ans:{answer}}}}}"}]}


SOLUTION = "Area = 18 × 6 ÷ 2 = 54\nRadishes = 54 × 12 = 648 kg\n{{ans:648}}"


@pytest.mark.parametrize("said,expected", [
    ("Area = 18 × 6 ÷ 2 = 64\nRadishes = 64 × 12 = 768 kg\n{{ans:768}}",
     ("Area = 18 × 6 ÷ 2 = 64", "Area = 18 × 6 ÷ 2 = 54", "arithmetic slip: the right formula, a wrong result")),
    ("Area = 18 × 6 = 108\nRadishes = 108 × 12 = 1296 kg\n{{ans:1296}}",
     ("Area = 18 × 6 = 108", "Area = 18 × 6 ÷ 2 = 54", "wrong formula for the right quantity")),
    ("Half = 9 × 6 = 54\nRadishes = 54 × 12 = 648 kg\n{{ans:648}}",
     ("Half = 9 × 6 = 54", "Area = 18 × 6 ÷ 2 = 54", "another method than the worked solution")),
    ("Area = 18 × 6 ÷ 2 = 54\n{{ans:54}}",
     ("(stopped early)", "Radishes = 54 × 12 = 648 kg", "a step too few or too many")),
    ("Area = 18 × 6 ÷ 2 = 54\nRadishes = 54 × 12 = 648 kg\nCheck = 648 ÷ 12 = 54\n{{ans:648}}",
     ("Check = 648 ÷ 12 = 54", "(no more steps)", "a step too few or too many")),
])
def test_first_wrong_step_names_the_step_the_solutions_step_and_why(said, expected):
    assert sc.first_wrong_step(said, SOLUTION) == expected


def test_steps_ignore_blank_lines_the_tag_and_extra_spaces():
    assert sc.first_wrong_step("  Area =  18 × 6 ÷ 2 = 54 \n\nRadishes = 54 × 12 = 648 kg\n{{ans:648}}", SOLUTION) == \
        ("(stopped early)", "(no more steps)", "a step too few or too many")


@pytest.mark.parametrize("response,expected,inside", [
    ("The answer is 780.", "78", True), ("It gives 1,780 kg", "78", True), ("78 and then 780", "78", False),
    ("So it is 78.", "78", False), ("no numbers", "78", False), ("87", "78", False),
])
def test_inside_bigger_number(response, expected, inside):
    assert sc.inside_bigger_number(response, expected) is inside


def test_a_saved_result_reads_back_whole():
    result = sc.score_responses([row("5"), row("12")], ["<<2 + 3>>5 {{ans:5}}", "about 11 {{ans:11}}"], cut=[False, True],
                                model="exp6", dataset="resources/2_7/test.jsonl", seconds=12.25,
                                settings={"tool": True, "max_new_tokens": 64})
    again = sc.ExamResult.from_json(result.to_json())
    assert again.items == result.items and again.items[1].cut and not again.items[0].cut
    assert (again.model, again.dataset, again.seconds, again.settings) == ("exp6", "resources/2_7/test.jsonl", 12.25,
                                                                          {"tool": True, "max_new_tokens": 64})
    assert again.summary() == result.summary()
    assert result.to_json()["strict_score"] == 50 and result.to_json()["cut"] == 1 and result.to_json()["n"] == 2


@pytest.mark.parametrize("responses,tool,text", [
    (["{{ans:5}}"], False, None),
    (["{{ans:5}}"], True, ", 0 calculator calls (answered by the calculator)"),
    (["<<2 + 3>>5 {{ans:5}}"], True, ", 1 calculator call (answered by the calculator)"),
    (["<<2 + 3>>5 <<5 - 1>>4 {{ans:5}}"], True, ", 2 calculator calls (answered by the calculator)"),
    (["<<2 + 3>>6 {{ans:6}}"], False, ", 1 calculator call (no calculator: the model wrote each result)"),
    (["<<2 +>> <<2 + 3>>5 {{ans:5}}"], True, ", 2 calculator calls (answered by the calculator; 1 malformed)"),
])
def test_the_summary_counts_calculator_calls(responses, tool, text):
    result = sc.score_responses([row("5")] * len(responses), responses, model="m", dataset="d.jsonl",
                                settings={"tool": tool})
    summary = result.summary()
    if text is None:
        assert "calculator" not in summary
    else:
        assert text + ", " in summary, summary


def test_cut_answers_are_counted_in_the_summary_with_the_limit():
    result = sc.score_responses([row("5")] * 3, ["{{ans:5}}", "5 and", "so"], cut=[False, True, True],
                                settings={"max_new_tokens": 112})
    assert ", 2 cut off at 112 tokens" in result.summary() and result.cut_count == 2
    plain = sc.score_responses([row("5")], ["so"], cut=[True])
    assert ", 1 cut off," in plain.summary()


def test_the_saved_form_field_by_field_and_what_an_old_save_lacks():
    """to_json writes every score and each answer as it is; from_json fills what an older save did not keep."""
    result = sc.score_responses([row("5"), row("12")], ["so 5 {{ans:5}}", "12 {{ans:13}}"], cut=[False, True],
                                model="m", dataset="d.jsonl", seconds=3.14159, settings={"max_new_tokens": 8})
    saved = result.to_json()
    assert saved == {"model": "m", "dataset": "d.jsonl", "seconds": 3.14, "settings": {"max_new_tokens": 8},
                     "seed_score": 75, "strict_score": 50, "last_number_score": 50, "format_rate": 100, "cut": 1,
                     "n": 2, "items": [
                         {"question": "q", "expected": "5", "response": "so 5 {{ans:5}}", "seed": 1.0, "strict": True,
                          "format": True, "last_number": True, "cut": False},
                         {"question": "q", "expected": "12", "response": "12 {{ans:13}}", "seed": 0.5, "strict": False,
                          "format": True, "last_number": False, "cut": True}]}
    old = {"items": [{k: v for k, v in i.items() if k not in ("last_number", "cut")} for i in saved["items"]]}
    again = sc.ExamResult.from_json(old)  # saved before the last-number rule and the cut mark
    assert [i.last_number for i in again.items] == [True, False] and [i.cut for i in again.items] == [False, False]
    assert (again.model, again.dataset, again.seconds, again.settings) == ("", "", 0.0, {})
    kept = sc.ExamResult.from_json({"items": [{**saved["items"][1], "last_number": True}]})
    assert kept.items[0].last_number is True  # a saved value wins over recomputing it
    assert again.summary() == ("model on exam (2 questions): seed score 75, strict score 50, last number 50, "
                               "{{ans:}} format 100%, 0 s")
    one = sc.score_responses([row("5")], ["{{ans:5}}"], model="m", dataset="x/d.jsonl", seconds=2.6)
    assert one.summary() == "m on d.jsonl (1 question): seed score 100, strict score 100, last number 100, " \
                            "{{ans:}} format 100%, 3 s"


def test_a_comparison_needs_the_same_questions():
    a = sc.score_responses([row("5")], ["{{ans:5}}"])
    b = sc.ExamResult([sc.ExamItem("another q", "5", "{{ans:5}}", 1.0, True, True)])
    with pytest.raises(ValueError, match="not from the same questions — fix: exam both on the same file"):
        sc.Comparison(a, b)
    assert sc.Comparison(a, a).rows() == [("seed_score", 100, 100), ("strict_score", 100, 100),
                                          ("last_number_score", 100, 100), ("format_rate", 100, 100)]
