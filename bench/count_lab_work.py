"""The work notebook 03 does on the cpu track, counted from its plan and its data: today's lab against the lab of
2026-12-02 (the design before issue 34, written out below as it was in helpers/tracks.py and the notebook).

    .venv/bin/python bench/count_lab_work.py

Training: row passes x tokens (each row's length under the embedded model's chat template), evaluations included.
Computed (issue 40): the tokens the model computes, each batch padded to its longest row, in the batch order of
ms-swift's own loader and sampler (pace.batch_order; --group_by_length where a plan sets it).
Exams: questions x the answer-length limit, every answer the notebook generates (batched generation runs a batch
until its longest answer ends or reaches the limit, so the limit is what a batch may cost). A machine-independent
count: no timing, the same on every host. Goals (issue 40): computed training tokens <= 65 %, exam tokens <= 60 %.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from helpers import pace, tracks  # noqa: E402
from helpers.view import text_table  # noqa: E402

# The cpu track before issue 34 (helpers/tracks.py at commit 244614d), with the flags that change what is counted.
_COMMON = dict(max_length=256, val_rows=20, val_dataset="val")
BEFORE_PLAN = [
    ("exp1", dict(_COMMON, batch_size=8, num_train_epochs=1, eval_steps=2, dataset="train_100", train_rows=64)),
    ("exp2", dict(_COMMON, batch_size=8, num_train_epochs=1, eval_steps=2, dataset="train_100", train_rows=64)),
    ("exp3", dict(_COMMON, batch_size=8, num_train_epochs=12, eval_steps=3, dataset="train_100", train_rows=16)),
    ("exp4", dict(_COMMON, batch_size=8, num_train_epochs=1, eval_steps=25, dataset="train_1k")),
    ("exp5", dict(_COMMON, batch_size=8, num_train_epochs=2, eval_steps=25, dataset="train_1k", resume_from="exp4")),
    ("exp6", dict(_COMMON, batch_size=8, num_train_epochs=1, eval_steps=25, dataset="train_1k_calc",
                  val_dataset="val_calc")),
]
_N = 112  # the cpu track's answer limit before issue 34
BEFORE_EXAMS = [
    ("base model: the radish field", "demo", None, _N), ("base model: the lesson's ten", "test", None, _N),
    ("base model: exam_100", "exam_100", None, _N), ("fine-tuned: the lesson's ten", "test", None, _N),
    ("fine-tuned: exam_100", "exam_100", None, _N), ("fine-tuned: the radish field", "demo", None, _N),
    ("merged: the lesson's ten (same answers?)", "test", None, _N),
    ("base model: the radish field, again for the scores table", "demo", None, _N),
] + [(f"experiment 6 {tool} its calculator: {what}", ds, None, _N) for tool in ("with", "without")
     for what, ds in (("the lesson's ten", "test"), ("exam_100", "exam_100"), ("the radish field", "demo"))] + [
    ("served: the radish field to base, tuned, calculator (raw, and closed: 2 calls)", "demo", None, _N, 5),
    ("GGUF f16 and q8_0 files, each beside the merged folder: the lesson's ten", "test", None, _N, 4)]
# The lab timed on 2026-12-02 (bf16, 6 experiments, resources/recordings/lab_timing.json) had no section 9 yet.
TIMED_EXAMS = BEFORE_EXAMS[:-2]


def work(plan, exams) -> dict:
    experiments, exam_list = pace.plan_work(plan), pace.exam_work(exams)
    return {"experiments": experiments, "exams": exam_list, "totals": pace.totals(experiments, exam_list)}


def computed(plan) -> list[int]:
    """Per experiment, the tokens the model computes, padding included (training in ms-swift's batch order, and the
    ungrouped evaluations): pace.plan_computed."""
    return [w["train_computed"] + w["eval_computed"] for w in pace.plan_computed(plan)]


def main() -> int:
    before, now = work(BEFORE_PLAN, BEFORE_EXAMS), pace.lab_work("cpu")
    now_plan = tracks.lab_plan("cpu")
    before_c, now_c = computed(BEFORE_PLAN), computed(now_plan)
    rows = []
    for b, n, bc, nc in zip(before["experiments"], now["experiments"], before_c, now_c):
        rows.append((b["label"], f"{b['steps']} / {b['evals']}", f"{b['train_tokens'] + b['eval_tokens']:,}", f"{bc:,}",
                     f"{n['steps']} / {n['evals']}" + (" grouped" if dict(now_plan)[n["label"]].get("group_by_length")
                                                       else ""),
                     f"{n['train_tokens'] + n['eval_tokens']:,}", f"{nc:,}", f"{nc / bc:.0%}"))
    bt, nt = before["totals"], now["totals"]
    train_ratio, exam_ratio = nt["train_tokens"] / bt["train_tokens"], nt["exam_tokens"] / bt["exam_tokens"]
    computed_ratio = sum(now_c) / sum(before_c)
    rows.append(("training, all six", f"{sum(e['steps'] for e in before['experiments'])} / "
                 f"{sum(e['evals'] for e in before['experiments'])}", f"{bt['train_tokens']:,}", f"{sum(before_c):,}",
                 f"{sum(e['steps'] for e in now['experiments'])} / {sum(e['evals'] for e in now['experiments'])}",
                 f"{nt['train_tokens']:,}", f"{sum(now_c):,}", f"{computed_ratio:.0%}"))
    rows.append(("exams: answers x answer tokens", f"{sum(x['questions'] for x in before['exams'])} x ≤{_N}",
                 f"{bt['exam_tokens']:,}", "", f"{sum(x['questions'] for x in now['exams'])} x "
                 f"≤{tracks.EXAM['cpu']['max_new_tokens']}", f"{nt['exam_tokens']:,}", "", f"{exam_ratio:.0%}"))
    print(text_table(rows, ["", "before: steps / evals", "tokens", "computed", "now: steps / evals", "tokens",
                            "computed", "now / before (computed)"]))
    print("\ntokens: the rows' own tokens; computed: what the model computes, each batch padded to its longest row, in "
          "ms-swift's batch order (pace.batch_order), evaluations included")
    print(f"training tokens {train_ratio:.1%} of before (issue 34's goal <= 40 %): "
          f"{'met' if train_ratio <= 0.40 else 'NOT met'}")
    print(f"computed training tokens {computed_ratio:.1%} of before (issue 40's goal <= 65 %): "
          f"{'met' if computed_ratio <= 0.65 else 'NOT met'}")
    print(f"exam tokens {exam_ratio:.1%} of before (goal <= 60 %): {'met' if exam_ratio <= 0.60 else 'NOT met'}")
    newest = pace.timings()[-1]  # the newest timed run of the lab: its machine, its measured pace
    basis = next((r for r in reversed(pace.timings()[:-1]) if r.get("work")), None)
    if basis is not None:
        here = pace.Pace(**newest["pace"])
        old_design = sum(pace.scaled(basis, here, bt))
        new_design = sum(pace.scaled(basis, here, nt))
        print(f"\nOn the machine of the newest timed run ({newest['date']}, {newest['pace']['mode']}, a measured step "
              f"{here.train_step_s:.1f} s; {newest.get('cpu', newest['hardware'])}), scaled from the timed run of "
              f"{basis['date']} ({basis['pace']['mode']}):\n  the lab before issue 34, estimated: "
              f"{old_design / 60:.0f} min\n  today's lab, estimated: {new_design / 60:.0f} min"
              + (f"; timed: {newest['wall_time_s'] / 60:.0f} min" if newest.get("work") == nt else ""))
    if "--json" in sys.argv[1:]:
        timed = work(BEFORE_PLAN, TIMED_EXAMS)["totals"]
        print(json.dumps({"before": {**bt, "computed": sum(before_c)}, "now": {**nt, "computed": sum(now_c)},
                          "timed_2026_12_02": timed}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
