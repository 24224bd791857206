"""Cards: a diagnosis, an exam and a comparison of two exams, as a learner reads them (HTML and text).

Rendering only: the judgements come from `diagnosis` and `scoring`. `DiagnosisCard`, `ExamReport` and
`ExamComparison` are those results plus the way Jupyter and a terminal show them.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import fields

from . import calculator, diagnosis, scoring
from .data import ANS_RE
from .view import badge, table, text_table

# the evidence a learner can read off the plot, in the card's words (losses, steps, shares); the rules' internal
# figures (straight-line projections, a t-statistic) stay in `diagnose --json` and Diagnosis.evidence only
EVIDENCE_LABELS = {
    "train_first": "first logged train loss", "train_lowest": "lowest logged train loss", "train_lowest_step": "… at step",
    "train_last": "last logged train loss",
    "train_start": "train loss at the start (for the rule)", "train_min": "train loss minimum (smoothed)",
    "train_min_step": "… at step", "train_end": "train loss at the end (smoothed)",
    "train_drop": "train loss fell by", "train_gave_back": "share of the fall given back",
    "train_tail_share": "share of the train fall in the second half",
    "eval_first": "eval loss at the first evaluation", "eval_first_step": "… at step", "eval_min": "eval loss minimum",
    "eval_min_step": "… at step", "eval_last": "eval loss at the last evaluation", "eval_last_step": "… at step",
    "eval_tolerance": "\"at the minimum\" tolerance", "eval_tail_share": "share of the eval fall in the second half",
    "time_axis": "time measured in", "n_train": "train points", "n_eval": "eval points", "last_step": "last step",
    "max_steps": "planned steps", "best_model_checkpoint": "best checkpoint",
}
SHARES = {"train_drop", "train_gave_back", "train_tail_share", "eval_tail_share"}  # shown as percentages


def _evidence_value(key: str, value) -> str:
    if value is None:
        return "none"
    if key in SHARES and isinstance(value, (int, float)):
        return f"{value:.0%}"
    return value if isinstance(value, str) else json.dumps(value)


class DiagnosisCard(diagnosis.Diagnosis):
    """A diagnosis shown as the lesson's card: observation, state, cause, adjustment; the rule on request."""

    @classmethod
    def of(cls, d: diagnosis.Diagnosis) -> DiagnosisCard:
        return cls(**{f.name: getattr(d, f.name) for f in fields(d)})

    def __str__(self) -> str:
        lines = [f"[{self.state.upper()}]", f"observation: {self.observation()}", f"cause:       {self.cause}",
                 f"adjustment:  {self.next_move}", f"rule:        {self.reason}"]
        return "\n".join(lines + [f"note: {n}" for n in self.notes])

    __repr__ = __str__  # the plain-text form of a notebook cell: the card, not the dataclass fields

    def _repr_html_(self) -> str:
        e = html.escape
        row = "<tr><th style='text-align:left;padding:2px 10px 2px 0;vertical-align:top'>{}</th><td>{}</td></tr>"
        evidence = [(EVIDENCE_LABELS[k], _evidence_value(k, v)) for k, v in self.to_dict()["evidence"].items()
                    if k in EVIDENCE_LABELS]
        notes = "".join(f"<li>{e(n)}</li>" for n in self.notes)
        return ("<div class='ftlab-diagnosis' style='border:1px solid #ccc;border-radius:6px;padding:8px 12px;"
                "max-width:720px;font-family:sans-serif'><table style='border-collapse:collapse'>"
                + row.format("Observation", e(self.observation())) + row.format("State", badge(self.state))
                + row.format("Cause", e(self.cause)) + row.format("Adjustment", e(self.next_move)) + "</table>"
                + (f"<ul style='margin:4px 0'>{notes}</ul>" if notes else "")
                + "<details><summary>the rule and the numbers behind it</summary>"
                + f"<p style='margin:4px 0'>{e(self.reason)}</p>" + table(evidence, style="font-size:90%")
                + "</details></div>")


