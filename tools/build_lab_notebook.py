"""Writes notebooks/03_fine_tuning_lab.ipynb (cells only; outputs come from executing it).

Kept as a script so the lab's many similar experiment cells stay consistent; edit here, then run
`python tools/build_lab_notebook.py` and execute the notebook (see README, "Maintainers").
"""

from pathlib import Path

import nbformat as nbf

CHECK = "# NBVAL_CHECK_OUTPUT\n"
cells = []


def md(text):
    cells.append(nbf.v4.new_markdown_cell(text.strip()))


def code(text, tags=()):
    c = nbf.v4.new_code_cell(text.strip())
    if tags:
        c.metadata["tags"] = list(tags)
    cells.append(c)


md("""
# 03 · The fine-tuning lab: teach a small model elementary-school math

In notebooks 01 and 02 you saw *why* training works (loss, gradient descent) and *why* LoRA makes it cheap.
Here you do it for real: examine a model, fine-tune it five times with the real **ms-swift** command line,
read each run's loss curves like a doctor reads a chart, take the final exam, and merge the result.

Every training cell below prints the exact `swift sft ...` command it runs — you can paste it into a
terminal in the course folder and get the same run. Nothing here is simulated: when a run is replayed from
a recording, the cell says so in capitals.

**Three tracks, one notebook.** The notebook picks one for you and tells you why:

| track | model | where | what it runs |
|---|---|---|---|
| `gpu` | Qwen2.5-1.5B-Instruct | one GPU with ≥ 16 GiB (PAI DSW A10) | the lesson's exact five experiments |
| `cpu` | SmolLM2-135M-Instruct (ships with the course) | any laptop | the five experiments scaled to ~32 min on 2 cores |
| `ci` | SmolLM2-135M-Instruct | test machines | every code path in seconds, plus replays of real cpu-track runs |
""")

code("""
# Find the course folder (the one holding helpers/) and import the helpers from it.
import sys
from pathlib import Path

ROOT = next(p for p in [Path.cwd(), *Path.cwd().parents] if (p / "helpers" / "__init__.py").is_file())
sys.path.insert(0, str(ROOT))
%config InlineBackend.figure_formats = ['png']
""")

code("""
# Parameters (papermill can override them): track=None picks automatically; record=True saves
# each run as a recording under resources/recordings/ (maintainers, cpu track).
track = None
record = False
""", tags=["parameters"])

md("""
## 0. The environment

`check_environment()` lists what this machine has and picks the track. On PAI DSW choose an instance with
one **A10** — note it has **24 GB** of GPU memory, not the 30 GB some guides quote — and an image with
PyTorch + CUDA. The estimate in the table is for the lesson's heaviest settings (batch 16, length 512).
""")

code("""
import os

if track:
    os.environ["FTLAB_TRACK"] = track
from helpers import check_environment, compare, exam, experiments, get_model, merge, replay, sft
from helpers import tracks
from helpers.paths import DATA_DIR

env = check_environment()
TRACK = env.track.name
EXAM = tracks.EXAM[TRACK]
""")

md("""
**Installing ms-swift yourself?** Quote the extra: `pip install 'ms-swift[llm]'`. Unquoted, zsh (the default
shell on macOS and in some notebook terminals) reads the square brackets as a file pattern and stops with
*no matches found*. This course pins `ms-swift==4.6.0`; `make lab` installed it for you.

The lesson was written for ms-swift 2.x. Several of its flags no longer exist in 4.x, and the helpers
translate them for you:

| lesson (2.x) | ms-swift 4.x |
|---|---|
| `--sft_type lora` | `--tuner_type lora` (the default) |
| `--batch_size 16` | `--per_device_train_batch_size 16` |
| `--eval_step 20` | `--eval_steps 20` |
| `--model_type qwen2_5-1_5b-instruct --model_id_or_path ./model` | `--model ./model --model_type qwen2 --template qwen2_5` |
| `swift export --ckpt_dir X` | `swift export --adapters X` |

## 1. The task and the model

We want an assistant that solves short word problems and ends with its answer in a fixed tag,
`{{ans:648}}`, so a program can check it. `get_model()` returns the lesson's model on the gpu track and the
embedded SmolLM2-135M elsewhere (it never waits on a download it cannot do).
""")

code("""
model = get_model()
print(model)
""")

md("""
First contact: one question, the triangle-shaped radish field. The correct answer is
18 × 6 ÷ 2 = 54 m², and 54 × 12 = **648 kg**.
""")

code("""
demo = exam(model, DATA_DIR / "demo.jsonl", max_new_tokens=EXAM["max_new_tokens"], save_to=False)
demo
""")

md("""
## 2. Baseline exam

Before training anything, measure. The exam below asks the ten lesson questions, all at once in batches
(much faster than one by one — see `bench/bench_exam.py`), and scores each answer two ways:

* **seed score** — the lesson's rule: full credit if `{{ans:N}}` appears word for word, half credit if the
  number N appears anywhere in the text;
* **strict score** — credit only if the *last* `{{ans:X}}` tag holds a number equal to N.

The seed rule is generous: "78" is found inside "780", and a number mentioned in passing counts. We show
both, side by side, and the strict one is the one to trust.
""")

