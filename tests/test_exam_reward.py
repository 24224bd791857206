"""The GRPO reward plugin (helpers/swift_plugins/exam_reward.py): the exam's strict rule, imported, and safe on
whatever a sampling model writes."""

import importlib.util
import json

import pytest

from helpers import paths, scoring

PLUGIN = paths.COURSE_ROOT / "helpers" / "swift_plugins" / "exam_reward.py"


@pytest.fixture(scope="module")
def plugin():
    """Loaded by its path, as `swift rlhf --external_plugins` loads it."""
    spec = importlib.util.spec_from_file_location("ftlab_exam_reward_test", PLUGIN)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_rewards_are_registered_under_the_names_the_command_uses(plugin):
    from swift.rewards import orms

    assert orms["ftlab_correct"] is plugin.ExamCorrect and orms["ftlab_format"] is plugin.ExamFormat


def test_the_reward_is_the_exams_rule_not_a_copy(plugin):
    assert plugin.strict_correct is scoring.strict_correct and plugin.has_format is scoring.has_format


@pytest.mark.parametrize("completion, solution, want", [
    ("Area = 18 × 6 ÷ 2 = 54 square meters.\n\n{{ans:54}}", "54", 1.0),
    ("Total = 1,200 yuan.\n\n{{ans: 1,200 }}", "1200", 1.0),  # the exam's tolerances
    ("Area = 54.\n\n{{ans:55}}", "54", 0.0),  # wrong number
    ("", "54", 0.0),  # empty
    (None, "54", 0.0),  # nothing generated
    ("The answer is 54.", "54", 0.0),  # right number, no tag: the exam gives nothing either
    ("{{ans:54}} ... no, {{ans:56}}", "54", 0.0),  # two tags: the last one counts
    ("{{ans:56}} ... no, {{ans:54}}", "54", 1.0),
    ("{{ans:" + "9" * 5000 + "}}", "54", 0.0),  # a huge number
    ("{{ans:1e999999999}}", "54", 0.0),  # an exponent that would overflow a float
    ("{{ans:NaN}}", "54", 0.0),
    ("{{ans:}}", "54", 0.0),
    ("{{ans:54", "54", 0.0),  # a tag that never closes (cut off)
])
def test_correctness_reward_on_what_a_sampling_model_writes(plugin, completion, solution, want):
    got = plugin.ExamCorrect()(completions=[completion], solution=[solution])
    assert got == [want]
    assert want == float(scoring.strict_correct(completion or "", solution))


def test_format_reward_asks_for_a_tag_holding_a_number(plugin):
    got = plugin.ExamFormat()(completions=["x\n\n{{ans:54}}", "{{ans:many}}", "54", "", None])
    assert got == [1.0, 0.0, 0.0, 0.0, 0.0]


def test_a_whole_group_is_scored_against_its_own_solutions(plugin):
    completions = ["{{ans:4770}}", "{{ans:4700}}", "{{ans:232}}", "{{ans:231}}"]
    assert plugin.ExamCorrect()(completions=completions, solution=["4770", "4770", "232", "232"]) == [1, 0, 1, 0]


def test_data_without_the_answer_column_is_refused_in_one_sentence(plugin):
    with pytest.raises(ValueError, match="no 'solution' column") as err:
        plugin.ExamCorrect()(completions=["{{ans:1}}"])
    assert "\n" not in str(err.value)


def test_the_reward_agrees_with_the_exam_on_every_recorded_answer(plugin):
    """One definition of "correct": the recorded fine-tuned model's exam_100 answers, rewarded as the exam scored them."""
    kept = json.loads((paths.RECORDINGS_DIR / "cpu" / "exams.json").read_text(encoding="utf-8"))
    items = kept["tuned_100"]["items"]
    rewards = plugin.ExamCorrect()(completions=[i["response"] for i in items], solution=[i["expected"] for i in items])
    assert rewards == [float(i["strict"]) for i in items]
    assert 0 < sum(rewards) < len(items)  # a real mix of right and wrong answers
