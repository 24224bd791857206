# Notebook 03, section 9 (experiment 6, a calculator), staged: appended to notebooks/src/03_fine_tuning_lab.py by
# the session that makes the next cpu-track recording, so that its stored outputs come from that real run.
# Checked beforehand on 2026-12-02 (fp32, 2 cores, tracks.calculator_experiment("cpu"), 739 s of training):
# with its calculator 9/10 on the lesson's ten, 84/100 on exam_100, the radish field right (648); without it
# 3/10, 30/100, the radish field wrong.

# %% [markdown]
# ## 9. Going further: a calculator for the arithmetic
#
# The lesson ends with a promise: a model's reasoning gets better with fine-tuning, and its *computing* can be
# handed to a calculator plug-in. The misses above show why a small model needs one: the fine-tuned model writes
# the right steps in the right format and then multiplies wrongly. So experiment 6 teaches it to call a
# calculator instead of computing. Its training data are the same 1,000 rows with each calculation written as a
# call and its result (`resources/2_7/train_1k_calc.jsonl`):

# %%
# NBVAL_CHECK_OUTPUT

from helpers.data import read_rows, turn

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
    from helpers.recordings import add_exams

    add_exams("cpu", calc_tool_test=calc[True]["the lesson's ten"], calc_tool_100=calc[True]["exam_100"],
              calc_tool_demo=calc[True]["radish field"], calc_plain_test=calc[False]["the lesson's ten"],
              calc_plain_100=calc[False]["exam_100"], calc_plain_demo=calc[False]["radish field"],
              base_demo=base_demo, tuned_demo=tuned_demo)

# %% [markdown]
# Each call and its result, on the lesson's ten questions (the calculator's column lists what it computed):

# %%
calc[True]["the lesson's ten"]

# %% [markdown]
# And Ask your model, once more: experiment 6 answers with its calculator and without it.

# %%
asker6 = ask_your_model(model, run6, max_new_tokens=EXAM["max_new_tokens"])
