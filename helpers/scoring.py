"""How an exam answer is scored: the lesson's seed rule and a strict rule, and what a set of scored answers
adds up to. Pure: no files, no models, no display (exams.py answers and saves; cards.py shows)."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path

from . import calculator, data

MINUS = str.maketrans({"−": "-", "–": "-"})


def seed_score(response: str, expected) -> float:
    """The lesson's rule: 1 for the literal `{{ans:N}}`, 0.5 if N's text appears anywhere, else 0."""
    if f"{{{{ans:{expected}}}}}" in response:
        return 1.0
    return 0.5 if str(expected) in response else 0.0


def _decimal(text: str) -> Decimal | None:
    clean = re.sub(r"[\s,_]", "", text.translate(MINUS))
    try:
        return Decimal(clean)
    except InvalidOperation:
        return None


def strict_correct(response: str, expected) -> bool:
    """True only when the *last* `{{ans:X}}` tag holds a number equal to N (`1,200`, ` 60.0 ` tolerated)."""
    tag = data.tagged_answer(response)
    if tag is None:
        return False
    got, want = _decimal(tag), _decimal(str(expected))
    return got is not None and want is not None and got == want


def last_number(response: str) -> Decimal | None:
    """The last number written in the answer ("… = 54 m²." → 54), tagged or not."""
    found = re.findall(r"-?\d[\d,]*(?:\.\d+)?", response.translate(MINUS))
    return _decimal(found[-1]) if found else None


def last_number_correct(response: str, expected) -> bool:
    """The third rule: is the last number in the answer N? It needs no tag, so it scores a base model's maths
    apart from the answer format it was never taught (and a fine-tuned model by the same rule)."""
    got, want = last_number(response), _decimal(str(expected))
    return got is not None and want is not None and got == want


def has_format(response: str) -> bool:
    """Does the answer end its reasoning the trained way: an `{{ans:X}}` tag holding a number?"""
    tag = data.tagged_answer(response)
    return tag is not None and _decimal(tag) is not None


@dataclass
class ExamItem:
    question: str
    expected: str
    response: str
    seed: float
    strict: bool
    format: bool
    last_number: bool = False
    cut: bool = False  # the answer used every allowed token without ending by itself


@dataclass
class ExamResult:
    items: list[ExamItem]
    model: str = ""
    dataset: str = ""
    seconds: float = 0.0
    settings: dict = field(default_factory=dict)
    path: str | None = None  # where it was saved

    @property
    def n(self) -> int:
        return len(self.items)

    @property
    def seed_score(self) -> int:
        return int(100 * sum(i.seed for i in self.items) / self.n) if self.items else 0

    @property
    def strict_score(self) -> int:
        return round(100 * sum(i.strict for i in self.items) / self.n) if self.items else 0

    @property
    def last_number_score(self) -> int:
        return round(100 * sum(i.last_number for i in self.items) / self.n) if self.items else 0

    @property
    def cut_count(self) -> int:
        return sum(i.cut for i in self.items)

    @property
    def calls(self) -> tuple[int, int]:
        """(calculator calls, malformed ones) over every answer."""
        found = [c for i in self.items for c in calculator.calls(i.response)]
        return len(found), sum(c.result is None for c in found)

    def _calls_text(self) -> str:
        n, bad = self.calls
        if not n and not self.settings.get("tool"):
            return ""
        how = "answered by the calculator" if self.settings.get("tool") else "no calculator: the model wrote each result"
        return f", {n} calculator call{'' if n == 1 else 's'} ({how}" + (f"; {bad} malformed" if bad else "") + ")"

    @property
    def format_rate(self) -> int:
        return round(100 * sum(i.format for i in self.items) / self.n) if self.items else 0

    def summary(self) -> str:
        return (f"{self.model or 'model'} on {Path(self.dataset).name or 'exam'} ({self.n} question{'' if self.n == 1 else 's'}): "
                f"seed score {self.seed_score}, strict score {self.strict_score}, last number {self.last_number_score}, "
                f"{{{{ans:}}}} format {self.format_rate}%{self._cut_text()}{self._calls_text()}, {self.seconds:.0f} s")

    def _cut_text(self) -> str:
        if not self.cut_count:
            return ""
        limit = self.settings.get("max_new_tokens")
        return f", {self.cut_count} cut off" + (f" at {limit} tokens" if limit else "")

    def __str__(self) -> str:
        return self.summary()

    __repr__ = __str__  # the plain-text form of a notebook cell: one line, not every answer

    def to_json(self) -> dict:
        return {"model": self.model, "dataset": self.dataset, "seconds": round(self.seconds, 2),
                "settings": self.settings, "seed_score": self.seed_score, "strict_score": self.strict_score,
                "last_number_score": self.last_number_score, "format_rate": self.format_rate, "cut": self.cut_count,
                "n": self.n, "items": [asdict(i) for i in self.items]}

    @classmethod
    def from_json(cls, obj: dict):
        """A saved result; one saved before the last-number rule gets it from its answers."""
        items = [ExamItem(**{"last_number": last_number_correct(i["response"], i["expected"]), **i})
                 for i in obj["items"]]
        return cls(items, obj.get("model", ""), obj.get("dataset", ""), obj.get("seconds", 0.0), obj.get("settings", {}))


def score_responses(rows: list[dict], responses: list[str], result_type=ExamResult, cut=None, **meta):
    """Score answers given in data order against the rows' `{{ans:N}}`; `cut` marks answers that hit the limit."""
    if len(rows) != len(responses):
        raise ValueError(f"{len(rows)} questions but {len(responses)} responses — fix: one response per row")
    items = []
    for row, resp, was_cut in zip(rows, responses, cut or [False] * len(rows)):
        want = data.expected_answer(row)
        items.append(ExamItem(data.question_of(row), want, resp, seed_score(resp, want),
                              strict_correct(resp, want), has_format(resp), last_number_correct(resp, want),
                              bool(was_cut)))
    return result_type(items, **meta)


