# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Fine-Tuning Lab (.venv)
#     language: python
#     name: ftlab
# ---

# %% [markdown]
# # 03 · The fine-tuning lab: teach a small model elementary-school math
#
# In notebooks 01 and 02 you saw *why* training works (loss, gradient descent) and *why* LoRA makes it cheap.
# Here you do it for real: examine a model, fine-tune it five times with the real **ms-swift** command line,
# read each run's loss curves like a doctor reads a chart, take the final exam, and merge the result.
#
# Every training cell below prints the exact `swift sft ...` command it runs — you can paste it into a
# terminal in the course folder and get the same run. Nothing here is simulated: when a run is replayed from
# a recording, the cell says so in capitals.
#
# **Three tracks, one notebook.** The notebook picks one for you and tells you why:
#
# | track | model | where | what it runs |
# |---|---|---|---|
# | `gpu` | Qwen2.5-1.5B-Instruct | one GPU with ≥ 16 GiB (PAI DSW A10) | the lesson's exact five experiments |
# | `cpu` | SmolLM2-135M-Instruct (ships with the course) | any laptop | the five experiments scaled to a laptop, and a sixth with a calculator: the recorded run of this notebook took 44 min on 2 cores (bf16 on AMX) |
# | `ci` | SmolLM2-135M-Instruct | test machines | every code path in seconds, plus replays of real cpu-track runs |

# %%
# Find the course folder (the one holding helpers/), check that this kernel is the course's, import the helpers from it.
import sys
from pathlib import Path

ROOT = Path.cwd()
while not (ROOT / "helpers" / "__init__.py").is_file():  # find the course folder, wherever Jupyter started
    if ROOT == ROOT.parent:
        raise RuntimeError("Open this notebook from inside the Fine-Tuning Lab folder.")
    ROOT = ROOT.parent
sys.path.insert(0, str(ROOT))
from helpers import check_kernel  # noqa: E402

check_kernel()  # on a kernel that is not the course's (Jupyter picked another Python), stop here with the fix
# %config InlineBackend.figure_formats = ['png']

# %% tags=["parameters"]
# Parameters (papermill can override them): track=None picks automatically; record=True saves
# each run as a recording under resources/recordings/ (maintainers, cpu track).
track = None
record = False

# %% [markdown]
# ## 0. The environment
#
# `check_environment()` lists what this machine has and picks the track. On PAI DSW choose an instance with
# one **A10** — note it has **24 GB** of GPU memory, not the 30 GB some guides quote — and an image with
# PyTorch + CUDA. The estimate in the table is for the lesson's heaviest settings (batch 16, length 512).
# On the cpu track the row *Lab estimate* scales a timed run of this notebook by a training step measured here.
# In the recorded run below it said 18 min and the notebook took 44: it scaled a run of the lab before
# experiment 6 was added. Estimates now scale a timed run by the work today's lab does against the work that run
# did, counted from the plan (steps, evaluations, exam answers: `bench/count_lab_work.py`).

# %%
import os

if track:
    os.environ["FTLAB_TRACK"] = track
from helpers import (DATA_DIR, check_environment, compare_runs, exam, exam_settings, experiments, get_model, merge,
                     plan_table, replay, save_recording, sft)

env = check_environment()
TRACK = env.track.name
EXAM = exam_settings(TRACK)

# %% [markdown]
# **Installing ms-swift yourself?** Quote the extra: `pip install 'ms-swift[llm]'`. Unquoted, zsh (the default
# shell on macOS and in some notebook terminals) reads the square brackets as a file pattern and stops with
# *no matches found*. This course pins `ms-swift==4.6.0`; `make lab` installed it for you.
#
# The lesson was written for ms-swift 2.x. Several of its flags no longer exist in 4.x, and the helpers
# translate them for you:
#
# | lesson (2.x) | ms-swift 4.x |
# |---|---|
# | `--sft_type lora` | `--tuner_type lora` (the default) |
# | `--batch_size 16` | `--per_device_train_batch_size 16` |
# | `--eval_step 20` | `--eval_steps 20` |
# | `--model_type qwen2_5-1_5b-instruct --model_id_or_path ./model` | `--model ./model --model_type qwen2 --template qwen2_5` |
# | `swift export --ckpt_dir X` | `swift export --adapters X` |
#
# ## 1. The task and the model
#
# We want an assistant that solves short word problems and ends with its answer in a fixed tag,
# `{{ans:648}}`, so a program can check it. `get_model()` returns the lesson's model on the gpu track and the
# embedded SmolLM2-135M elsewhere (it never waits on a download it cannot do).

# %%
model = get_model()
print(model)

# %% [markdown]
# First contact: one question, the triangle-shaped radish field. The correct answer is
# 18 × 6 ÷ 2 = 54 m², and 54 × 12 = **648 kg**.

# %%
demo = exam(model, DATA_DIR / "demo.jsonl", max_new_tokens=EXAM["max_new_tokens"], save_to=False)
demo

# %% [markdown]
# **Why not a better prompt, or retrieval?** Earlier lessons improved answers from the outside: a sharper
# prompt, or RAG, which puts relevant documents next to the question. RAG turns the test into an
# *open-book exam*. That helps when the missing piece is a fact you can look up, but this model does not
# lack a fact: it knows how to find a triangle's area and still fails to carry out the steps. Nobody has
# seen an open book turn a weak arithmetic student into a strong one; the skill itself has to improve, and
# for a model that means changing its weights: fine-tuning on worked solutions. (Pure arithmetic could be
# handed to a calculator tool; deciding which calculation to do cannot.)