code("""
base_test = exam(model, DATA_DIR / "test.jsonl", **EXAM)
base_test
""")

md("""
Ten questions make a noisy score (one lucky answer moves it by 10 points), so the course also ships a
held-out exam of 100 questions from the same 30 problem families as the training data.
""")

code("""
base_100 = exam(model, DATA_DIR / "exam_100.jsonl", **EXAM)
print(base_100.summary())
""")

md("""
## 3. Reading a training run

Training uses three sets of questions, like a student: the **training set** (the workbook the model
practises on; its error is the *training loss*), the **validation set** (mock exams taken now and then; the
*eval loss*), and the **test set** (the real exam above, never seen in training).

From the two losses you can read the state of a run:

| what the curves do | state | what to do next |
|---|---|---|
| training loss does not fall, or rises | **failed** | lower the learning rate a lot |
| both still falling at the end | **underfitting** | train longer (more epochs) |
| training falls, eval turns back up | **overfitting** | fewer epochs, or more data |
| both flat, eval at its minimum | **converged** | done: use the best checkpoint |

The helpers make this judgement automatically after every run. These are the exact rules and thresholds
they apply (smoothing first, because a loss logged from one batch is noisy):
""")

code(CHECK + """
from IPython.display import Markdown
from helpers import diagnosis

Markdown(diagnosis.thresholds_table())
""")

md("""
ms-swift saves a checkpoint at every evaluation and remembers the one with the lowest eval loss
(`best_model_checkpoint`) as well as the last one (`last_model_checkpoint`). The helpers read both from
swift's own records — you never paste a checkpoint path by hand.

The experiments change three knobs — learning rate, LoRA rank and number of epochs — and then the data.
Batch size and evaluation interval change only to keep runs short and curves readable.
""")

EXPERIMENT_TEXT = [
    """
### Experiment 1 — learning rate 0.1

The lesson starts with a deliberately huge learning rate. Each step jumps far past the bottom of the loss
valley (notebook 01 showed the same thing on a parabola), so the loss explodes instead of falling.
""",
    """
### Experiment 2 — learning rate 5e-5

A learning rate two thousand times smaller: now the model learns carefully. In one short epoch both losses
go down and are still going down when training stops — the model has not finished learning.
""",
    """
### Experiment 3 — many epochs on 100 rows

Train much longer on the same small set. The training loss goes towards zero: the model is memorising the
100 solutions. The eval loss first falls, then climbs back — the model got worse on questions it has not
seen. ms-swift's `best_model_checkpoint` is the low point of that eval curve.
""",
    """
### Experiment 4 — 1,000 rows, rank 8, 3 epochs

The cure for memorising is more data (fine-tuning usually wants 1,000+ good examples), with fewer epochs.
With ten times more data we also give LoRA more room: rank 8 instead of 4 (notebook 02: small data sets want
r ≤ 16). Both curves now fall together and are still falling at the end.
""",
    """
### Experiment 5 — 15 epochs

Train the 1,000-row run longer. In the lesson's GPU run both losses flattened and the eval loss settled at
its minimum: converged, and its best checkpoint goes to the final exam.

On the cpu track (400 rows × 2 epochs, 11 minutes) read the card carefully: the eval loss is still creeping
down at the very end (0.146 → 0.134 → 0.125 → 0.124 over the last four evaluations). The rule calls that
*underfitting* by a small margin — a third epoch would likely still help. The run is nevertheless good
enough to take the exam, as section 5 shows.
""",
]

code(CHECK + """
plan = experiments(TRACK)
print(f"Track {TRACK}: the lesson's values and this track's, experiment by experiment.")
for e in plan:
    print(f"{e.number}. {e.title:30} lesson saw {e.lesson_state:13} this track: {e.why}")
""")

for i, text in enumerate(EXPERIMENT_TEXT, 1):
    md(text)
    code(f"""
e = plan[{i - 1}]
display(e)
run{i} = sft(model, **e.params, label="exp{i}")
if record:
    from helpers import record as save_recording

    save_recording(run{i}, "exp{i}")
""")
    md(f"""The curve above is from a run that just happened on this machine. In the ci track it is a
3-step toy run, so its diagnosis means little; the replay below is a real cpu-track run of experiment {i},
recorded by this package, and shows the state the lesson describes.""")
    code(CHECK + f"""
if TRACK == "ci":
    replayed{i} = replay("cpu/exp{i}", speed=float("inf"))
    print(replayed{i}.diagnosis)
""")

md("""
## 4. All five runs on one chart

Same axes, same colours as the cards above: the explosion of experiment 1, the slow start of experiment 2,
the memorising of experiment 3 (training loss near zero), and the two large-data runs.
""")

