"""Ask your model: one question of your own, the base and the fine-tuned answer side by side.

    from helpers.ask import ask_your_model
    asker = ask_your_model(model, best_run, max_new_tokens=EXAM["max_new_tokens"])

Everything the exam does is reused, not copied: the question is wrapped in the training data's user
message (`data.prompt_row`), loaded, encoded and answered greedily by `inference` as in the exam, and
judged by the strict rule (`scoring.strict_correct`). So what you see here is what the exam would have scored.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from . import data, inference, paths, scoring
from .cards import answer_html
from .data import prompt_row, tagged_answer
from .quiz import WithFallback


@dataclass
class Answer:
    model: str
    response: str
    expected: str | None = None

    @property
    def tag(self) -> str | None:
        return tagged_answer(self.response)

    @property
    def correct(self) -> bool | None:
        """True/False by the strict rule when an expected number was given, else None."""
        if not self.expected:
            return None
        return scoring.strict_correct(self.response, self.expected)

    def verdict(self) -> str:
        if self.correct is None:
            return "give the expected number to check"
        return "✅ right" if self.correct else "❌ wrong"


class Asker:
    """Loads each model once (on first use) and answers questions with the exam's prompt and settings.

    A fine-tuned model trained on the calculator data (`calculator=None` finds out) answers twice: with the
    calculator answering its calls, and without it, writing each result itself."""

    def __init__(self, base, tuned, max_new_tokens: int = 128, base_label: str = "base model",
                 tuned_label: str = "fine-tuned", calculator: bool | None = None):
        calculator = inference.uses_calculator(tuned) if calculator is None else calculator
        self.sources = {base_label: (base, False)}
        if calculator:
            self.sources.update({f"{tuned_label} with the calculator": (tuned, True),
                                 f"{tuned_label} without it": (tuned, False)})
        else:
            self.sources[tuned_label] = (tuned, False)
        self.max_new_tokens = max_new_tokens
        self._loaded: dict[int, object] = {}

    def model(self, label: str):
        """The model that answers as `label`, loaded on first use (once for the tuned one with and without the tool)."""
        source = self.sources[label][0]
        if id(source) not in self._loaded:  # the tuned model with and without the calculator: loaded once
            self._loaded[id(source)] = inference.load(source)
        return self._loaded[id(source)]

    def ask(self, question: str, expected: str | int | None = None) -> list[Answer]:
        """Both answers to one question (base first). An empty question is refused with the fix."""
        if not question or not question.strip():
            raise ValueError("the question is empty — fix: type a word problem first")
        row = prompt_row(question)
        want = str(expected).strip() if expected is not None and str(expected).strip() else None
        answers = []
        with inference.threads(None):
            for label in self.sources:
                loaded = self.model(label)
                ids = inference.encode_prompt(loaded.template, row)
                text = inference.generate(loaded, [ids], self.max_new_tokens, tool=self.sources[label][1])[0]
                answers.append(Answer(label, text, want))
        return answers


# ---------------------------------------------------------------- showing answers


def answers_html(question: str, answers: list[Answer]) -> str:
    """Two (or more) columns: the model's text with its tag marked, the extracted tag, the verdict."""
    cells = []
    for a in answers:
        tag = f"<code>{{{{ans:{html.escape(a.tag)}}}}}</code>" if a.tag is not None else "<i>no {{ans:}} tag</i>"
        cells.append(
            "<td style='vertical-align:top;text-align:left;padding:6px;border:1px solid #ccc;width:50%'>"
            f"<b>{html.escape(a.model)}</b><br>{answer_html(a.response)}"
            f"<p>extracted: {tag} &nbsp; <span class='ftlab-verdict'>{a.verdict()}</span></p></td>")
    want = answers[0].expected if answers else None
    head = f"<p><b>Question:</b> {html.escape(question.strip())}"
    head += f" &nbsp; <b>expected:</b> {html.escape(want)}</p>" if want else "</p>"
    return f"<div class='ftlab-ask'>{head}<table style='width:100%'><tr>{''.join(cells)}</tr></table></div>"


def answers_text(question: str, answers: list[Answer]) -> str:
    lines = [f"Question: {question.strip()}"]
    for a in answers:
        lines.append(f"{a.model}: {{{{ans:{a.tag}}}}} {a.verdict()}" if a.tag is not None
                     else f"{a.model}: no {{{{ans:}}}} tag, {a.verdict()}")
    return "\n".join(lines)


def ask_widget(asker: Asker, question: str, expected=None):
    """Question box, expected-number box, a button, and both answers; the example is answered at once
    so a saved notebook shows real answers (its HTML fallback) even where widgets do not render."""
    import ipywidgets as widgets

    first = asker.ask(question, expected)
    q_box = widgets.Textarea(value=question, description="Question", rows=3,
                             layout=widgets.Layout(width="95%"), style={"description_width": "initial"})
    want_box = widgets.Text(value="" if expected is None else str(expected), description="Expected number",
                            placeholder="optional, e.g. 648", style={"description_width": "initial"})
    button = widgets.Button(description="Ask both models", button_style="primary", icon="comments")
    out = widgets.HTML(answers_html(question, first))

    def on_click(_):
        button.disabled = True
        out.value = "<p class='ftlab-thinking'><i>Both models are answering…</i></p>"
        try:
            out.value = answers_html(q_box.value, asker.ask(q_box.value, want_box.value))
        except Exception as e:  # noqa: BLE001 - show any failure in the widget instead of losing it
            out.value = f"<p style='color:#b00'>{html.escape(str(e))}</p>"
        finally:
            button.disabled = False

    button.on_click(on_click)
    fallback = (answers_html(question, first) + "<p><i>A stored example. With a running kernel (JupyterLab), "
                "type your own question above the button and press it.</i></p>")
    box = WithFallback([q_box, widgets.HBox([want_box, button]), out], fallback=fallback,
                       plain=answers_text(question, first))
    box.asker, box.question, box.expected, box.button, box.output = asker, q_box, want_box, button, out
    return box


def ask_your_model(base, tuned, max_new_tokens: int = 128, question: str | None = None, expected=None,
                   calculator: bool | None = None):
    """Display the Ask widget for base vs tuned (a Model, a Run, or model/checkpoint folders).

    With no question, the lesson's radish-field problem (answer 648) is pre-filled and answered.
    """
    from IPython.display import display

    if question is None:
        demo = data.read_rows(paths.DATA_DIR / "demo.jsonl")[0]
        question, expected = data.question_of(demo), data.expected_answer(demo)
    tuned_label = f"fine-tuned ({getattr(tuned, 'label', None) or 'adapter'})"
    base_label = f"base ({getattr(base, 'name', None) or 'model'})"
    box = ask_widget(Asker(base, tuned, max_new_tokens, base_label, tuned_label, calculator), question, expected)
    display(box)
    return box