# %% [markdown]
# ## 2. Baseline exam
#
# Before training anything, measure. The exam below asks the ten lesson questions, all at once in batches
# (much faster than one by one — see `bench/bench_exam.py`), and scores each answer three ways:
#
# * **seed score** — the lesson's rule: full credit if `{{ans:N}}` appears word for word, half credit if the
#   number N appears anywhere in the text;
# * **strict score** — credit only if the *last* `{{ans:X}}` tag holds a number equal to N;
# * **last number** — credit if the last number the answer writes is N, tag or not.
#
# The seed rule is generous: "78" is found inside "780", and a number mentioned in passing counts. The strict
# rule is the one to trust after fine-tuning, but it also asks for a format the base model was never taught, so
# a strict 0 mixes "cannot do the maths" with "does not write the tag". The last-number rule needs no tag: it
# separates the two. Each answer may use a fixed number of tokens (`EXAM["max_new_tokens"]`); one that is still
# talking when it runs out is marked *cut off* in the table and counted in the summary line, so you can see
# how many of the base model's answers never got to a final number at all.

# %%
base_test = exam(model, DATA_DIR / "test.jsonl", **EXAM)
base_test

# %% [markdown]
# **The lesson's 30 points, next to our two scores.** In the lesson, Qwen2.5-1.5B scored **30** on these ten
# questions. Its rule for that *baseline* exam gave the full point whenever the number appeared anywhere in
# the answer, tag or not; only its *final* exam, after fine-tuning, cut a bare number to half a point (our
# seed rule). So the lesson's before-score was measured on a more generous scale than its after-score.
# This course applies the same two rules before and after. Here is this track's baseline under all three:

# %%
lesson_baseline_rule = int(100 * sum(item.seed > 0 for item in base_test.items) / base_test.n)
rules = {
    "lesson's baseline rule (number anywhere = 1 point)": lesson_baseline_rule,
    "seed rule (tag = 1 point, number anywhere = 1/2)": base_test.seed_score,
    "strict rule (last {{ans:}} tag equals the answer)": base_test.strict_score,
}
for rule, score in rules.items():
    print(f"{rule:52} {score:3d}")
print("(the lesson's Qwen2.5-1.5B under its baseline rule: 30)")

# %% [markdown]
# Ten questions make a noisy score (one lucky answer moves it by 10 points), so the course also ships a
# held-out exam of 100 questions from the same 30 problem families as the training data.

# %%
base_100 = exam(model, DATA_DIR / "exam_100.jsonl", **EXAM)
print(base_100.summary())

# %% [markdown]
# ### Where the training data comes from
#
# The lesson's workbook was written by a stronger model: a large model (DeepSeek-R1, the lesson says) solved
# the problems, and its worked answers became the training rows, a kind of distillation. That is cheap, but
# a teacher model makes mistakes, and a wrong worked solution teaches the wrong thing. This course's rows
# are generated by a program instead, `tools/problems.py` (the data card is `resources/README.md`): 30
# problem families, each of which draws numbers, writes a short solution with one formula per line, and
# recomputes the answer by a different route (`math.lcm`, `datetime`, `fractions`, brute force); the tests
# compare the two answers for hundreds of draws. Every training answer is therefore checked, and the short,
# regular solutions are something a 135 M-parameter model can imitate.
#
# How a solution is written matters as much as how many there are. Each line does **one operation per
# `=`**: `Area = 16 × 5 ÷ 2 = 80 ÷ 2 = 40` writes out the 80 that a small model would otherwise have to keep
# in its head. One family at work:

# %%
# NBVAL_CHECK_OUTPUT

import random

from tools import problems  # the data generator lives with the maintainers' tools

family = problems.FAMILIES["triangle_yield"]
example = family.make(random.Random(7))
print(example.question, "\n")
print(example.solution(), "\n")
print(f"independent check: {family.check(example.params)} (the written solution says {example.answer})")

# %% [markdown]
# ## 3. Reading a training run
#
# Training uses three sets of questions, like a student: the **training set** (the workbook the model
# practises on; its error is the *training loss*), the **validation set** (mock exams taken now and then; the
# *eval loss*), and the **test set** (the real exam above, never seen in training).
#
# From the two losses you can read the state of a run:
#
# | what the curves do | state | what to do next |
# |---|---|---|
# | training loss does not fall, or rises | **failed** | lower the learning rate a lot |
# | both still falling at the end | **underfitting** | train longer (more epochs) |
# | training falls, eval turns back up | **overfitting** | fewer epochs, or more data |
# | both flat, eval at its minimum | **converged** | done: use the best checkpoint |
#
# The helpers make this judgement automatically after every run. These are the exact rules and thresholds
# they apply (smoothing first, because a loss logged from one batch is noisy):

# %%
# NBVAL_CHECK_OUTPUT

from IPython.display import Markdown
from helpers import thresholds_table

Markdown(thresholds_table())

# %% [markdown]
# ms-swift saves a checkpoint at every evaluation and remembers the one with the lowest eval loss
# (`best_model_checkpoint`) as well as the last one (`last_model_checkpoint`). The helpers read both from
# swift's own records — you never paste a checkpoint path by hand.
#
# The experiments change three knobs — learning rate, LoRA rank and number of epochs — and then the data.
# Batch size and evaluation interval change only to keep runs short and curves readable.

