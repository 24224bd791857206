"""Give a model the math exam: batched greedy answers, scored by the lesson's seed rule and a strict rule.

    result = exam(model_or_run, "resources/2_7/test.jsonl")
    result            # per-question table in Jupyter
    result.summary()  # one line

Loading and generation are `inference`'s, the rules are `scoring`'s, the tables are `cards`'.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from . import data, inference, paths, scoring
from .cards import ExamComparison, ExamReport
from .curves import Progress


def save(result: scoring.ExamResult, path) -> Path:
    """Write JSON to `path`; an existing file is never overwritten (`-2`, `-3`... is appended)."""
    path, k = Path(path), 2
    target = path
    while target.exists():
        target = path.with_name(f"{path.stem}-{k}{path.suffix}")
        k += 1
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(result.to_json(), ensure_ascii=False, indent=1), encoding="utf-8")
    result.path = str(target)
    return target


def load(path) -> ExamReport:
    result = ExamReport.from_json(json.loads(Path(path).read_text(encoding="utf-8")))
    result.path = str(path)
    return result


def _rows_for(dataset, limit):
    problems = data.validate_file(dataset)
    if problems:
        raise ValueError(f"{dataset} is not a valid exam file:\n" + "\n".join(problems))
    return data.read_rows(dataset)[:limit]


def _scored(rows, responses, loaded, dataset, start, settings, cut=None) -> ExamReport:
    return scoring.score_responses(rows, responses, ExamReport, cut=cut, model=loaded.label,
                                   dataset=paths.short(dataset), seconds=time.time() - start, settings=settings)


def exam(model_or_run, dataset, batch_size: int = 32, max_new_tokens: int = 256, save_to=None,
         limit: int | None = None, progress: bool = True, loaded: inference.Loaded | None = None,
         threads: int | None = None, tool: bool | None = None) -> ExamReport:
    """Answer every question greedily in batches and score them.

    model_or_run: a `Model`, a model folder, a LoRA checkpoint folder, or a Run (its best checkpoint).
    save_to: JSON path; None saves next to the checkpoint (base models: output/exams/<name>/); False skips.
    threads: CPU threads for generation; None picks the idle cores (see `inference.cpu_threads`).
    tool: the calculator answers the model's `<<...>>` calls; None: where the model was trained on the
    calculator data (`inference.uses_calculator`). tool=False examines such a model without its calculator.
    """
    dataset = Path(dataset)
    rows = _rows_for(dataset, limit)
    loaded = loaded or inference.load(model_or_run)
    tool = inference.uses_calculator(model_or_run) if tool is None else tool
    prompts = [inference.encode_prompt(loaded.template, r) for r in rows]
    order = sorted(range(len(rows)), key=lambda k: len(prompts[k]))  # similar lengths share a batch
    responses: list[str] = [""] * len(rows)
    cut = [False] * len(rows)
    start = time.time()
    bar = Progress(f"exam {dataset.stem}", total=len(rows), unit="q", disable=not progress)
    with inference.threads(threads):
        for b in range(0, len(order), batch_size):
            chunk = order[b:b + batch_size]
            for k, (text, ended) in zip(chunk, inference.generate_ends(loaded, [prompts[k] for k in chunk],
                                                                      max_new_tokens, tool=tool)):
                responses[k], cut[k] = text, ended
            bar.update(b + len(chunk))
    bar.close()
    result = _scored(rows, responses, loaded, dataset, start,
                     {"batch_size": batch_size, "max_new_tokens": max_new_tokens, "device": inference.device(),
                      "limit": limit, "threads": threads or "auto", "tool": tool}, cut)
    if save_to is not False:
        save(result, Path(save_to) if save_to else loaded.home / f"exam-{dataset.stem}.json")
    return result


def lesson_loop_exam(model_or_run, dataset, max_new_tokens: int = 256, limit: int | None = None,
                     loaded: inference.Loaded | None = None, threads: int | None = None) -> ExamReport:
    """The lesson's way: one `generate` call per question (batch 1). Kept only for the benchmark."""
    dataset = Path(dataset)
    rows = _rows_for(dataset, limit)
    loaded = loaded or inference.load(model_or_run)
    start = time.time()
    with inference.threads(threads):
        responses = [inference.generate(loaded, [inference.encode_prompt(loaded.template, r)], max_new_tokens)[0]
                     for r in rows]
    return _scored(rows, responses, loaded, dataset, start,
                   {"batch_size": 1, "max_new_tokens": max_new_tokens, "limit": limit})


def compare_exams(base: scoring.ExamResult, tuned: scoring.ExamResult) -> ExamComparison:
    """Base model vs fine-tuned model on the same exam: scores side by side and per-question verdicts."""
    return ExamComparison(base, tuned)