def thresholds_table() -> str:
    """The diagnosis rules in plain words, as a markdown table, with the exact rules folded under it."""
    d = diagnosis
    tol = f"{d.EVAL_REL_TOL:.0%} of its lowest value or {d.EVAL_ABS_TOL}, whichever is larger"
    rows = [
        ("first, smooth", "a training loss comes from one batch and jumps about, so each point is replaced by the "
                          f"middle value of its neighbours (about {d.SMOOTH_FRACTION:.0%} of the points, at least "
                          f"{d.MIN_TRAIN_WINDOW})"),
        ("failed", f"the training loss ends less than {d.FAILED_MIN_DROP:.0%} below where it started, or it "
                   f"climbed back by {d.FAILED_GIVE_BACK:.0%} or more of what it had gained, or it became NaN"),
        ("overfitting", f"the eval loss ends higher than its lowest point by more than {tol}"),
        ("underfitting", f"the eval loss is still falling at the end: at least {d.STILL_FALLING:.0%} of its fall "
                         "came in the second half of the learning, more fall is in sight than that tolerance, and "
                         f"its lowest point is one of the last {d.LATE_MIN_EVALS} evaluations"),
        ("converged", "none of these: the training loss fell, and the eval loss has flattened near its lowest point"),
        ("too short to tell", f"fewer than {d.MIN_TRAIN_POINTS} training points: unknown; fewer than "
                              f"{d.FEW_EVAL_POINTS} evaluations: the card says it is unsure"),
    ]
    # markdown ends an HTML block at a blank line, except a <pre> block, which runs to </pre>
    exact = f"<pre style='white-space:pre-wrap;font-size:85%'>{html.escape(d.THRESHOLDS_DOC)}</pre>"
    return "\n".join(["| state | when the helper says it |", "|---|---|"] + [f"| {a} | {b} |" for a, b in rows]
                     + ["", "<details><summary>the exact rules</summary>", "", exact, "", "</details>"])


# ---------------------------------------------------------------- exams

_CALL_HTML = re.compile(r"&lt;&lt;(.*?)&gt;&gt;")


def answer_html(response: str) -> str:
    """Escaped text (so `<` cannot break the page) with line breaks kept, the {{ans:}} tag and calculator
    calls marked."""
    text = ANS_RE.sub(lambda m: f"<mark>{m.group(0)}</mark>", html.escape(response))
    text = _CALL_HTML.sub(lambda m: f"<code class='ftlab-call'>&lt;&lt;{m.group(1)}&gt;&gt;</code>", text)
    return f"<div style='white-space:pre-wrap;max-width:40em;text-align:left'>{text}</div>"


def calls_html(response: str) -> str:
    """Each calculator call of an answer and its result; where the text after it differs (no calculator: the
    model's own number), what was written."""
    lines = []
    for c in calculator.calls(response):
        if c.result is None:
            lines.append(f"{html.escape(c.expression)} → malformed, left as written")
        else:
            lines.append(f"{html.escape(c.expression)} = {c.result}"
                         + ("" if c.written == c.result else f" (written: {html.escape(c.written) or 'nothing'})"))
    return "<br>".join(lines)


def verdict(item: scoring.ExamItem) -> str:
    if item.strict:
        return "✅ correct"
    if item.seed == 1.0:
        return "🟡 tag found, but a later tag differs"
    if item.seed == 0.5:
        return "🟡 seed ½: number appears, strict ✗"
    return "❌ wrong"


class ExamReport(scoring.ExamResult):
    """An exam result that Jupyter shows as its per-question table."""

    def _repr_html_(self) -> str:
        limit = self.settings.get("max_new_tokens")
        cut = f"<p><i>… (cut off at {limit} tokens)</i></p>" if limit else "<p><i>… (cut off)</i></p>"
        with_calls = self.calls[0] > 0
        rows = [(k, html.escape(i.question), html.escape(i.expected), answer_html(i.response) + (cut if i.cut else ""),
                 *([calls_html(i.response)] if with_calls else []), verdict(i)) for k, i in enumerate(self.items, 1)]
        header = ["#", "question", "expected", "model answer", *(["calculator calls"] if with_calls else []), "verdict"]
        return f"<p><b>{html.escape(self.summary())}</b></p>" + table(rows, header, raw=True)


class ExamComparison(scoring.Comparison):
    """Base vs fine-tuned: the three scores side by side, then every question's two verdicts."""

    def __str__(self) -> str:
        return text_table(self.rows(), ["", "base", "fine-tuned"])

    def _repr_html_(self) -> str:
        scores = [(m.replace("_", " "), b, t, f"{t - b:+d}") for m, b, t in self.rows()]
        per_q = [(b.question, b.expected, verdict(b), verdict(t)) for b, t in zip(self.base.items, self.tuned.items)]
        return (table(scores, ["", "base", "fine-tuned", "change"])
                + table(per_q, ["question", "expected", "base", "fine-tuned"]))