# %% [markdown]
# **The lesson's limits on PAI DSW (the gpu track).** You may change any value, within these bounds:
# `batch_size` ≤ 16, `max_length` ≤ 512 and `lora_rank` ≤ 64 (beyond them the A10 runs out of memory), and
# `eval_steps` ≤ 20 (so each curve still gets enough points to read). The lesson's five runs took about 1, 2,
# 10, 5 and 20 minutes on that GPU. The cell below compares this track's plan with those bounds, for your
# information; the table under the chart in section 4 shows how long each run of this notebook took. (The cpu
# track evaluates experiments 4 and 5 every 25 steps: an epoch of 1,000 rows is 125 steps, so that is five
# evaluations an epoch, each one ending on a checkpoint that experiment 5 can continue from. On a CPU neither
# GPU memory nor that bound applies.)

# %%
DSW_LIMITS = {"batch_size": 16, "max_length": 512, "lora_rank": 64, "eval_steps": 20}
LESSON_MINUTES = [1, 2, 10, 5, 20]  # the lesson's stated run times on one A10
for e, minutes in zip(experiments(TRACK), LESSON_MINUTES):
    over = [f"{k} {e.params[k]} (DSW bound {limit})" for k, limit in DSW_LIMITS.items() if e.params.get(k, 0) > limit]
    verdict = "beyond the DSW bounds, fine here: " + ", ".join(over) if over else "within the DSW bounds"
    print(f"{e.number}. {e.title:30} lesson: ~{minutes:2d} min on an A10; this track's values: {verdict}")

# %%
# NBVAL_CHECK_OUTPUT

plan = experiments(TRACK)
print(plan_table())

# %% [markdown]
# ### Experiment 1 — a huge learning rate
#
# The lesson starts with a deliberately huge learning rate, **0.1**. Each step jumps far past the bottom of the
# loss valley (notebook 01 showed the same thing on a parabola), so the loss explodes instead of falling. The
# table under this text shows the lesson's values beside the ones this track runs, and why they differ.
#
# Every fresh run is evaluated once *before* its first step (ms-swift's `--eval_on_start true`), so the eval
# curve starts where the untrained model stands: here you can watch it jump from there.

# %%
e = plan[0]
display(e)
run1 = sft(model, **e.params, label="exp1")
if record:
    save_recording(run1, "exp1")
if TRACK == "ci":  # its runs are 3-step toys: here is the real cpu-track run of this experiment
    replay("cpu/exp1", speed=float("inf"))

# %% [markdown]
# ### Experiment 2 — a careful learning rate
#
# The lesson divides the learning rate by two thousand (0.1 → **5e-5**). Now the model learns carefully: in one
# short epoch both losses go down and are still going down when training stops — it has not finished
# learning. A 135 M model on a CPU gets only a few steps, so the cpu track uses 3e-4 to show the same picture.

# %%
e = plan[1]
display(e)
run2 = sft(model, **e.params, label="exp2")
if record:
    save_recording(run2, "exp2")
if TRACK == "ci":  # its runs are 3-step toys: here is the real cpu-track run of this experiment
    replay("cpu/exp2", speed=float("inf"))

# %% [markdown]
# ### Experiment 3 — many epochs on a small set
#
# The lesson trains **50 epochs** on its 100 rows. The training loss goes towards zero: the model is memorising
# its few solutions. The eval loss first falls, then climbs back — the model got worse on questions it has not
# seen. ms-swift's `best_model_checkpoint` is the low point of that eval curve. On the cpu track fewer rows
# and a larger learning rate reach the same memorising in minutes instead of an hour.

# %%
e = plan[2]
display(e)
run3 = sft(model, **e.params, label="exp3")
if record:
    save_recording(run3, "exp3")
if TRACK == "ci":  # its runs are 3-step toys: here is the real cpu-track run of this experiment
    replay("cpu/exp3", speed=float("inf"))

# %% [markdown]
# ### Experiment 4 — more data, a larger rank
#
# The cure for memorising is more data (fine-tuning usually wants 1,000+ good examples), with fewer epochs.
# With ten times more data the lesson also gives LoRA more room: rank 8 instead of 4 (notebook 02: small data
# sets want r ≤ 16). Both curves now fall together and are still falling at the end.
#
# Look at the learning rate too: ms-swift does not keep it fixed. By default it follows a *cosine schedule*,
# falling smoothly from the value you set to zero at the last step, so the last steps make only small
# changes. (The lesson notes the same: the framework lowers the learning rate as training goes on.) On the
# cpu track experiment 5 will continue this run, so experiment 4 takes only the first half of a two-epoch
# schedule (`--lr_scheduler_kwargs '{"num_cycles": 0.25}'`): it ends at half its learning rate, and experiment 5
# goes on down the same curve instead of starting it again.

# %%
e = plan[3]
display(e)
run4 = sft(model, **e.params, label="exp4")
if record:
    save_recording(run4, "exp4")
if TRACK == "ci":  # its runs are 3-step toys: here is the real cpu-track run of this experiment
    replay("cpu/exp4", speed=float("inf"))

# %% [markdown]
# ### Experiment 5 — train longer
#
# Train the large-data run longer (the lesson: 3 → **15 epochs**). In the lesson's GPU run both losses
# flattened and the eval loss settled at its minimum: converged, and its best checkpoint went to the final exam.
#
# The cpu track continues experiment 4's run into a second epoch (ms-swift's `--resume_from_checkpoint`)
# instead of starting fifteen epochs over. Its curves begin with experiment 4's points, so the card judges the
# whole training, not only the second half. The learning rate goes on down from where experiment 4 left it
# (half its peak) to zero at step 250: no restart. In the recorded run the eval loss went 1.52 (before
# training) → 0.174 → 0.088 → 0.072 → 0.070 → 0.056 in experiment 4 and 0.056 → 0.050 → **0.046** (step 200)
# → 0.046 → 0.047 in the second epoch: it stopped falling at step 200 and then crept up a little, within the
# tolerance of that minimum, so the helper says **converged**, as the lesson did. Its best checkpoint, step
# 200, goes to the exam.

