"""Quiz questions as ipywidgets, with a static HTML fallback for GitHub and saved notebooks.

`ask(question)` displays one output whose richest form is an interactive widget (JupyterLab with a
kernel) and whose HTML form is the question plus a collapsible answer (GitHub, nbconvert, no kernel).
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import ipywidgets as widgets


@dataclass(frozen=True)
class Question:
    prompt: str
    options: dict[str, str]  # letter -> text
    answer: frozenset[str]  # correct letters
    explanation: str

    @property
    def multiple(self) -> bool:
        return len(self.answer) > 1


def check(question: Question, chosen) -> tuple[bool, str]:
    """Is this choice right? Returns (correct, feedback sentence). `chosen` is a letter or letters."""
    letters = chosen if isinstance(chosen, str) else "".join(chosen)  # "BD" and ["B", "D"] both work
    picked = frozenset(c.upper() for c in letters if c.isalpha())
    if not picked:
        return False, "Pick an answer first."
    if picked == question.answer:
        return True, f"Correct: {''.join(sorted(question.answer))}. {question.explanation}"
    missing, wrong = question.answer - picked, picked - question.answer
    hints = []
    if wrong:
        hints.append(f"{', '.join(sorted(wrong))} is not right")
    if missing:
        hints.append(f"{len(missing)} correct option(s) still missing")
    return False, "Not yet: " + "; ".join(hints) + ". Try again."


def static_html(question: Question) -> str:
    """The question with a <details> answer: readable without a kernel."""
    kind = "several answers" if question.multiple else "one answer"
    items = "".join(f"<li><b>{k}.</b> {html.escape(v)}</li>" for k, v in question.options.items())
    return (
        f"<p><b>{html.escape(question.prompt)}</b> <i>({kind})</i></p><ul>{items}</ul>"
        f"<details><summary>Show the answer</summary><p>Answer: <b>{''.join(sorted(question.answer))}</b>. "
        f"{html.escape(question.explanation)}</p></details>"
    )


QUIZ_PLAIN = "Quiz (open in JupyterLab with a running kernel to answer interactively)"


class WithFallback(widgets.VBox):
    """A VBox whose display bundle also carries static HTML (and a plain-text line) for frontends
    without widgets."""

    def __init__(self, children, fallback: str, plain: str = QUIZ_PLAIN):
        super().__init__(children)
        self._fallback = fallback
        self._plain = plain

    def _repr_mimebundle_(self, **kwargs):
        bundle = super()._repr_mimebundle_(**kwargs)
        bundle["text/html"] = self._fallback
        bundle["text/plain"] = self._plain
        return bundle


def quiz_widget(question: Question):
    """An interactive card: options, a Check button, feedback."""
    labels = [f"{k}. {v}" for k, v in question.options.items()]
    if question.multiple:
        boxes = [widgets.Checkbox(value=False, description=label, indent=False,
                                  layout=widgets.Layout(width="auto")) for label in labels]
        picker = widgets.VBox(boxes)

        def chosen():
            return [b.description[0] for b in boxes if b.value]
    else:
        picker = widgets.RadioButtons(options=labels, value=None, layout=widgets.Layout(width="auto"))

        def chosen():
            return picker.value[0] if picker.value else ""

    button = widgets.Button(description="Check", button_style="primary")
    feedback = widgets.HTML()

    def on_click(_):
        ok, text = check(question, chosen())
        color = "green" if ok else "#b00"
        feedback.value = f"<span style='color:{color}'>{html.escape(text)}</span>"

    button.on_click(on_click)
    kind = "Choose all that apply." if question.multiple else "Choose one."
    header = widgets.HTML(f"<b>{html.escape(question.prompt)}</b> <i>{kind}</i>")
    return WithFallback([header, picker, button, feedback], fallback=static_html(question))


def ask(question: Question):
    """Display the interactive question (with its static fallback) and return the widget."""
    from IPython.display import display

    w = quiz_widget(question)
    display(w)
    return w


LORA_WRONG = Question(
    prompt="Which statement about LoRA is wrong?",
    options={
        "A": "LoRA makes fine-tuning a large language model much cheaper.",
        "B": "LoRA overwrites the original weights of the model it fine-tunes.",
        "C": "LoRA is fairly simple to implement and to plug into an existing model.",
        "D": "A LoRA fine-tune is easy to undo.",
    },
    answer=frozenset("B"),
    explanation=(
        "LoRA freezes the pre-trained weights and learns a separate low-rank update B·A next to them. "
        "The model's behaviour changes, but W itself does not; removing (or unmerging) the small "
        "matrices brings the original model back."
    ),
)

VAL_LOSS_RISING = Question(
    prompt=(
        "While fine-tuning a Qwen model with ms-swift you see the validation loss climb clearly. "
        "Which changes can ease or fix this?"
    ),
    options={
        "A": "Raise the learning rate",
        "B": "Lower the learning rate",
        "C": "Raise --num_train_epochs",
        "D": "Lower --num_train_epochs",
    },
    answer=frozenset("BD"),
    explanation=(
        "Too many epochs let the model memorise the training set, so fewer epochs (or early stopping) "
        "helps. A learning rate that is too high makes the loss bounce around the minimum or diverge, "
        "which can look like overfitting although it is a different problem; a lower rate calms it. "
        "More epochs or a higher rate make both problems worse."
    ),
)
