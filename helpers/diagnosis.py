"""Which state is a training run in? The lesson's four states, made measurable (rules only: swiftlog.py
reads the log, cards.py draws the card).

The lesson (section 3.1) reads two curves, training loss and validation (eval) loss:

- failed:       training loss does not go down, or rises → lower the learning rate a lot.
- underfitting: both losses are still falling at the end → train longer.
- overfitting:  training loss falls while eval loss has climbed back above its minimum
                → fewer epochs or more data.
- converged:    both have flattened and eval loss sits at its minimum → done.

How `diagnose` decides, in order (the numbers are the constants below):

1. Fewer than 3 training points: "unknown".
2. Failed if any training loss is NaN/inf; or the final training loss is not at least
   5 % below the starting loss; or it climbed back up by half of what it had gained.
   The start is the first logged loss, or the median of the first few if that is lower,
   so neither a noisy first batch nor a spike right after step 1
   (learning rate 0.1: 1.36 → 48) can pass for a high start. We compare with the start,
   not the final slope: after such a spike the loss falls again yet stays far above its start.
3. Overfitting if the last eval loss is above the eval minimum by more than
   max(5 % of the minimum, 0.02) and that minimum is not the last point.
4. Underfitting if the eval loss is still falling: a straight-line fit over the second half
   of the run still carries at least 10 % of its total drop, at that pace a run as long
   again would lower it by more than the tolerance above, and its lowest point is one of the
   last two evaluations (a curve whose minimum lies further back has stopped falling, even if
   the straight line through a late drop still points down). The eval curve decides because it
   is the mock exam (training loss has already passed rule 2). With fewer than 2 eval points
   the training loss decides instead (same rules, and the fall must stand out of the noise: t-statistic of
   the slope below -2); the state then cannot be overfitting and a note says so.
   "The second half of the run" is measured in learning done, not in steps, when the log
   has the learning rate: ms-swift's cosine schedule shrinks the learning rate towards zero,
   so every curve flattens at the end in steps, even one that has far to go. Against the
   cumulative learning rate an underfitting curve stays a straight line. An evaluation before
   the first step (step 0) is left out of this rule: it shows where the model started, and the
   big fall of the first steps, which every run makes, would make any later fall look small.
5. Otherwise converged.

Training loss is noisy (one batch per logged point), so it is smoothed first with a centred
rolling median over about 10 % of the points (at least 3). Eval loss is measured on the same
validation set every time, so it is smoothed only when there are many eval points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

# --- thresholds (printed for learners by thresholds_table()) ---
MIN_TRAIN_POINTS = 3  # below this, there is no curve to judge
SMOOTH_FRACTION = 0.10  # rolling-median window ≈ 10 % of the points ...
MIN_TRAIN_WINDOW = 3  # ... but at least 3 for training loss (one batch per point is noisy)
FAILED_MIN_DROP = 0.05  # final train loss must be ≥ 5 % below the start, else "failed"
FAILED_GIVE_BACK = 0.50  # climbing back by ≥ half of the improvement counts as "rising" → failed
EVAL_REL_TOL = 0.05  # eval may sit 5 % above its minimum and still count as "at the minimum" ...
EVAL_ABS_TOL = 0.02  # ... or 0.02, whichever is larger (small losses need an absolute floor)
STILL_FALLING = 0.10  # second half still carries ≥ 10 % of the total drop → "still falling"
TAIL_FRACTION = 1 / 2  # "the end" = the second half of the learning done (at least 3 points)
LATE_MIN_EVALS = 2  # still falling only while the eval minimum is one of the last 2 evaluations
MIN_TREND_T = 2.0  # train slope must stand out of the noise: t-statistic ≤ -2
FEW_EVAL_POINTS = 3  # fewer eval points than this → low-confidence note

NEXT_MOVES = {
    "failed": "lower the learning rate a lot (the lesson goes 0.1 → 5e-5)",
    "underfitting": "train longer: more epochs (the lesson goes 1 → 50, and 3 → 15)",
    "overfitting": "fewer epochs or more data (the lesson goes to 1,000 rows, 3 epochs, rank 8)",
    "converged": "done: take best_model_checkpoint to the exam",
    "unknown": "wait for more logged points (or log more often: --logging_steps)",
}
# the lesson's "cause" column: why a run ends up in each state
CAUSES = {
    "failed": "the learning rate is far too large: every step jumps past the bottom of the loss valley",
    "underfitting": "the model has not finished learning: too few steps (epochs) for what the data can teach",
    "overfitting": "the model is memorising its training rows: too many epochs for this much data",
    "converged": "the model has learned what this data can teach at this setting",
    "unknown": "the run is too short to tell",
}
NO_EVAL_NOTE = "no validation set — cannot tell over- from underfitting"
THRESHOLDS_DOC = "How `diagnose` decides" + (__doc__ or "").partition("How `diagnose` decides")[2]  # plain words


def _clean(x):
    """JSON-safe value: floats to 4 significant digits, NaN/inf → None."""
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return None if not math.isfinite(x) else float(f"{x:.4g}")
    if isinstance(x, np.integer):
        return int(x)
    return x


@dataclass
class Diagnosis:
    state: str  # failed | underfitting | overfitting | converged | unknown
    reason: str
    evidence: dict = field(default_factory=dict)
    next_move: str = ""
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "state": self.state,
            "reason": self.reason,
            "evidence": {k: _clean(v) for k, v in self.evidence.items()},
            "next_move": self.next_move,
            "notes": list(self.notes),
        }

    @property
    def cause(self) -> str:
        return CAUSES.get(self.state, CAUSES["unknown"])

    def observation(self) -> str:
        """Start, minimum and end of each curve, as a learner can read them off the plot."""
        ev = self.evidence
        parts = []
        if ev.get("train_first") is not None:  # the logged points, as drawn on the plot (not smoothed)
            parts.append(f"train loss {loss_text(ev['train_first'])} at the start → lowest {loss_text(ev['train_lowest'])} "
                         f"(step {ev['train_lowest_step']}) → {loss_text(ev['train_last'])} at step {ev['last_step']}")
        if ev.get("eval_first") is not None:
            first = "before training (step 0)" if ev.get("eval_first_step") == 0 else "at the first evaluation"
            parts.append(f"eval loss {loss_text(ev['eval_first'])} {first} → lowest {loss_text(ev['eval_min'])} "
                         f"(step {ev['eval_min_step']}) → {loss_text(ev['eval_last'])} at step {ev['eval_last_step']}")
        return "; ".join(parts) or "no curve yet"


# --- curve measurements ---

def _odd(k: int) -> int:
    return k if k % 2 else k + 1


def smoothing_window(n: int, minimum: int = MIN_TRAIN_WINDOW) -> int:
    """Odd window ≈ SMOOTH_FRACTION of n points, at least `minimum`."""
    return _odd(max(minimum, round(SMOOTH_FRACTION * n)))


def smooth(values, window: int) -> np.ndarray:
    """Centred rolling median; the window shrinks at the edges (the last value = median of the last few)."""
    v = np.asarray(values, dtype=float)
    h = window // 2
    return np.array([np.median(v[max(0, i - h): i + h + 1]) for i in range(len(v))])


def progress(steps, lr=()) -> np.ndarray:
    """Time axis: the learning rate summed up to each step (as a fraction), or the steps themselves.

    `lr` holds (step, learning_rate) points as logged; between them the rate is interpolated.
    """
    steps = np.asarray(steps, dtype=float)
    lr_steps, lr_vals = _points(lr)
    ok = np.isfinite(lr_vals)
    if ok.sum() < 2 or not len(steps):
        return steps
    last = int(max(steps.max(), lr_steps.max()))
    rate = np.interp(np.arange(last + 1), lr_steps[ok], lr_vals[ok])
    done = np.concatenate([[0.0], np.cumsum(rate[1:])])
    if done[-1] <= 0:
        return steps
    return np.interp(steps, np.arange(last + 1), done / done[-1])


def tail_trend(x, values, min_points: int) -> tuple[float, float, float]:
    """Straight-line fit over the second half of x (x starts at 0 at step 0).

    Returns (change over that half, change over a run as long again, t-statistic of the slope).
    """
    x = np.asarray(x, dtype=float)
    y = np.asarray(values, dtype=float)
    half = TAIL_FRACTION * (x[-1] - x[0])
    k = max(min_points, int((x >= x[-1] - half).sum()))
    x, y = x[-k:], y[-k:]
    if len(x) < 2 or x[-1] == x[0]:
        return 0.0, 0.0, 0.0
    x0 = x - x.mean()
    slope = float((x0 * (y - y.mean())).sum() / (x0 ** 2).sum())
    resid = y - y.mean() - slope * x0
    dof = len(x) - 2
    se = math.sqrt((resid ** 2).sum() / dof / (x0 ** 2).sum()) if dof > 0 else 0.0
    if se > 1e-12 * max(1.0, abs(slope)):
        t = slope / se
    else:
        t = math.copysign(math.inf, slope) if slope else 0.0
    return slope * half, slope * x[-1], float(np.clip(t, -999, 999))


def _points(pairs) -> tuple[np.ndarray, np.ndarray]:
    """Sorted by step; a step logged twice keeps its last value."""
    d = {}
    for s, v in pairs:
        d[int(s)] = float(v) if v is not None else math.nan
    steps = sorted(d)
    return np.array(steps, dtype=int), np.array([d[s] for s in steps], dtype=float)


def _tolerance(level: float) -> float:
    """How far a loss may sit above its minimum and still count as "at the minimum"."""
    return max(EVAL_REL_TOL * level, EVAL_ABS_TOL)


def loss_text(x: float) -> str:
    """A loss (or a change of one) as the card's reasons write it: four significant digits."""
    return f"{x:.4g}"