# %%
e = plan[4]
display(e)
run5 = sft(model, **e.params, label="exp5")
if record:
    save_recording(run5, "exp5")
if TRACK == "ci":  # its runs are 3-step toys: here is the real cpu-track run of this experiment
    replay("cpu/exp5", speed=float("inf"))

# %% [markdown]
# ## 4. All five runs on one chart
#
# Same axes, same colours as the cards above: the explosion of experiment 1, the slow start of experiment 2,
# the memorising of experiment 3 (training loss near zero), and the two large-data runs. The table under the
# chart has each run's state, its lowest eval loss and how long it took here.

# %%
all_runs = [run1, run2, run3, run4, run5]
compare_runs(all_runs, title=f"Five experiments, {TRACK} track")
if TRACK == "ci":  # its runs are toys: the five recorded cpu-track runs too
    from helpers import load_recording

    compare_runs([load_recording(f"cpu/exp{i}") for i in range(1, 6)], title="Five experiments, cpu track (recorded)")

# %% [markdown]
# ### The five experiments at a glance
#
# The lesson's own reading of its five gpu runs, in the order it made them:
#
# | # | observation (training loss, eval loss) | status | cause | adjustment |
# |---|---|---|---|---|
# | 1 | both go up | **failed** | learning rate 0.1 is far too large: every step overshoots the valley | lower it 2,000-fold, to 5e-5 |
# | 2 | both go down, still falling when training ends | **underfitting** | learning works, but one short epoch stops it early | train longer (50 epochs); batch 16 and evaluation every 20 steps keep it fast and readable |
# | 3 | training keeps falling; eval falls, then climbs | **overfitting** | 100 rows seen 50 times: the model memorises the workbook | ten times the data (1,000 rows), fewer epochs (3), LoRA rank 8 for the richer data |
# | 4 | both go down, still falling | **underfitting** | nearly there, too few passes over the data | more epochs: 15 |
# | 5 | both flat; eval stops improving, even creeps up a little | **converged** | the model has learned what this data can teach | stop; take `best_model_checkpoint` (the lowest eval loss) to the exam |
#
# One inconsistency in the lesson: after experiment 3 its text says "5 epochs" and "rank 16", but the
# experiment it then runs uses 3 epochs and rank 8. The course follows the experiment.

# %% [markdown]
# ## 5. The final exam
#
# Which checkpoint should take the exam? The one with the lowest eval loss among the runs that finished —
# picked automatically from swift's records, not typed in.

# %%
from helpers import pick_best

best_run = pick_best(all_runs)  # lowest eval loss among the runs that finished
print(f"Best run: {best_run.label}, checkpoint {best_run.best_checkpoint.name}")
tuned_test = exam(best_run, DATA_DIR / "test.jsonl", **EXAM)
tuned_100 = exam(best_run, DATA_DIR / "exam_100.jsonl", **EXAM)
print(tuned_100.summary())

# %%
if record:
    from helpers import save_exams

    save_exams("cpu", best_run.label, base_test=base_test, base_100=base_100, tuned_test=tuned_test,
               tuned_100=tuned_100)

# %%
from helpers import compare_exams

compare_exams(base_test, tuned_test)

# %% [markdown]
# **Where the wrong answers go wrong.** For each lesson question the fine-tuned model still misses, the
# first step where its answer departs from the worked solution. Two kinds of mistakes are worth telling
# apart: an *arithmetic slip* (the right formula, a wrong result — a 135 M model multiplies and divides
# unreliably) and a *wrong formula* (the model applied another problem type's recipe, because the question is
# worded unlike its training rows). More data and steps fix the second kind sooner than the first.

# %%
from helpers import misses

Markdown(misses(tuned_test, DATA_DIR / "test.jsonl"))

# %% [markdown]
# And the question this notebook opened with, the radish field (648 kg), asked again, now of the fine-tuned model:

# %%
tuned_demo = exam(best_run, DATA_DIR / "demo.jsonl", max_new_tokens=EXAM["max_new_tokens"], save_to=False)
tuned_demo

# %% [markdown]
# In the recorded cpu-track run the fine-tuned model gets the method and the format right and the arithmetic
# wrong: "Area = 18 × 6 ÷ 2 = 124 ÷ 2 = 68", then 68 × 12 = 792 kg instead of 54 × 12 = 648. That is what
# fine-tuning taught a 135 M model here: *which* steps to write, in the trained layout, on every question
# (format 100 %), not reliable multiplication. The same kind of slip explains most of its misses in the
# table above. A calculator tool, deciding what to compute and handing the computing over, is the next step:
# section 8 takes it.

# %% [markdown]
# For reference, the scores of the recorded cpu-track run (the run whose outputs are stored in this notebook,
# made with `tools/record_lab_run.py`), base model versus fine-tuned, on both exams. On the ci track the runs
# above are toys, and this table is the one to read:

# %%
# NBVAL_CHECK_OUTPUT

from helpers import recorded_exams

recorded_scores = recorded_exams("cpu")
print(recorded_scores.table())

