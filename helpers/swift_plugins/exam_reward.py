"""ms-swift plugin: the exam's own strict rule as a GRPO reward.

Loaded by `swift rlhf --rlhf_type grpo --external_plugins helpers/swift_plugins/exam_reward.py
--reward_funcs ftlab_correct [ftlab_format]`. Each dataset row carries the expected number in a `solution`
column; swift hands every completion of the row's group to the reward with that column.

- ftlab_correct: 1.0 when the completion's last `{{ans:X}}` tag holds the expected number, by
  `helpers.scoring.strict_correct` (the exam's rule, imported: one definition of "correct" for both), else 0.0.
- ftlab_format: 1.0 when the completion ends its reasoning the trained way (a tag holding a number,
  `helpers.scoring.has_format`), else 0.0; weigh it small with `--reward_weights`.
"""

import sys
from pathlib import Path

from swift.rewards import ORM, orms

# swift loads this file by its path, from a process whose sys.path does not hold the course folder
COURSE = Path(__file__).resolve().parents[2]
if str(COURSE) not in sys.path:
    sys.path.insert(0, str(COURSE))

from helpers.scoring import has_format, strict_correct  # noqa: E402 - after the course is on the path


def _solutions(solution, n: int) -> list:
    if solution is None:
        raise ValueError("the GRPO dataset has no 'solution' column: each row needs the expected number, "
                         'e.g. {"messages": [...], "solution": "232"}')
    return list(solution) if isinstance(solution, (list, tuple)) else [solution] * n


class ExamCorrect(ORM):
    def __call__(self, completions, solution=None, **kwargs) -> list[float]:
        return [float(strict_correct(c or "", s)) for c, s in zip(completions, _solutions(solution, len(completions)), strict=True)]


class ExamFormat(ORM):
    def __call__(self, completions, **kwargs) -> list[float]:
        return [float(has_format(c or "")) for c in completions]


orms["ftlab_correct"] = ExamCorrect
orms["ftlab_format"] = ExamFormat
