"""The decoder with the calculator, on the real embedded model: a call the model closes gets its result written
after it, and batched answers are the same as one question at a time."""

import pytest

from helpers import calculator, inference, models
from helpers.data import read_rows
from helpers.paths import DATA_DIR

pytestmark = pytest.mark.timeout(300)

# answers begun with two answered calls and an open third: the model goes on in the pattern and closes it
BEGUN = ["Footballs = <<7 × 26>>182 yuan.\nVolleyballs = <<2 × 25>>50 yuan.\nTotal = <<182 + 50",
         "Area = <<18 × 6 ÷ 2>>54 square meters.\nWeight = <<54 × 12>>648 kg.\nHalf = <<648 ÷ 2",
         "Apples = <<4 × 12>>48.\nPears = <<5 × 11>>55.\nTotal = <<48 + 55"]


@pytest.fixture(scope="module")
def loaded():
    return inference.load(models.get_model())


def test_closed_calls_get_the_calculators_result_and_batching_changes_nothing(loaded):
    rows = read_rows(DATA_DIR / "test.jsonl")[:3]
    prompts = [inference.encode_prompt(loaded.template, r) for r in rows]
    batched = inference.generate_ends(loaded, prompts, 48, tool=True, begun=BEGUN)
    alone = [inference.generate_ends(loaded, [p], 48, tool=True, begun=[b])[0] for p, b in zip(prompts, BEGUN)]
    assert batched == alone
    answered = 0
    for (text, _), begun in zip(batched, BEGUN):
        assert text.startswith(begun.strip())
        new_calls = calculator.calls(text)[2:]  # the third call onwards: closed by the model here
        answered += sum(c.result is not None for c in new_calls)
        assert all(c.written == c.result for c in new_calls if c.result is not None), text
    assert answered >= 2, batched  # the model closed its calls and the calculator answered them
    # without the tool the same model writes its own number after the call
    plain = inference.generate_ends(loaded, [p + loaded.tokenizer.encode(b, add_special_tokens=False)
                                             for p, b in zip(prompts, BEGUN)], 48)
    assert all(isinstance(t, str) for t, _ in plain)


def test_the_budget_counts_the_results_and_a_cut_answer_is_marked(loaded):
    rows = read_rows(DATA_DIR / "test.jsonl")[:1]
    prompts = [inference.encode_prompt(loaded.template, r) for r in rows]
    budget = len(loaded.tokenizer.encode(BEGUN[0], add_special_tokens=False)) + 6  # too few to reach {{ans:}}
    (text, cut), = inference.generate_ends(loaded, prompts, budget, tool=True, begun=BEGUN[:1])
    assert cut and "{{ans:" not in text
    assert len(loaded.tokenizer.encode(text, add_special_tokens=False)) <= budget + 1  # the result counted


def test_sampled_answers_come_n_per_prompt_and_read_like_greedy_ones(loaded):
    """inference.sample (how often a model is right when it samples, as GRPO does): N answers per prompt, in the
    prompts' order, reproducible under one seed, and decoded like the greedy answers (a near-zero temperature gives
    exactly them)."""
    import torch

    rows = read_rows(DATA_DIR / "test.jsonl")[:2]
    prompts = [inference.encode_prompt(loaded.template, r) for r in rows]
    torch.manual_seed(0)
    first = inference.sample(loaded, prompts, 3, 24)
    torch.manual_seed(0)
    assert inference.sample(loaded, prompts, 3, 24) == first
    assert [len(a) for a in first] == [3, 3] and len({a for answers in first for a in answers}) > 1
    greedy = inference.generate(loaded, prompts, 24)
    assert inference.sample(loaded, prompts, 2, 24, temperature=1e-4) == [[g, g] for g in greedy]