# %% [markdown]
# ### What was learned: new numbers, or new wording?
#
# "Held out" can mean two things. The generator writes each training row from a family's sentences with
# numbers drawn at random, and `exam_100` is drawn from the same families: mask the numbers, and most of its
# questions are training sentences with new numbers. The lesson's ten questions were written by people, and
# none of them is worded like a training row. The table below sorts the exam questions into those two groups
# (a question counts as "same wording" when its masked text equals a masked training question) and scores
# each group apart. In the recorded cpu-track run, 94 of the 100 `exam_100` questions share a training
# question's wording (the fine-tuned model gets 48 % of them right) and 6 do not (33 %); on the lesson's ten, all
# new wording, it gets 50 %. The base model scores 0 on both under the strict rule, and at most 2 % by its last
# number: the format was not all it lacked.

# %%
from helpers import wording_split

exams = (recorded_scores.base_100, recorded_scores.tuned_100, recorded_scores.base_test, recorded_scores.tuned_test) \
    if TRACK == "ci" else (base_100, tuned_100, base_test, tuned_test)  # the ci track's own runs are toys
Markdown("**exam_100**\n\n" + wording_split(*exams[:2]) + "\n\n**the lesson's ten questions**\n\n"
         + wording_split(*exams[2:]))

# %% [markdown]
# ### Why two scores?
#
# The seed rule asks "does the number appear?". The strict rule asks "is the tagged final answer right?".
# Here is an answer from the exam where they disagree:

# %%
from helpers import over_credit_example

source = recorded_scores.tuned_100 if TRACK == "ci" else tuned_100
Markdown(over_credit_example(source))

# %% [markdown]
# ## 6. Merge the adapter into the model
#
# A LoRA checkpoint holds only the small matrices: megabytes, not gigabytes — for Qwen2.5-1.5B at rank 8 about
# 37 MB on disk (its 9.2 M numbers in fp32, as PEFT and ms-swift keep adapter weights; 18 MB would be the bf16
# size, the lesson's ~20 MB), and 9.8 MB for this course's SmolLM2 adapter (see notebook 02). To use it you either load the base model *plus*
# the adapter at run time, or merge them once into a full model with `swift export --merge_lora true`
# (the lesson's `--ckpt_dir` is `--adapters` today). The helper checks two things after merging: the
# tokenizer is identical to the base model's, and the merged model gives the same greedy answer as
# base + adapter.

# %%
merged_dir = merge(best_run)
merged_exam = exam(merged_dir, DATA_DIR / "test.jsonl", **EXAM, save_to=False)
same = [a.response for a in merged_exam.items] == [b.response for b in tuned_test.items]
print("merged model answers exactly like base + adapter:", same)

# %% [markdown]
# ### What `exam(best_run)` does underneath
#
# A checkpoint folder holds only the adapter: the small A and B matrices. To use it, load the base model and
# wrap it with the adapter, one call from transformers and one from PEFT. The question must be laid out
# exactly as in training, so ms-swift's template encodes it (the same function the exam calls); then the
# model answers greedily.

# %%
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer
from transformers.utils import logging as hf_logging

from helpers import encode_prompt, prompt_row, swift_template

hf_logging.set_verbosity_error()  # keep loading bars and library notices out of the saved notebook
hf_logging.disable_progress_bar()
device = "cuda" if torch.cuda.is_available() else "cpu"
tokenizer = AutoTokenizer.from_pretrained(model.path)
lm = AutoModelForCausalLM.from_pretrained(model.path, dtype=torch.bfloat16 if device == "cuda" else torch.float32)
lm = PeftModel.from_pretrained(lm, str(best_run.best_checkpoint)).to(device).eval()  # base + adapter

template = swift_template(model.path, model.model_type, model.template)  # the chat layout used in training
ids = encode_prompt(template, prompt_row("A car travels at 46 km per hour for 3 hours. How many km does it travel?"))
with torch.inference_mode():
    out = lm.generate(torch.tensor([ids], device=device), max_new_tokens=EXAM["max_new_tokens"], do_sample=False,
                      temperature=None, top_p=None, top_k=None)  # greedy: unset the sampling defaults
print(tokenizer.decode(out[0, len(ids):], skip_special_tokens=True))

adapter_mb = (best_run.best_checkpoint / "adapter_model.safetensors").stat().st_size / 1e6
base_mb = sum(f.stat().st_size for f in Path(model.path).glob("*.safetensors")) / 1e6
print(f"\nadapter file {adapter_mb:,.1f} MB next to a base model of {base_mb:,.0f} MB")

# %% [markdown]
# ### Ask your model
#
# Type a word problem of your own and press the button: the base model and your fine-tuned model answer side
# by side, each with its `{{ans:}}` value pulled out. Give the expected number and both answers are marked
# right or wrong by the strict rule. The widget uses the exam's prompt, template and answer length
# (`EXAM["max_new_tokens"]` tokens on this track), and loads each model once. It opens with the lesson's radish
# field (648 kg) already answered, so the saved notebook shows a real pair of answers. On the ci track the
# "fine-tuned" model is a three-step toy and answers are cut very short: use the cpu or gpu track to see the
# difference training makes.

# %%
from helpers import ask_your_model

asker = ask_your_model(model, best_run, max_new_tokens=EXAM["max_new_tokens"])