code("""
all_runs = [run1, run2, run3, run4, run5]
compare(all_runs, title=f"Five experiments, {TRACK} track")
""")

code(CHECK + """
if TRACK == "ci":
    from helpers.recordings import load

    recorded = [load(f"cpu/exp{i}") for i in range(1, 6)]
    compare(recorded, title="Five experiments, cpu track (recorded)")
    for r in recorded:
        print(f"{r.label}: {r.diagnosis.state:13} {r.wall_time_s / 60:4.1f} min  {r.params['train_rows']} rows")
""")

md("""
## 5. The final exam

Which checkpoint should take the exam? The one with the lowest eval loss among the runs that finished —
picked automatically from swift's records, not typed in.
""")

code("""
finished = [r for r in all_runs if r.status == "finished" and r.best_checkpoint]
best_run = min(finished, key=lambda r: min(v for _, v in r.curves()[1]))
print(f"Best run: {best_run.label}, checkpoint {best_run.best_checkpoint.name}")
tuned_test = exam(best_run, DATA_DIR / "test.jsonl", **EXAM)
tuned_100 = exam(best_run, DATA_DIR / "exam_100.jsonl", **EXAM)
print(tuned_100.summary())
""")

code("""
if record:
    from helpers.recordings import save_exams

    save_exams("cpu", best_run.label, base_test=base_test, base_100=base_100, tuned_test=tuned_test,
               tuned_100=tuned_100)
""")

code("""
from helpers.exams import compare as compare_exams

compare_exams(base_test, tuned_test)
""")

md("""
In the ci track the runs above are toys. These are the scores of the real cpu-track run (recorded with
the runs you replayed), base model versus fine-tuned, on both exams:
""")

code(CHECK + """
if TRACK == "ci":
    from helpers.recordings import recorded_exams

    recorded_scores = recorded_exams("cpu")
    print(recorded_scores.table())
""")

md("""
### Why two scores?

The seed rule asks "does the number appear?". The strict rule asks "is the tagged final answer right?".
Here is an answer from the exam where they disagree:
""")

code("""
from helpers.exams import over_credit_example

source = recorded_scores.tuned_100 if TRACK == "ci" else tuned_100
Markdown(over_credit_example(source))
""")

md("""
## 6. Merge the adapter into the model

A LoRA checkpoint holds only the small matrices (a few MB). To use it you either load the base model *plus*
the adapter at run time, or merge them once into a full model with `swift export --merge_lora true`
(the lesson's `--ckpt_dir` is `--adapters` today). The helper checks two things after merging: the
tokenizer is identical to the base model's, and the merged model gives the same greedy answer as
base + adapter.
""")

code("""
merged_dir = merge(best_run)
merged_exam = exam(merged_dir, DATA_DIR / "test.jsonl", **EXAM, save_to=False)
same = [a.response for a in merged_exam.items] == [b.response for b in tuned_test.items]
print("merged model answers exactly like base + adapter:", same)
""")

md("""
**Adapters or merged weights?**

* Keep **adapters** when you serve several fine-tunes of one base model, want to switch or roll back
  instantly (LoRA never changed the base weights), or ship updates of a few MB.
* **Merge** when one fine-tune is what you serve: no adapter arithmetic at inference, and any tool that
  loads a plain model can load it. Merge the `best_model_checkpoint`.

## 7. What you did, and what production adds

* You measured first, then changed one thing at a time and read the curves after each run.
* Learning rate sets the size of each step; epochs set how long the model studies; batch size sets how
  many examples each step averages over; LoRA rank sets how much the model may change.
* Failed, underfitting, overfitting and converged are not opinions: they are patterns in two curves,
  and the helper's card shows the numbers behind each verdict.

Before fine-tuning in a real project, ask:

1. Would a better prompt, retrieval (RAG) or a tool (a calculator plug-in for arithmetic) be enough? They
   are much cheaper than training.
2. Do you have enough good data — roughly 1,000+ clean, varied examples — and a held-out exam?
3. Does the budget (GPU hours, people to build data, evaluation) match the gain?

**Further reading.** The ms-swift documentation (command-line parameters, LoRA and export); the LoRA paper
by Hu et al. (2021); the PEFT library's guides for other methods (prefix/prompt tuning, adapters, IA³).
Fine-tuning works the same way far beyond language: image classifiers (ResNet, ViT), object detectors
(YOLO, Faster R-CNN), translation models (mBART, T5) and recommenders all start from a pre-trained model
and adapt it to a narrower task with less data.

**Next steps for you:** change one knob in an experiment cell and predict the diagnosis before you run it.
Run `python -m helpers runs` in a terminal to list every run you have made.
""")

nb = nbf.v4.new_notebook()
nb.cells = cells
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
nb.metadata["language_info"] = {"name": "python"}
out = Path(__file__).resolve().parent.parent / "notebooks" / "03_fine_tuning_lab.ipynb"
nbf.write(nb, out)
print(f"wrote {out.name}: {len(cells)} cells")
