"""'Ask your model' (helpers/ask.py): same prompt as the exam, answers side by side, verdicts, widget."""

import json
from types import SimpleNamespace

import problems
import pytest

import helpers.ask as ask
import helpers.data as data
import helpers.exams as ex
import helpers.inference as inf

QUESTION = "A box holds 6 pencils. How many pencils are in 7 boxes?"


def test_prompt_row_is_the_training_user_message_without_an_answer():
    row = ask.prompt_row(f"  {QUESTION}\n")
    expected = data.to_row(QUESTION, "unused")
    assert [m["role"] for m in row["messages"]] == ["system", "user"]
    assert row["messages"] == expected["messages"][:2]
    assert data.INSTRUCTION in row["messages"][1]["content"]  # whatever the instruction says today
    assert row["messages"][1]["content"].endswith(QUESTION)


@pytest.mark.parametrize("response, tag", [
    ("6 × 7 = 42.\n\n{{ans:42}}", "42"),
    ("{{ans: 40}} no, {{ans: 42 }}", "42"),
    ("the answer is 42", None),
])
def test_tagged_answer_is_the_last_tag(response, tag):
    assert ask.tagged_answer(response) == tag


def test_answer_verdict_uses_the_strict_rule():
    assert ask.Answer("m", "{{ans:42}}", "42").correct is True
    assert ask.Answer("m", "so 420 pencils {{ans:420}}", "42").correct is False  # seed rule would give ½
    assert ask.Answer("m", "{{ans:1,200}}", "1200").correct is True
    no_expected = ask.Answer("m", "{{ans:42}}")
    assert no_expected.correct is None and "expected" in no_expected.verdict()


class FakeLoaded(SimpleNamespace):
    pass


@pytest.fixture
def fake_models(monkeypatch):
    """Replace model loading and generation: records what the exam code was called with."""
    calls = {"load": [], "prompts": []}

    def load_for_exam(source):
        calls["load"].append(source)
        return FakeLoaded(name=source, template=SimpleNamespace(encode=lambda r: {"input_ids": [len(json.dumps(r))]}))

    def generate(loaded, prompts, max_new_tokens, tool=False):
        calls["prompts"].append((loaded.name, prompts, max_new_tokens))
        calls.setdefault("tool", []).append(tool)
        return ["6 × 7 = 42.\n\n{{ans:42}}" if loaded.name == "tuned" else "I think 13 <b>pencils</b>"]

    monkeypatch.setattr(inf, "load", load_for_exam)
    monkeypatch.setattr(inf, "generate", generate)
    return calls


def test_asker_loads_each_model_once_and_uses_the_exam_prompt(fake_models):
    asker = ask.Asker("base", "tuned", max_new_tokens=7)
    first = asker.ask(QUESTION, 42)
    second = asker.ask("Another question?", "")
    assert fake_models["load"] == ["base", "tuned"]  # loaded on first use, never again
    want_ids = inf.encode_prompt(SimpleNamespace(encode=lambda r: {"input_ids": [len(json.dumps(r))]}),
                                ask.prompt_row(QUESTION))
    assert fake_models["prompts"][0] == ("base", [want_ids], 7)
    assert [a.model for a in first] == ["base model", "fine-tuned"]
    assert [a.correct for a in first] == [False, True]
    assert [a.correct for a in second] == [None, None]


def test_a_model_trained_with_the_calculator_answers_with_it_and_without_it(fake_models):
    asker = ask.Asker("base", "tuned", tuned_label="exp6", calculator=True)
    answers = asker.ask(QUESTION, 42)
    assert [a.model for a in answers] == ["base model", "exp6 with the calculator", "exp6 without it"]
    assert fake_models["tool"] == [False, True, False]
    assert fake_models["load"] == ["base", "tuned"]  # the tuned model is loaded once for both


def test_empty_question_is_refused(fake_models):
    with pytest.raises(ValueError, match="fix"):
        ask.Asker("base", "tuned").ask("   ")


def test_answers_html_escapes_marks_the_tag_and_shows_verdicts(fake_models):
    answers = ask.Asker("base", "tuned").ask(QUESTION, 42)
    page = ask.answers_html(QUESTION, answers)
    assert "<b>pencils</b>" not in page and "&lt;b&gt;pencils" in page
    assert "<mark>{{ans:42}}</mark>" in page and "<code>{{ans:42}}</code>" in page
    assert "no {{ans:}} tag" in page
    assert page.count("ftlab-verdict") == 2 and "✅ right" in page and "❌ wrong" in page
    assert "expected:</b> 42" in page


def test_widget_answers_the_example_at_once_and_again_on_click(fake_models):
    box = ask.ask_widget(ask.Asker("base", "tuned"), QUESTION, 42)
    bundle = box._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "✅ right" in bundle["text/html"] and "stored example" in bundle["text/html"]  # static fallback
    assert bundle["text/plain"].splitlines()[0] == f"Question: {QUESTION}"
    box.question.value = "Tom has 3 apples and buys 5 more. How many now?"
    box.expected.value = "8"
    box.button.click()
    assert "Tom has 3 apples" in box.output.value and box.output.value.count("❌ wrong") == 2
    assert not box.button.disabled
    box.question.value = ""
    box.button.click()
    assert "fix" in box.output.value  # the error is shown in the widget, not lost


def test_ask_your_model_prefills_the_lessons_radish_field(fake_models, monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda obj: shown.append(obj))
    box = ask.ask_your_model(SimpleNamespace(name="smol"), SimpleNamespace(label="exp5"), max_new_tokens=5)
    demo = problems.demo_problem()
    assert shown == [box] and box.question.value == demo.question and box.expected.value == str(demo.answer)
    assert "base (smol)" in box.output.value and "fine-tuned (exp5)" in box.output.value


@pytest.fixture(scope="module")
def zero_adapter(tmp_path_factory):
    """A real PEFT adapter on the embedded model whose update B·A is zero (B starts at 0): base + adapter
    must answer exactly like the base model."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from helpers.models import embedded_model

    m = embedded_model()
    folder = tmp_path_factory.mktemp("adapter") / "checkpoint-1"
    base = AutoModelForCausalLM.from_pretrained(m.path, dtype=torch.float32)
    get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj", "v_proj"])).save_pretrained(folder)
    (folder / "args.json").write_text(json.dumps({"model": str(m.path), "model_type": m.model_type,
                                                  "template": m.template}))
    return m, folder


def test_real_model_answers_like_the_exam(zero_adapter, tmp_path):
    m, adapter = zero_adapter
    demo = problems.demo_problem()
    data = tmp_path / "one.jsonl"
    data.write_text(json.dumps(demo.row(), ensure_ascii=False) + "\n", encoding="utf-8")
    asker = ask.Asker(m, adapter, max_new_tokens=12)
    base, tuned = asker.ask(demo.question, demo.answer)
    by_exam = ex.exam(m, data, max_new_tokens=12, save_to=False, progress=False, loaded=asker.model("base model"))
    assert base.response == by_exam.items[0].response  # same prompt, template and greedy generation
    assert tuned.response == base.response  # B = 0: the adapter changes nothing yet