# %% [markdown]
# **Adapters or merged weights?**
#
# * Keep **adapters** when you serve several fine-tunes of one base model, want to switch or roll back
#   instantly (LoRA never changed the base weights), or ship updates of megabytes instead of gigabytes.
# * **Merge** when one fine-tune is what you serve: no adapter arithmetic at inference, and any tool that
#   loads a plain model can load it. Merge the `best_model_checkpoint`.
#
# ## 7. Tools for a class
#
# For an instructor who demonstrates the lab live, or a learner who wants to try one more thing:
#
# * **Change one knob and run again.** Every experiment's parameters are a dictionary; `|` replaces the
#   values you name and keeps the rest: `sft(model, **(plan[1].params | {"learning_rate": 1e-4}), label="exp2 at 1e-4")`.
#   Each run gets its own numbered folder under `output/`; nothing earlier is overwritten.
# * **Talk while it trains.** `run = sft(..., wait=False)` starts the run and gives the notebook back at once.
#   `runs()` lists every run on disk (this notebook's, a terminal's, one a restarted kernel left behind) with
#   its state and time, `run.wait()` blocks until it is done, and `stop(run)` ends it, whole process tree,
#   keeping its log and checkpoints.
# * **Show a run without waiting for it.** `replay()` draws a recorded real run point by point, faster than it
#   ran, on any track; its card is the same diagnosis. Here experiment 3's recorded memorising, at 30× speed:

# %%
_ = replay("cpu/exp3", speed=30)  # draws the run and its card; the Run it returns is not printed

# %% [markdown]
# * **Try a knob yourself.** In a new cell, `from helpers import playground` and then `playground(model, all_runs)`
#   shows the lesson's five knobs as widgets. Before you press Train it says how long the run will take on this
#   machine, from the seconds per training row that experiment 4 measured here. Train starts the run in the
#   background (the notebook stays free), draws its curves live, then puts the new run's card under the chart and
#   its curves over the five experiments'. A good first try: experiment 2 with a learning rate ten times larger.
#   Predict the diagnosis before you press Train.

# %% [markdown]
# ## 8. Going further: a calculator for the arithmetic
#
# The lesson ends with a promise: a model's reasoning gets better with fine-tuning, and its *computing* can be
# handed to a calculator plug-in. The misses above show why a small model needs one: the fine-tuned model writes
# the right steps in the right format and then multiplies wrongly. So experiment 6 teaches it to call a
# calculator instead of computing. Its training data are the same 1,000 rows with each calculation written as a
# call and its result (`resources/2_7/train_1k_calc.jsonl`):

# %%
# NBVAL_CHECK_OUTPUT

from helpers import read_rows, turn

plain_row, calc_row = (read_rows(DATA_DIR / f"{name}.jsonl")[2] for name in ("train_1k", "train_1k_calc"))
print("plain:     ", turn(plain_row, "assistant").replace("\n", "\n            "))
print("calculator:", turn(calc_row, "assistant").replace("\n", "\n            "))

# %% [markdown]
# The arithmetic goes between `<<` and `>>`, the result follows. When the model writes `>>`, the exam's decoder
# stops it, computes the call with a safe calculator (numbers, + − × ÷ and parentheses, read with Python's
# `ast` and computed exactly, never `eval`), writes the result, and lets the model go on. What the model has to
# learn is *when* to compute and *what* to write in the call; the calculator does the rest. Experiment 6 trains
# the best run's knobs on these rows, from the base model:

# %%
from helpers import calculator_experiment

e = calculator_experiment(TRACK)
display(e)
run6 = sft(model, **e.params, label="exp6")
if record:
    save_recording(run6, "exp6")

# %% [markdown]
# The same exams as before, with the same rules, for four models: the base model, experiment 5's best
# checkpoint, experiment 6 with its calculator, and experiment 6 *without* it: its calls are left for the model
# to answer itself, which shows how much it relies on the tool.

# %%
from helpers import scores_table

demo_file = DATA_DIR / "demo.jsonl"
base_demo = exam(model, demo_file, max_new_tokens=EXAM["max_new_tokens"], save_to=False, progress=False)
calc = {tool: {"the lesson's ten": exam(run6, DATA_DIR / "test.jsonl", **EXAM, tool=tool),
               "exam_100": exam(run6, DATA_DIR / "exam_100.jsonl", **EXAM, tool=tool),
               "radish field": exam(run6, demo_file, max_new_tokens=EXAM["max_new_tokens"], save_to=False,
                                    progress=False, tool=tool)} for tool in (True, False)}
Markdown(scores_table({
    "base model": {"the lesson's ten": base_test, "exam_100": base_100, "radish field": base_demo},
    f"{best_run.label} (best of the five)": {"the lesson's ten": tuned_test, "exam_100": tuned_100,
                                              "radish field": tuned_demo},
    "exp6 with its calculator": calc[True], "exp6 without it": calc[False]}))

# %%
if record:
    from helpers import add_exams

    add_exams("cpu", calc_tool_test=calc[True]["the lesson's ten"], calc_tool_100=calc[True]["exam_100"],
              calc_tool_demo=calc[True]["radish field"], calc_plain_test=calc[False]["the lesson's ten"],
              calc_plain_100=calc[False]["exam_100"], calc_plain_demo=calc[False]["radish field"],
              base_demo=base_demo, tuned_demo=tuned_demo)

# %% [markdown]
# In the recorded cpu-track run, experiment 6 trained one epoch of the calculator rows (125 steps, 9 min here).
# With its calculator it gets **9 of the lesson's ten** and **84 of exam_100** right under the strict rule,
# against 5 and 47 for experiment 5, and the radish field right: `Area = <<18 × 6 ÷ 2>>54`, then
# `<<54 × 12>>648 kg`. Fine-tuning taught it *when* to compute and *what* to write in the call; the calculator
# did the multiplying that experiment 5 got wrong.
#
# Without the calculator the same model scores 2 of ten and 31 of 100, below experiment 5: it learned to leave
# the numbers to the tool, and when nobody answers, what it writes after `>>` is a guess
# (`<<18 × 6 ÷ 2>>128`, so 1,636 kg). Of its 16 misses on exam_100 with the calculator, 11 are steps the
# calculator cannot do, so the model still does them alone: least common multiples (6), clock times (3) and
# remainders (2); the other 5 are calls set up wrongly (a month's length, a forgotten + 1, the wrong
# quantity). Its card says *underfitting*: the eval loss was still falling at the last step, so a second epoch,
# as experiment 5 gave the plain rows, is the next experiment to try.