# --- the judgement, one function per rule of the module docstring ---

@dataclass
class TrainCurve:
    """What rule 2 and the train-only rule read off the training curve (smoothed)."""
    start: float  # the first logged loss, or the median of the first few if lower
    end: float
    low: float
    low_step: int
    gave_back: float  # how much of the improvement it climbed back (0–1+)
    tail_share: float  # share of the drop that came in the second half of the learning done
    falling: bool  # still falling at the end, out of the noise

    @property
    def text(self) -> str:
        """How every reason opens: the smoothed start and end."""
        return f"train loss {loss_text(self.start)} → {loss_text(self.end)}"


@dataclass
class EvalCurve:
    """What rules 3 and 4 read off the eval curve."""
    first: float
    low: float
    low_step: int
    last: float
    tolerance: float
    tail_share: float
    falling: bool
    low_is_last: bool


def measure_train(t_steps, t_loss, lr, ev: dict) -> TrainCurve:
    w = smoothing_window(len(t_loss))
    sm = smooth(t_loss, w)
    # the first logged loss, or the median of the first few if lower (a noisy first batch cannot
    # pass for a high start, nor can a spike right after step 1)
    start = min(float(t_loss[0]), float(sm[0]))
    end = float(sm[-1])
    i_min = int(sm.argmin())
    low = float(sm[i_min])
    gained = start - low
    gave_back = (end - low) / gained if gained > 0 else 0.0
    change, t_next, t_stat = tail_trend(progress(t_steps, lr), t_loss, MIN_TRAIN_POINTS)
    t_share = -change / gained if gained > 0 else 0.0
    falling = t_share >= STILL_FALLING and -t_next > _tolerance(end) and t_stat <= -MIN_TREND_T
    raw_min = int(np.nanargmin(t_loss))
    ev.update(train_first=float(t_loss[0]), train_lowest=float(t_loss[raw_min]), train_lowest_step=int(t_steps[raw_min]),
              train_last=float(t_loss[-1]))
    ev.update(smoothing_window=w, train_start=start, train_end=end, train_min=low,
              train_min_step=int(t_steps[i_min]), train_drop=(start - end) / start if start else 0.0,
              train_gave_back=gave_back, train_tail_share=t_share, train_next_run_change=t_next,
              train_tail_t=t_stat)
    return TrainCurve(start, end, low, int(t_steps[i_min]), gave_back, t_share, falling)


