"""The lesson's six knobs, defined once: each one's name, its ms-swift flag, type, bounds, default and meaning.

Everything that names the knobs is derived from KNOBS: the argv builder (swift_runner.sft_command), the checks
before a run starts (check), sft()'s defaults and docstring (training.sft), the CLI's options (cli.py) and the
columns of the runs table (history.PARAM_KEYS). A new knob is one new line here.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass


@dataclass(frozen=True)
class Knob:
    name: str  # the lesson's name, used in sft(), the CLI and the run record
    flag: str  # the ms-swift 4.x flag it becomes
    kind: type  # int or float
    default: float
    minimum: float  # the value must lie above this (or at it, with inclusive)
    help: str
    inclusive: bool = False
    maximum: float | None = None  # refused at or above this, with `too_big` as the reason
    too_big: str = ""
    whole_as_int: bool = False  # a float knob whose whole values are written as integers (3.0 epochs → 3)

    def check(self, value):
        """The value as this knob's type, or ValueError naming the knob and the fix."""
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            try:
                value = self.kind(value)
            except (TypeError, ValueError):
                raise ValueError(f"{self.name}={value!r} is not a number. Fix: pass e.g. {self.name}={self.default}.") from None
        if self.kind is int and value != int(value):
            raise ValueError(f"{self.name}={value!r} must be a whole number. Fix: pass e.g. {self.name}={self.default}.")
        given, value = value, self.kind(value)
        low = value < self.minimum if self.inclusive else value <= self.minimum
        if not math.isfinite(value) or low:
            raise ValueError(f"{self.name}={value!r} must be {'>=' if self.inclusive else '>'} {self.minimum}. "
                             f"Fix: pass a positive value, e.g. {self.name}={self.default}.")
        if self.maximum is not None and value >= self.maximum:
            raise ValueError(f"{self.name}={given!r} {self.too_big}")
        return int(value) if self.whole_as_int and value == int(value) else value


KNOBS = (
    Knob("learning_rate", "learning_rate", float, 1e-4, 0, "size of each step down the loss (the lesson: 0.1 fails, 5e-5 works)",
         maximum=10, too_big="is absurd (the lesson's failing run uses 0.1). Fix: use e.g. 1e-4."),
    Knob("lora_rank", "lora_rank", int, 8, 0, "LoRA rank r: how much the model may change (small data: r ≤ 16)"),
    Knob("num_train_epochs", "num_train_epochs", float, 1, 0, "how many times training reads all the rows",
         whole_as_int=True),
    Knob("batch_size", "per_device_train_batch_size", int, 8, 0, "rows averaged in each step"),
    Knob("max_length", "max_length", int, 512, 16, "longest row in tokens (swift drops longer ones)", inclusive=True),
    Knob("eval_steps", "eval_steps", int, 20, 0, "evaluate (and save a checkpoint) every this many steps"),
)
BY_NAME = {k.name: k for k in KNOBS}
NAMES = tuple(BY_NAME)
DEFAULTS = {k.name: k.default for k in KNOBS}
FLAGS = {k.name: k.flag for k in KNOBS}


def check(*values, **named) -> dict:
    """All six knobs, given in KNOBS order or by name, checked before anything starts: {name: value}."""
    if len(values) > len(KNOBS):
        raise TypeError(f"{len(values)} knob values given; there are {len(KNOBS)}: {', '.join(NAMES)}")
    given = dict(zip(NAMES, values))
    twice = sorted(set(given) & set(named))
    unknown = sorted(set(named) - set(NAMES))
    missing = [n for n in NAMES if n not in given and n not in named]
    if twice or unknown or missing:
        raise TypeError("knobs " + "; ".join(f"{what}: {', '.join(names)}" for what, names in
                                             (("given twice", twice), ("unknown", unknown), ("missing", missing)) if names))
    given.update(named)
    return {n: BY_NAME[n].check(given[n]) for n in NAMES}


def doc() -> str:
    """The knobs as a docstring paragraph (sft()'s)."""
    return "The lesson's knobs (helpers/knobs.py):\n" + "\n".join(
        f"    {k.name} (--{k.flag}, default {k.default}): {k.help}" for k in KNOBS)