# %% [markdown]
# Each call and its result, on the lesson's ten questions (the calculator's column lists what it computed):

# %%
calc[True]["the lesson's ten"]

# %% [markdown]
# And Ask your model, once more: experiment 6 answers with its calculator and without it.

# %%
asker6 = ask_your_model(model, run6, max_new_tokens=EXAM["max_new_tokens"])

# %% [markdown]
# ## 9. Take your model home: an API for your `openai` client, a file for llama.cpp and Ollama
#
# Your models still live in this notebook. The Q&A bot you built in the earlier lessons called its model through
# an OpenAI-compatible API with the `openai` Python client; fine-tuning was meant to improve *that* model. So the
# last step is to put yours behind the same kind of API. `swift deploy` does it, and `serve()` starts it the way
# `sft()` starts a training: it prints the command, runs it in the background, waits until the server answers,
# and stops it with this kernel if you forget.
#
# One server holds three models: the base model under its own name, your best run's adapter as `tuned`, and
# experiment 6's adapter as `calculator`. LoRA makes that cheap: the base weights are loaded once and each
# request picks its adapter. The server listens on `127.0.0.1`, this machine only; `serve(..., host="0.0.0.0")`
# would open it to your network, which a course model should not need.

# %%
from helpers import serve

server = serve(best_run, more={"calculator": run6})

# %% [markdown]
# Now talk to it as your bot would: the official `openai` client, pointed at the server instead of a cloud
# endpoint (`swift deploy` checks no API key unless it is started with `--api_key`; the client insists on having
# one). The same radish-field question to the base model and to your fine-tuned one, answered greedily
# (`temperature=0`, as in the exams) and printed as the words arrive (`stream=True`):

# %%
from openai import OpenAI

client = OpenAI(base_url=server.url, api_key="course")
radish = read_rows(DATA_DIR / "demo.jsonl")[0]["messages"][:2]  # the exam's prompt: an empty system turn, the question
for name in (server.names["base"], "tuned"):
    print(f"--- {name} ---")
    stream = client.chat.completions.create(model=name, messages=radish, temperature=0,
                                            max_tokens=EXAM["max_new_tokens"], stream=True)
    for chunk in stream:
        print(chunk.choices[0].delta.content or "", end="", flush=True)
    print()

# %% [markdown]
# Through the server these are exactly `exam()`'s answers: the same template, the same greedy decoding (the test
# suite checks it on the lesson's ten questions). The same call works from any language; from a terminal:
#
# ```bash
# curl http://127.0.0.1:PORT/v1/chat/completions -H 'Content-Type: application/json' \
#   -d '{"model": "tuned", "temperature": 0, "messages": [{"role": "user", "content": "..."}]}'
# ```
#
# **The calculator model through an API.** A server only sends what the model writes. Experiment 6's model writes
# a call such as `<<18 × 6 ÷ 2>>` and then, with no calculator to answer, guesses the result itself: that is what
# a client gets. The course's calculator can close the loop on the client's side: ask with `stop=[">>"]`, and
# whenever the answer stops at an open call, compute it, append `>>` and the result, and send the answer so far
# back as an unfinished assistant turn, which the model continues (`ask_with_calculator`, eight lines):
#
# ```python
# text = ""
# while True:
#     turn = radish + ([{"role": "assistant", "content": text}] if text else [])
#     reply = client.chat.completions.create(model="calculator", messages=turn, temperature=0, stop=[">>"])
#     text += reply.choices[0].message.content
#     if reply.choices[0].finish_reason != "stop" or text.rfind("<<") <= text.rfind(">>"):
#         break                                          # the answer ended: no call left open
#     text += ">>" + (calculator.answer(text + ">>") or "")  # the course's safe arithmetic
# ```

# %%
from helpers import ask_with_calculator

raw = client.chat.completions.create(model="calculator", messages=radish, temperature=0,
                                     max_tokens=EXAM["max_new_tokens"]).choices[0].message.content
print("what a client gets:\n ", raw.strip().replace("\n", "\n  "))
closed = ask_with_calculator(client, "calculator", radish, max_tokens=EXAM["max_new_tokens"])
print("with the calculator on the client's side:\n ", closed.replace("\n", "\n  "))

# %% [markdown]
# A server holds its models in memory until it stops: stop it when you are done (`python -m helpers runs` lists
# the course's live servers; `python -m helpers serve RUN` starts one from a terminal).

# %%
server.stop()
print(server)

# %% [markdown]
# ### One file for llama.cpp and Ollama
#
# The tools people run models with on their own laptops (llama.cpp, Ollama, LM Studio) read one file format,
# GGUF: the weights, the tokenizer and the chat template in a single file. `export_gguf()` writes one from the
# merged model of section 6 (ms-swift writes no GGUF; the course writes it with the `gguf` package's writer). Two
# sizes: **f16**, the weights as trained (half the bytes of float32), and **q8_0**, eight bits per weight (about
# half again). Beside each file goes its own Ollama `Modelfile` (the chatml template, the stop tokens,
# `temperature 0`).
#
# The chat template in the file matters as much as the weights: llama.cpp's `llama-cli --jinja`, `llama-server` and
# LM Studio build every prompt with it. SmolLM2's own template would put a system turn ("You are a helpful AI
# assistant named SmolLM, trained by Hugging Face") in front of every question, and an empty system block where
# our rows have an empty system turn; training wrote neither, and a model shown prompts it never saw answers
# differently. So the file carries the template ms-swift trained with: no system block unless you give a
# system prompt, then each turn as `<|im_start|>user … <|im_end|>`. `check_gguf()` then reads the f16 file back
# with a reader the course did not write, transformers' own GGUF loader, and asks it the lesson's ten questions
# with the exam's greedy decoding, next to the merged model.