def measure_eval(e_steps, e_loss, lr, ev: dict) -> EvalCurve | None:
    if not len(e_loss):
        return None
    esm = smooth(e_loss, smoothing_window(len(e_loss), minimum=1))
    j_min = int(esm.argmin())
    e_first, e_min, e_last = float(esm[0]), float(esm[j_min]), float(esm[-1])
    tol = _tolerance(e_min)
    # "still falling" is measured on the evaluations made during training: an evaluation before the first
    # step (--eval_on_start) shows where the model started, and the first steps' big fall from there, which
    # every run makes, would make any later fall look small
    k = 1 if e_steps[0] == 0 and len(e_loss) >= 3 else 0
    e_gained = float(esm[k]) - e_min
    e_change, e_next, _ = tail_trend(progress(e_steps[k:], lr), esm[k:], 2) if len(e_loss) >= 2 else (0.0, 0.0, 0.0)
    e_share = -e_change / e_gained if e_gained > 0 else 0.0
    falling = e_share >= STILL_FALLING and -e_next > tol and j_min >= len(e_loss) - LATE_MIN_EVALS
    ev.update(eval_first=e_first, eval_first_step=int(e_steps[0]), eval_min=e_min, eval_min_step=int(e_steps[j_min]),
              eval_last=e_last, eval_last_step=int(e_steps[-1]), eval_tolerance=tol, eval_tail_share=e_share,
              eval_next_run_change=e_next)
    return EvalCurve(e_first, e_min, int(e_steps[j_min]), e_last, tol, e_share, falling, j_min == len(e_loss) - 1)


def eval_notes(n_eval: int) -> list[str]:
    if not n_eval:
        return [NO_EVAL_NOTE]
    if n_eval < FEW_EVAL_POINTS:
        return [f"few eval points (n={n_eval} < {FEW_EVAL_POINTS}): low confidence"] + ([NO_EVAL_NOTE] if n_eval < 2 else [])
    return []