def wording_split(base: scoring.ExamResult, tuned: scoring.ExamResult, train="train_1k") -> str:
    """What was learned, told apart: exam questions whose wording (numbers masked) is a training question's, so
    the same exercise with new numbers, and questions worded unlike any training row. Markdown table of how
    many there are of each and how the two models score on them (strict and last-number rules). The base model's
    exam may be the first questions of the tuned model's (the cpu track samples it): its column then says on how
    many of each group it was asked."""
    n = len(base.items)
    compare_exams(base, first_questions(tuned, n) if n < len(tuned.items) else tuned)  # the same questions, in order
    seen = {data.wording(data.question_of(r)) for r in data.read_rows(data.resolve_dataset(train))}
    groups = {"same wording as a training question, new numbers": [], "new wording": []}
    for k, t in enumerate(tuned.items):
        groups["same wording as a training question, new numbers" if data.wording(t.question) in seen
               else "new wording"].append((base.items[k] if k < n else None, t))
    sampled = n < len(tuned.items)
    lines = [f"| exam questions | how many | base{f' (its first {n})' if sampled else ''}: strict / last number "
             "| fine-tuned: strict / last number |", "|---|---|---|---|"]

    def pct(items, rule):
        return round(100 * sum(getattr(i, rule) for i in items) / len(items))

    for name, pairs in groups.items():
        if not pairs:
            continue
        b, t = [p[0] for p in pairs if p[0] is not None], [p[1] for p in pairs]
        base_cell = (f"{pct(b, 'strict')} / {pct(b, 'last_number')} %" if b else "not asked") + \
            (f" (of {len(b)})" if sampled and b else "")
        lines.append(f"| {name} | {len(pairs)} | {base_cell} | {pct(t, 'strict')} / {pct(t, 'last_number')} % |")
    return "\n".join(lines)


def first_questions(result: scoring.ExamResult, n: int) -> scoring.ExamResult:
    """The first n questions of an exam result, scored alone (to set beside an exam of only those questions)."""
    import dataclasses

    return dataclasses.replace(result, items=result.items[:n])


def scores_table(results: dict[str, dict[str, scoring.ExamResult]]) -> str:
    """Markdown: one row per model ({label: {exam name: result}}), per exam its strict / last-number scores
    (a one-question exam: right or wrong), then the format rate and the calculator calls over all its exams."""
    exams = list(next(iter(results.values())))
    lines = ["| model | " + " | ".join(f"{e}: strict / last number" if len(next(iter(results.values()))[e].items) > 1
                                       else e for e in exams) + " | {{ans:}} format | calculator calls |",
             "|---" * (len(exams) + 3) + "|"]
    for label, by_exam in results.items():
        cells = []
        for e in exams:
            r = by_exam[e]
            cells.append(("✅ right" if r.items[0].strict else "❌ wrong") if r.n == 1
                         else f"{r.strict_score} / {r.last_number_score} %")
        items = [i for r in by_exam.values() for i in r.items]
        calls = sum(r.calls[0] for r in by_exam.values())
        tool = any(r.settings.get("tool") for r in by_exam.values())
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {round(100 * sum(i.format for i in items) / len(items))} % "
                     f"| {calls}{' (answered)' if tool and calls else ''} |")
    return "\n".join(lines)


def misses(result: scoring.ExamResult, dataset) -> str:
    """Markdown table of the wrong answers: the first step where each departs from the worked solution, and why."""
    by_question = {data.question_of(r): r for r in data.read_rows(dataset)}
    lines = ["| # | expected | the model's first wrong step | the worked solution's step | why |", "|---|---|---|---|---|"]
    for k, item in enumerate(result.items, 1):
        if item.strict:
            continue
        if not item.format:
            lines.append(f"| {k} | {item.expected} | (no `{{{{ans:}}}}` tag) | | the answer format was not followed |")
            continue
        ref = by_question.get(item.question)
        mine, theirs, why = scoring.first_wrong_step(item.response, data.turn(ref, "assistant") if ref else "")
        lines.append(f"| {k} | {item.expected} | `{mine}` | `{theirs}` | {why} |")
    return "Every answer is right." if len(lines) == 2 else "\n".join(lines)


def over_credit_example(result: scoring.ExamResult | None = None) -> str:
    """Markdown explaining why the seed rule over-credits, with a real case from `result` when there is one."""
    real = [i for i in (result.items if result else []) if i.seed > 0 and not i.strict]
    inside = [i for i in real if scoring.inside_bigger_number(i.response, i.expected)]
    pick = (inside or real or [None])[0]
    if pick is None:
        pick = scoring.ExamItem("Xiaoli reads 1/8 and then 1/5 of a 240-page book. How many pages in all?", "78",
                                "Day 1 is 240 ÷ 8 = 30 pages, day 2 is 240 ÷ 5 = 48 pages, "
                                "so she read 780 pages.", 0.5, False, False)
        label = "**Constructed example** (no over-credited answer occurred in this result):"
    else:
        label = "**Real example from this exam:**"
    why = ("the number appears only inside a larger number" if scoring.inside_bigger_number(pick.response, pick.expected)
           else "the number appears somewhere, but not as the final tagged answer")
    return (f"{label}\n\n> {pick.question}\n\nExpected **{pick.expected}**. The model wrote:\n\n"
            f"> {pick.response.strip()[:400]}\n\nThe seed rule gives {pick.seed:g} point because `{pick.expected}` "
            f"is in the text — {why}. The strict rule reads only the last `{{{{ans:X}}}}` tag and gives 0.")