# %%
from helpers import check_gguf, export_gguf

gguf_files = {quant: export_gguf(merged_dir, quant=quant) for quant in ("f16", "q8_0")}
r = check_gguf(gguf_files["f16"], merged_dir, max_new_tokens=EXAM["max_new_tokens"])
print(f"f16 read back by transformers: {r['identical']} of {r['total']} answers identical to the merged model's, "
      f"{r['same_number']} ending with the same number")

# %% [markdown]
# ### llama.cpp itself reads your file
#
# Now the program people actually run: llama.cpp, through the npm package `node-llama-cpp`, which carries it
# prebuilt (set-up installs it under `.cache/` where Node.js 20 or newer is installed; nothing is compiled). It
# answers the questions your merged model answered in section 6, greedily, on as many threads as this machine has
# cores, two ways:
#
# * from the course's own prompt token ids: any difference from the merged model is the file's weights;
# * from the conversation as your chat tool sends it (the question, no system prompt of its own), rendered by the
#   **file's own chat template** and tokenized by llama.cpp, as `llama-cli --jinja`, `llama-server` and LM Studio do:
#   a difference that only this way shows is the file's template or tokenizer.
#
# Then the 8-bit file, judged by what you care about: its strict score through llama.cpp on the first questions of
# exam_100, beside your fine-tuned model's on the same questions (section 5's exam), with the sampling error of
# the difference. llama.cpp answers one question at a time, so a sample keeps this to a minute or two.

# %%
from helpers import check_llamacpp, exam_with_llamacpp, llamacpp_missing, llamacpp_score_line

problem = llamacpp_missing()
if problem:
    print(problem)  # the rest of the notebook does not need it
else:
    check = check_llamacpp(gguf_files["f16"], merged_dir, read_rows(DATA_DIR / "test.jsonl")[:merged_exam.n],
                           max_new_tokens=EXAM["max_new_tokens"],
                           folder_answers=[item.response for item in merged_exam.items])
    display(check)
    sample = min(40, tuned_100.n)  # the first 40 of exam_100: 80 s at most on 2 cores (40 answers of 112 tokens)
    q8 = exam_with_llamacpp(gguf_files["q8_0"], merged_dir, DATA_DIR / "exam_100.jsonl",
                            max_new_tokens=EXAM["max_new_tokens"], limit=sample)
    print(q8)
    print(llamacpp_score_line(q8, tuned_100, "your fine-tuned model"))

# %% [markdown]
# The f16 file answers exactly like the merged model, both ways: the weights, the tokenizer and the chat template
# all made it into the file. The 8-bit file rounds every weight, and a greedy answer that takes one different
# token early goes its own way from there, so few of its answers are word for word the same; what a learner
# cares about is whether it still gets the questions right, and a difference within about two standard errors
# is what a different sample of questions could give. Ollama could not be installed here, so the Ollama lines are
# untested. To run the file at home, from the folder `export_gguf()` printed:
#
# ```bash
# llama-cli -m checkpoint-NNN-merged.f16.gguf --jinja -cnv   # llama.cpp: a chat in the terminal, the file's template
# ollama create my-math-tutor -f checkpoint-NNN-merged.f16.Modelfile   # Ollama reads the GGUF file it names
# ollama run my-math-tutor "A rectangular field is 18 m long and 6 m wide ..."
# ```
#
# From a terminal: `python -m helpers export RUN --gguf [--quant q8_0] [--check]` (`--check` asks transformers'
# reader and, where it is installed, llama.cpp).

# %% [markdown]
# ## 10. What you did, and what production adds
#
# * You measured first, then changed one thing at a time and read the curves after each run.
# * Learning rate sets the size of each step; epochs set how long the model studies; batch size sets how
#   many examples each step averages over; LoRA rank sets how much the model may change.
# * Failed, underfitting, overfitting and converged are not opinions: they are patterns in two curves,
#   and the helper's card shows the numbers behind each verdict.
#
# Before fine-tuning in a real project, ask:
#
# 1. Would a better prompt, retrieval (RAG) or a tool (a calculator plug-in for arithmetic) be enough? They
#    are much cheaper than training.
# 2. Do you have enough good data — roughly 1,000+ clean, varied examples — and a held-out exam?
# 3. Does the budget (GPU hours, people to build data, evaluation) match the gain?
#
# **Further reading.** The ms-swift documentation (command-line parameters, LoRA and export); the LoRA paper
# by Hu et al. (2021); the PEFT library's guides for other methods (prefix/prompt tuning, adapters, IA³).
# Fine-tuning works the same way far beyond language: image classifiers (ResNet, ViT), object detectors
# (YOLO, Faster R-CNN), translation models (mBART, T5) and recommenders all start from a pre-trained model
# and adapt it to a narrower task with less data.
#
# **Next steps for you:** change one knob in an experiment cell and predict the diagnosis before you run it.
# Run `python -m helpers runs` in a terminal to list every run you have made.