@dataclass
class Comparison:
    """The base model and the fine-tuned model on the same questions."""

    base: ExamResult
    tuned: ExamResult

    def __post_init__(self):
        if [i.question for i in self.base.items] != [i.question for i in self.tuned.items]:
            raise ValueError("the two results are not from the same questions — fix: exam both on the same file")

    def rows(self) -> list[tuple[str, int, int]]:
        return [(metric, getattr(self.base, metric), getattr(self.tuned, metric))
                for metric in ("seed_score", "strict_score", "last_number_score", "format_rate")]


def _steps(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.strip().splitlines() if line.strip() and "{{ans:" not in line]


def _miss_kind(said: str, ref: str) -> str:
    """Why a step differs from the worked solution: the same formula worked out wrongly, or another formula.

    The formula is the line up to its first calculation ("Left = 400 - 375", "LCM(3, 4)", "May: 31 - 9 + 1");
    what follows it (intermediate results, the result) is arithmetic.
    """
    said_parts, ref_parts = [p.strip() for p in said.split("=")], [p.strip() for p in ref.split("=")]
    first = next((k for k, p in enumerate(ref_parts) if any(c.isdigit() for c in p)), 0)
    if said_parts[:first + 1] == ref_parts[:first + 1]:
        return "arithmetic slip: the right formula, a wrong result"
    if said_parts[:1] == ref_parts[:1]:
        return "wrong formula for the right quantity"
    return "another method than the worked solution"


def first_wrong_step(response: str, solution: str) -> tuple[str, str, str]:
    """(the answer's first step that departs from the worked solution, the solution's step there, why)."""
    said, ref = _steps(response), _steps(solution)
    i = next((j for j, (a, b) in enumerate(zip(said, ref)) if a != b), min(len(said), len(ref)))
    mine = said[i] if i < len(said) else "(stopped early)"
    theirs = ref[i] if i < len(ref) else "(no more steps)"
    why = _miss_kind(mine, theirs) if i < len(said) and i < len(ref) else "a step too few or too many"
    return mine, theirs, why


def inside_bigger_number(response: str, expected: str) -> bool:
    """Does `expected` appear only as part of a larger number ("78" in "780")?"""
    numbers = [m.rstrip(".,") for m in re.findall(r"\d[\d,.]*", response)]  # "12." ends a sentence: it is 12
    return expected not in numbers and any(expected in m for m in numbers)