def failed_reason(tr: TrainCurve, evc: EvalCurve | None) -> str | None:
    """Rule 2 (after NaN): not 5 % below the start, or climbed back by half of what it gained."""
    curve = tr.text
    eval_up = ""
    if evc is not None and evc.last > evc.first + evc.tolerance:
        eval_up = f"; eval loss also ended above its start ({loss_text(evc.first)} → {loss_text(evc.last)})"
    if tr.end > tr.start * (1 - FAILED_MIN_DROP):
        return f"{curve}: not even {FAILED_MIN_DROP:.0%} below where it started{eval_up}."
    if tr.gave_back >= FAILED_GIVE_BACK:
        return (f"{curve} after reaching {loss_text(tr.low)} at step {tr.low_step}: it climbed "
                f"back by {tr.gave_back:.0%} of its improvement{eval_up}.")
    return None


def judge_with_eval(tr: TrainCurve, evc: EvalCurve) -> tuple[str, str]:
    """Rules 3–5 with an eval curve: overfitting, underfitting, else converged."""
    curve = tr.text
    evals = f"eval loss {loss_text(evc.first)} → min {loss_text(evc.low)} (step {evc.low_step}) → {loss_text(evc.last)}"
    if evc.last > evc.low + evc.tolerance and not evc.low_is_last:
        return "overfitting", (f"{curve} while {evals}: {loss_text(evc.last - evc.low)} above its minimum "
                               f"(tolerance {loss_text(evc.tolerance)}).")
    if evc.falling:
        return "underfitting", (f"{curve} and {evals}: eval is still falling "
                                f"({evc.tail_share:.0%} of its drop came in the second half).")
    return "converged", f"{curve} and {evals}: eval has flattened within {loss_text(evc.tolerance)} of its minimum."


def judge_train_only(tr: TrainCurve) -> tuple[str, str]:
    """Rules 4–5 without an eval curve: the training loss decides (and cannot show overfitting)."""
    curve = tr.text
    if tr.falling:
        return "underfitting", (f"{curve}, still falling at the end ({tr.tail_share:.0%} of the drop came "
                                "in the second half); no eval curve to confirm.")
    return "converged", (f"{curve}, flat at the end ({tr.tail_share:.0%} of the drop in the second half); "
                         "no eval curve to confirm.")


def diagnose(train, eval=(), max_steps: int | None = None, interrupted: bool = False, *,
             lr=(), last_step: int | None = None) -> Diagnosis:
    """Judge a run from its (step, loss) points. See the module docstring for the rules.

    `lr`: the (step, learning_rate) points of the log, to measure time in learning done
    (LogState.learning_rate); without them time is measured in steps.
    `last_step`: how far the run got, when the log knows better than the last loss point.
    """
    t_steps, t_loss = _points(train)
    e_steps, e_loss = _points(eval or ())
    seen = [int(a[-1]) for a in (t_steps, e_steps) if len(a)] + ([last_step] if last_step else [])
    last_step = max(seen, default=0)
    ev: dict = {"n_train": len(t_loss), "n_eval": len(e_loss), "last_step": last_step, "max_steps": max_steps}
    notes: list[str] = []
    if interrupted:
        of = f" of {max_steps}" if max_steps else ""
        notes.append(f"run was interrupted at step {last_step}{of}: judgement is provisional")

    def verdict(state: str, reason: str) -> Diagnosis:
        return Diagnosis(state, reason, ev, NEXT_MOVES[state], notes)

    bad_train = t_steps[~np.isfinite(t_loss)]
    bad_eval = e_steps[~np.isfinite(e_loss)]
    if len(bad_eval):
        notes.append(f"NaN/inf eval loss at step {int(bad_eval[0])}")
        e_steps, e_loss = e_steps[np.isfinite(e_loss)], e_loss[np.isfinite(e_loss)]
        ev["n_eval"] = len(e_loss)
    if len(bad_train):  # rule 2: NaN/inf
        s = int(bad_train[0])
        notes.append(f"NaN/inf loss at step {s}")
        ev["nan_step"] = s
        return verdict("failed", f"the training loss became NaN/inf at step {s}: the weights blew up.")
    if len(t_loss) < MIN_TRAIN_POINTS:  # rule 1
        return verdict("unknown", f"only {len(t_loss)} training loss point(s): need at least "
                                  f"{MIN_TRAIN_POINTS} to see a curve.")

    lr = list(lr or ())
    ev["time_axis"] = "learning done (the learning rate added up)" if len(lr) >= 2 else "steps"
    tr = measure_train(t_steps, t_loss, lr, ev)
    evc = measure_eval(e_steps, e_loss, lr, ev)
    notes.extend(eval_notes(len(e_loss)))
    failed = failed_reason(tr, evc)
    if failed:
        return verdict("failed", failed)
    return verdict(*(judge_with_eval(tr, evc) if len(e_loss) >= 2 else judge_train_only(tr)))
