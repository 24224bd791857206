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
# # 02 · Pre-training, fine-tuning and LoRA
#
# Notebook 01 showed that training means walking downhill on a cost, one parameter update at a time. A real LLM
# has billions of parameters. This notebook asks three questions:
#
# 1. **What does training a 1.5 B-parameter model cost?** Memory, time, money, with the arithmetic written out
#    (and two mistakes in the lesson's estimate corrected).
# 2. **Why can fine-tuning get away with far fewer trainable numbers?** Matrix rank, low-rank factorisation, SVD.
# 3. **How does LoRA work, and how many parameters does it train** for the lesson's Qwen2.5-1.5B and for our
#    embedded SmolLM2-135M? We check our formula against what the PEFT library reports.
#
# Then: how to read a training run (failed, underfitting, overfitting, converged), other parameter-efficient
# methods, fine-tuning beyond chatbots, building a data set, evaluation metrics computed live, and a quiz.

# %%
import pathlib
import sys

root = pathlib.Path.cwd()
while not (root / "helpers" / "__init__.py").exists():  # find the course folder, wherever Jupyter started
    if root == root.parent:
        raise RuntimeError("Open this notebook from inside the Fine-Tuning Lab folder.")
    root = root.parent
sys.path.insert(0, str(root))
from helpers import check_kernel  # noqa: E402

check_kernel()  # on a kernel that is not the course's (Jupyter picked another Python), stop here with the fix

# %config InlineBackend.figure_formats = ['png']
import numpy as np
import torch

from helpers import quiz, theory

torch.set_num_threads(1)  # our tensors are tiny: one thread beats two threads taking turns
torch.manual_seed(0)
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. Pre-training vs fine-tuning
#
# The model you download (here `Qwen2.5-1.5B-Instruct`) is a **pre-trained** set of parameters: the outcome of a
# very long training run on a very large, general text collection. **Fine-tuning** continues training those same
# parameters a little further on a small, task-specific data set, such as our maths word problems, so the model
# gets better at that one job.
#
# Why not simply train our own model from scratch? Let us price it.
#
# ### Memory
# In 32-bit floating point (FP32) every parameter takes 4 bytes. One GiB is $2^{30}$ bytes:
#
# $$\frac{1.5\times 10^{9} \times 4\ \text{bytes}}{2^{30}\ \text{bytes/GiB}} \approx 5.59\ \text{GiB}$$
#
# That is only the weights. Training also keeps a gradient for every weight (another 4 bytes), the Adam optimiser
# keeps two running averages per weight (8 bytes more, so 16 bytes per parameter already), and the forward pass
# stores intermediate activations for the backward pass. A common rule of thumb is **7 to 8 times** the weight
# memory in total.

# %%
# NBVAL_CHECK_OUTPUT
n_params = 1.5e9
weights_gib = theory.param_memory_gib(n_params, bytes_per_param=4)
print(f"weights, FP32        : {weights_gib:.2f} GiB  (= {n_params * 4 / 1e9:.1f} GB in decimal gigabytes)")
print(f"weights, BF16 (2 B)  : {theory.param_memory_gib(n_params, bytes_per_param=2):.2f} GiB")
for multiplier in (7, 8):
    print(f"full training, x{multiplier}   : {theory.training_memory_gib(n_params, 4, multiplier):.1f} GiB")

# %% [markdown]
# So full training needs roughly **39 to 45 GiB** (the lesson rounds to "about 45 GB"), more than a consumer
# GPU and more than the single 24 GB A10 of the lesson's cloud notebook. The lesson writes "5.59 GB", but dividing
# by $2^{30}$ gives GiB; in decimal gigabytes the same bytes are 6.0 GB.
#
# The calculators are one-liners in `helpers/theory.py`:
# `param_memory_gib = n_params * bytes_per_param / 2**30` and `training_memory_gib = that * multiplier`.
#
# ### Time: correcting the lesson's estimate
# The lesson's example: **200 billion** training tokens (roughly 250,000 copies of Shakespeare's complete works),
# 8 GPUs each processing **150 tokens/s**, so **1,200 tokens/s** in total, with **2,000 tokens per batch**. It
# divides by batch size as well and concludes "about 10 days". Both parts are off:
#
# * Throughput already counts every token of every batch. The batch size decides how tokens are *grouped* into
#   steps, not how many go through per second, so it must not appear in the formula. Correct:
#   $$\text{days} = \frac{\text{total tokens}}{\text{tokens per second}\times 86{,}400}$$
# * Even the lesson's own formula does not give 10 days: $200\times10^{9} / (2{,}000 \times 1{,}200 \times 86{,}400)
#   \approx 0.96$ days.

# %%
# NBVAL_CHECK_OUTPUT
total_tokens = 200e9
tokens_per_second = 150 * 8

days = theory.training_days(total_tokens, tokens_per_second)
print(f"200e9 / 1,200 / 86,400 = {days:,.0f} days = {theory.years(days):.1f} years")
print(f"lesson's formula, dividing by the batch too: {theory.lesson_formula_days(total_tokens, 2000, tokens_per_second):.2f} days")

needed = theory.throughput_for_days(total_tokens, 10)
print(f"to finish in 10 days you need {needed:,.0f} tokens/s: "
      f"{needed / tokens_per_second:.0f}x more, e.g. {needed / 150:,.0f} GPUs at 150 tokens/s each")
print(f"what 1,200 tokens/s does get through in 10 days: {tokens_per_second * 10 * 86400 / 1e9:.2f} billion tokens")

for overhead in (0.2, 0.5):
    print(f"+{overhead:.0%} overhead (data loading, checkpoints, communication): {theory.years(days * (1 + overhead)):.1f} years")
print(f"1 trillion tokens at 1,200 tokens/s: {theory.years(theory.training_days(1e12, tokens_per_second)):.1f} years")

# %% [markdown]
# So *at the lesson's throughput* the job takes about **5.3 years**, not 10 days; "10 days" needs about 231,000
# tokens/s, some 190 times the stated speed.
#
# But the stated speed is the weak input: 150 tokens/s is far too slow for one modern GPU training a 1.5 B model.
# The usual estimate goes by compute instead. Training costs about **6 FLOP per parameter per token** (2 for the
# forward pass, 4 for the backward pass), so $6 \cdot N \cdot D$ with $N$ = 1.5 B parameters and $D$ = 200 B tokens.
# Take 8 A100s (312 TFLOP/s each in BF16, the datasheet's dense peak) and assume a real run reaches 40 % of that:

# %%
# NBVAL_CHECK_OUTPUT
n_params, gpus, peak, utilisation = 1.5e9, 8, 312e12, 0.40
flop = 6 * n_params * total_tokens
compute = theory.compute_days(n_params, total_tokens, gpus, peak, utilisation)
print(f"6 x N x D = 6 x {n_params:.1e} x {total_tokens:.0e} = {flop:.1e} FLOP")
print(f"on {gpus} A100s at {utilisation:.0%} of {peak / 1e12:.0f} TFLOP/s: {compute:.0f} days = {compute / 7:.1f} weeks")
per_gpu = total_tokens / (compute * 86400) / gpus
print(f"that is {per_gpu:,.0f} tokens/s per GPU, {per_gpu / 150:.0f}x the lesson's 150")

# %% [markdown]
# About **three weeks**: the lesson's "about 10 days" had the right order of size after all, for the wrong
# reason (its formula divides by the batch size a second time, and its 150 tokens/s per GPU is some 90 times too
# slow for this model). Both ways of estimating agree once the inputs agree: at ~14,000 tokens/s per GPU the
# first formula gives the same three weeks. The lesson's remark that 1 trillion tokens take "several months" fits
# the compute estimate too (five times the tokens: about 3.5 months on these 8 GPUs). Real pre-training runs use
# thousands of GPUs to bring such times down to days.
#
# ### Money
# Renting by the hour usually beats buying hardware for a job of days or weeks:
#
# $$\text{cost} = \text{price per hour} \times \text{hours}$$
#
# Prices vary by provider and change often, so the cell below uses an *assumed* 100 yuan per hour for the whole
# 8-GPU machine; put in your own. The comparison is the point: a fine-tuning set of 1,000 examples of about 300
# tokens, trained for 3 epochs, is 900,000 tokens.

# %%
# NBVAL_CHECK_OUTPUT
price_per_hour = 100  # yuan for the 8-GPU machine: an assumption, not a quote

scenarios = {
    "pre-training, 200 B tokens": 200e9,
    "fine-tuning, 1,000 x 300 tokens x 3 epochs": 1_000 * 300 * 3,
}
for name, tokens in scenarios.items():
    hours = theory.training_days(tokens, tokens_per_second) * 24
    print(f"{name:44s} {hours:12,.1f} h  {theory.training_cost(price_per_hour, hours):14,.0f} yuan")

# %% [markdown]
# Two levers cut the bill: a **cheaper machine** (which needs *less memory*) and **less time** (which needs
# *fewer training tokens*). Fine-tuning a pre-trained model pulls the second lever; LoRA, below, pulls the first.
#
# There is a third cost: **labelled data is expensive**, especially in specialised fields (medical images, rare
# languages). Splitting the work into two stages solves this:
#
# | | **Pre-training** | **Fine-tuning** |
# |---|---|---|
# | Objective | learn general knowledge and language | adapt to one task or domain |
# | Data | huge, general (web pages, books, Wikipedia) | small, task-specific (thousands to tens of thousands of examples) |
# | Method | self-supervised: predict the next token of raw text, no human labels | supervised: question/answer pairs written or checked by people |
# | Parameters that change | all of them | all of them (full fine-tuning) or a small added set (PEFT) |
# | When used | building a base model (Qwen2.5-Max, DeepSeek-V3, GPT-4, ...) | specialising a model for your application |
#
# Self-supervision is what makes pre-training scale: the text itself supplies the answers, so nobody has to
# label billions of examples. Fine-tuning needs labels, which keeps it small, and small is enough because the
# model already knows the language. The practical recipe: **start from a pre-trained model; fine-tune it on a
# few thousand labelled examples of your own task.**
#
# ### Full fine-tuning vs parameter-efficient fine-tuning (PEFT)
# Fine-tuning cuts the *tokens*, but if every parameter is still trained, the memory bill above is unchanged.
#
# * **Full fine-tuning** updates every weight of the pre-trained model. Nothing is left untuned, which can give
#   the best quality, but it needs the full 7–8× memory and plenty of data.
# * **Parameter-efficient fine-tuning (PEFT)** freezes the pre-trained weights and trains only a small number of
#   extra or selected parameters, often reaching quality close to full fine-tuning. Examples: adapters, prompt
#   tuning and **LoRA**. LoRA trains a small share of the model (0.6% of Qwen2.5-1.5B and 1.82% of our
#   SmolLM2-135M, both counted below), and has become the
#   default choice when GPUs are scarce. To see why so few numbers can be enough, we need the idea of *rank*.
#
# ## 2. Matrix rank: how much information a matrix really holds
#
# The **rank** of a matrix is the number of independent rows (equivalently, columns) it has. In this 2×3 matrix
# the second row is just twice the first, so it adds no new information: its rank is 1.

# %%
# NBVAL_CHECK_OUTPUT
M = np.array([[1, 2, 3],
              [2, 4, 6]])
print("rank =", np.linalg.matrix_rank(M))

# %% [markdown]
# ### A shape check first
# The lesson describes a layer with a 5-dimensional input $X$, a 4-dimensional output $Y$, and $W \in
# \mathbb{R}^{5\times 4}$ (20 parameters), then writes $Y_{5\times 1} = \sigma(W_{5\times 4} \cdot X_{4\times 1})$.
# Those shapes contradict the description: a $5\times 4$ matrix times a $4\times 1$ vector gives a **5**-dimensional
# output from a **4**-dimensional input. For input 5 and output 4 the matrix must be $4\times 5$. Either way it
# holds 20 parameters:

# %%
# NBVAL_CHECK_OUTPUT
print("W(5x4) @ X(4x1) ->", (np.ones((5, 4)) @ np.ones((4, 1))).shape)
print("W(4x5) @ X(5x1) ->", (np.ones((4, 5)) @ np.ones((5, 1))).shape)
try:
    np.ones((5, 4)) @ np.ones((5, 1))
except ValueError:
    print("W(5x4) @ X(5x1) -> shapes do not fit")

# %% [markdown]
# ### Why updates can be low-rank
# The bet behind LoRA: pre-training already packed the broad knowledge into the weights, so the *change* that
# fine-tuning makes is simple, it has **low rank**. The lesson states it as
#
# $$\Delta W^{\text{pre-train}} = W^{\text{pre-trained}} - W^{\text{initial}}\ \text{(full rank)},\qquad
# \Delta W^{\text{fine-tune}} = W^{\text{fine-tuned}} - W^{\text{pre-trained}}\ \text{(rank} \le 2\text{ in the example)}.$$
#
# One correction: the lesson gives the pre-training change of a $5\times 4$ matrix rank **5**. A matrix's rank
# can never exceed its smaller side, so "full rank" for $5\times 4$ means rank **4**:

# %%
# NBVAL_CHECK_OUTPUT
print("rank of a random 5x4 matrix:", np.linalg.matrix_rank(rng.normal(size=(5, 4))), "(max possible: min(5, 4) = 4)")

# %% [markdown]
# A rank-1 matrix can always be written as one column times one row. The lesson's $5\times 4$ example:

# %%
# NBVAL_CHECK_OUTPUT
column = np.array([[1], [2], [3], [4], [5]])  # 5x1
row = np.array([[1, 0, 2, -1]])               # 1x4
delta_W = column @ row                        # 5x4
print(delta_W)
print("rank:", np.linalg.matrix_rank(delta_W), "| numbers stored:", delta_W.size, "as a matrix vs", column.size + row.size, "as column + row")

# %% [markdown]
# ### Finding the low-rank part: SVD
# Real weight changes are not exactly rank 1; they are *approximately* low-rank. The **singular value
# decomposition** $M = U\,\mathrm{diag}(s)\,V^\top$ measures this: the singular values $s_1 \ge s_2 \ge \dots$ say how
# much each independent direction contributes, the number of non-zero ones is the rank, and keeping only the
# largest $k$ gives the best possible rank-$k$ approximation.
#
# Below: an 8×6 matrix built from two directions plus a little noise.

# %%
# NBVAL_CHECK_OUTPUT
u, v = rng.normal(size=(8, 2)), rng.normal(size=(2, 6))
noisy = u @ v + 0.05 * rng.normal(size=(8, 6))

U, s, Vt = np.linalg.svd(noisy, full_matrices=False)
print("singular values:", np.round(s, 3))
for k in (1, 2, 3):
    approx = U[:, :k] @ np.diag(s[:k]) @ Vt[:k]
    err = np.linalg.norm(noisy - approx) / np.linalg.norm(noisy)
    print(f"rank-{k} approximation: relative error {err:.3f}, numbers kept {k * (8 + 6)} of {noisy.size}")

# %%
theory.plot_singular_values(s, title="Two big singular values, the rest is noise");

# %% [markdown]
# ## 3. LoRA: a frozen weight plus a trainable low-rank update
#
# LoRA (Low-Rank Adaptation) keeps every pre-trained weight matrix $W$ frozen and learns its change as the product
# of two thin matrices:
#
# $$W^{\text{fine-tuned}} = W^{\text{pre-trained}} + B\,A, \qquad B \in \mathbb{R}^{d_{out}\times r},\ A \in \mathbb{R}^{r\times d_{in}},\ r \ll d.$$
#
# (The lesson writes the pair as $A_{d\times r}\cdot B_{r\times d}$; the LoRA paper and the PEFT library call the
# *input* side $A$ and the *output* side $B$. Only the names differ.) It works on any linear layer, whatever the
# model's architecture. For a square $d\times d$ layer, full fine-tuning trains $d^2$ numbers, LoRA trains
# $2dr$. The lesson's example, $d = 1024$ and $r = 8$, first as a picture (widths drawn to scale, except that
# $r$ is drawn a little wider than 8/1024 of the width so it stays visible), then as a table:

# %%
theory.plot_lora(1024, 1024, 8, "the lesson's 1024 × 1024 layer");

# %%
# NBVAL_CHECK_OUTPUT
d, r = 1024, 8
full = theory.full_params(d, d)
lora = theory.lora_params(d, d, r)
print(f"{'method':28s} {'formula':24s} {'parameters':>12s} {'saved':>8s}")
print(f"{'full fine-tuning':28s} {'1024 x 1024':24s} {full:>12,} {0:>7.2f}%")
print(f"{'LoRA, r = 8':28s} {'1024 x 8 + 8 x 1024':24s} {lora:>12,} {theory.saving_percent(full, lora):>7.2f}%")


# %% [markdown]
# ### The real count for Qwen2.5-1.5B
# Real models are not one $1024\times 1024$ matrix. Qwen2.5-1.5B has 28 decoder blocks with hidden size 1536, 12
# attention heads of size $1536/12 = 128$, but only 2 key/value heads (grouped-query attention), so the key and
# value projections output $2\times 128 = 256$ numbers; its MLP widens to 8960. ms-swift's default
# `--target_modules all-linear` puts a LoRA pair on all seven linear layers of every block:

# %%
# NBVAL_CHECK_OUTPUT
def lora_table(shape, r=8):
    print(f"{shape.name}: hidden {shape.hidden}, {shape.layers} blocks, head_dim {shape.head_dim}")
    print(f"  {'layer':10s} {'d_in x d_out':>13s} {'full':>12s} {'LoRA r=' + str(r):>10s}")
    for name, (d_in, d_out) in shape.linear_layers().items():
        print(f"  {name:10s} {f'{d_in} x {d_out}':>13s} {d_in * d_out:>12,} {theory.lora_params(d_in, d_out, r):>10,}")
    print(f"  x {shape.layers} blocks: LoRA trains {shape.lora_params(r):,} numbers "
          f"(the same layers hold {shape.linear_params():,})")


lora_table(theory.QWEN25_1_5B)
qwen_total = 1.54e9
print(f"  share of the whole ~1.54 B-parameter model: {theory.QWEN25_1_5B.lora_params(8) / qwen_total:.2%}")

# %% [markdown]
# About **9.2 million** trainable numbers instead of 1.5 billion, about 0.6% of the model, inside the
# "0.1%–1%" range the lesson quotes. At 16 bytes each (weight, gradient, two Adam averages) that is about 150 MB of
# training state instead of ~22 GiB. The frozen weights still sit in memory, but without gradients or optimiser
# state, and they can be stored in 16 bits; activations remain, which is why batch size and sequence length still
# matter on a small GPU.
#
# ### The same count for our embedded SmolLM2-135M, checked against PEFT
# SmolLM2-135M: 30 blocks, hidden 576, 9 heads of $576/9 = 64$, 3 key/value heads ($3\times 64 = 192$), MLP 1536.
# We compute the count with our formula, then wrap the real model with the PEFT library and ask it.

# %%
# NBVAL_CHECK_OUTPUT
lora_table(theory.SMOLLM2_135M)

# %%
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM
from transformers.utils import logging as hf_logging

from helpers.models import embedded_model

hf_logging.set_verbosity_error()
hf_logging.disable_progress_bar()
base = AutoModelForCausalLM.from_pretrained(embedded_model().path, dtype=torch.float32)
n_base = sum(p.numel() for p in base.parameters())
peft_model = get_peft_model(base, LoraConfig(r=8, target_modules="all-linear"))
trainable, total = peft_model.get_nb_trainable_parameters()

# %%
# NBVAL_CHECK_OUTPUT
print(f"our formula : {theory.SMOLLM2_135M.lora_params(8):,}")
print(f"PEFT reports: {trainable:,} trainable of {total:,} (the base model has {n_base:,})")
print("equal:", trainable == theory.SMOLLM2_135M.lora_params(8))
print(f"share of the model: {trainable / n_base:.2%}")


# %% [markdown]
# The formula is exact. Note the share: **1.8%**, above the lesson's 0.1–1%. For a $d\times d$ matrix LoRA trains
# $2dr$ of its $d^2$ numbers, a share of $2r/d$: 2.8% at width 576, 1.0% at 1536, 0.4% at 4096. LoRA's share
# shrinks as models get wider, so the "0.1–1%" range describes models of a billion parameters and up.
#
# ### A toy LoRA you can read
# Here is LoRA in a dozen lines of PyTorch. `A` starts small and random, `B` starts at zero, so before training
# the wrapped layer behaves exactly like the original. Only `A` and `B` receive gradients.

# %%
class LoRALinear(torch.nn.Module):
    def __init__(self, base: torch.nn.Linear, r: int):
        super().__init__()
        self.base = base.requires_grad_(False)  # frozen pre-trained weight
        self.A = torch.nn.Parameter(0.01 * torch.randn(r, base.in_features))
        self.B = torch.nn.Parameter(torch.zeros(base.out_features, r))

    def forward(self, x):
        return self.base(x) + x @ self.A.T @ self.B.T  # W x + B A x


# %% [markdown]
# The experiment: a frozen 32×32 layer $W_0$, and a target layer $W_0 + \Delta W$ where the change $\Delta W$ has
# rank 2. Can LoRA learn the change from input/output examples alone? With $r=1$ it can only capture one of the two
# directions; with $r=2$ it recovers the change.

# %%
# NBVAL_CHECK_OUTPUT
torch.manual_seed(0)
dim = 32
pretrained = torch.nn.Linear(dim, dim, bias=False)
W0 = pretrained.weight.detach().clone()
true_change = torch.randn(dim, 2) @ torch.randn(2, dim) / dim**0.5  # rank 2
inputs = torch.randn(512, dim)
targets = inputs @ (W0 + true_change).T


def fit_lora(r, steps=600):
    torch.manual_seed(1)
    layer = LoRALinear(pretrained, r)
    optimizer = torch.optim.Adam([layer.A, layer.B], lr=0.02)
    losses = []
    for _ in range(steps):
        loss = torch.nn.functional.mse_loss(layer(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return layer, losses


results = {r: fit_lora(r) for r in (1, 2)}
print("singular values of the true change:", [round(v, 3) for v in torch.linalg.svdvals(true_change)[:3].tolist()])
for r, (layer, losses) in results.items():
    print(f"rank {r}: error {losses[0]:.4f} -> {losses[-1]:.4f}")

# %%
theory.plot_loss_histories({f"LoRA rank {r}": losses for r, (_, losses) in results.items()},
                           title="Rank 1 cannot express a rank-2 change; rank 2 can");

# %% [markdown]
# **LoRA keeps the original.** The frozen weight never changed. To serve the model without any extra computation,
# *merge* the update into the weight once ($W_0 + BA$); to get the original back, *unmerge* (subtract it) or
# simply drop the adapter. This is why a LoRA fine-tune is cheap to store (megabytes next to the model's gigabytes, computed
# below) and trivial to undo.

# %%
# NBVAL_CHECK_OUTPUT
layer = results[2][0]
with torch.no_grad():
    print("pre-trained weight untouched:", torch.equal(pretrained.weight, W0))
    merged = W0 + layer.B @ layer.A
    print("merged layer gives the same outputs:", torch.allclose(inputs @ merged.T, layer(inputs), atol=1e-5))
    print("unmerged weight equals the original:", torch.allclose(merged - layer.B @ layer.A, W0, atol=1e-6))
    print("learned change matches the true change:", torch.allclose(layer.B @ layer.A, true_change, atol=1e-2))

# %% [markdown]
# **How big is a LoRA checkpoint?** Its file holds just the $A$ and $B$ matrices: the number of LoRA
# parameters times the bytes per number. For Qwen2.5-1.5B at $r = 8$ that is 9.2 M numbers, about **18 MB**
# in BF16 (2 bytes each), which is the lesson's "about 20 MB" once the file's small headers and config are
# added. Kept in FP32 (4 bytes) it doubles, and that is what you will usually find on disk today: PEFT upcasts
# BF16 adapter weights to FP32 by default for stable training, and ms-swift 4.x keeps that default unless
# you set `--lora_dtype`, so a gpu-track checkpoint is about 37 MB; the cpu track trains in FP32 anyway. For our SmolLM2-135M we can measure the real file: PEFT saves the
# adapter we built above.

# %%
# NBVAL_CHECK_OUTPUT
import tempfile
from pathlib import Path

for shape in (theory.QWEN25_1_5B, theory.SMOLLM2_135M):
    n = shape.lora_params(8)
    print(f"{shape.name:13s} LoRA r = 8: {n:>9,} numbers = {n * 2 / 1e6:4.1f} MB in BF16, {n * 4 / 1e6:4.1f} MB in FP32")

with tempfile.TemporaryDirectory() as folder:
    peft_model.save_pretrained(folder)
    saved = Path(folder) / "adapter_model.safetensors"
    print(f"SmolLM2-135M adapter saved by PEFT (FP32): {saved.stat().st_size / 1e6:.1f} MB on disk")

# %% [markdown]
# ### Choosing the rank $r$
# The rank is LoRA's main knob (`--lora_rank` in ms-swift). A larger $r$ can express richer changes, but trains more
# numbers, needs more memory and more epochs, and on little data it can memorise. A rule of thumb from practice:
#
# * **small data sets (1k–10k examples):** $r \le 16$ keeps overfitting and training time in check;
# * **large data sets (100k+ examples):** try $r \ge 32$ to give the model room to pick up more patterns.
#
# The parameter count grows linearly with $r$:

# %%
# NBVAL_CHECK_OUTPUT
for r in (4, 8, 16, 32, 64):
    print(f"r = {r:2d}: SmolLM2-135M {theory.SMOLLM2_135M.lora_params(r):>11,}   Qwen2.5-1.5B {theory.QWEN25_1_5B.lora_params(r):>12,}")

# %% [markdown]
# How well does it work? In the LoRA paper the authors compared many fine-tuning methods by quality against the
# number of trainable parameters. Two lessons stand out: **more trainable parameters do not automatically mean
# better results** (several methods got worse as they grew), and LoRA gave the best quality for its size and kept
# improving steadily as it scaled.
#
# ## 4. Reading a training run
#
# Think of training as studying for an exam with three sets of questions:
#
# * the **training set** is the workbook with worked solutions: the model practises on it, and the **training
#   loss** drives the gradient-descent updates;
# * the **validation set** is a mock exam, taken every `eval_steps`: its **validation loss** tells us whether the
#   practice is paying off on questions the model has not studied;
# * the **test set** is the real exam, used once at the end to measure the final model (accuracy on new questions).
#
# Comparing the two losses tells you what state training is in and what to do next:
#
# | state | what the curves do | what it means | next move |
# |---|---|---|---|
# | **failed** | training loss flat, rising or exploding | the model learns nothing; the learning method is broken | lower the learning rate, check the data |
# | **underfitting** | both losses still falling at the end | learning, with room to improve | train longer (more epochs) or a larger rate |
# | **overfitting** | training loss falls, validation loss turns up | memorising the workbook, failing new questions | more (varied) data, fewer epochs, early stopping |
# | **converged** | both losses flattened, validation near its best | done: this is the run to keep | evaluate on the test set |
#
# The curves below are made up to show each shape. Notebook
# **[03_fine_tuning_lab.ipynb](03_fine_tuning_lab.ipynb)** produces all four with real fine-tuning runs and
# diagnoses them automatically.

# %%
advice = {"failed": "lower LR", "underfitting": "more epochs", "overfitting": "more data, fewer epochs", "converged": "keep it"}
theory.plot_training_states(advice=advice);

# %% [markdown]
# ## 5. Other parameter-efficient methods
#
# LoRA is not the only way to train a few parameters. Three older ideas, with what each would train on
# SmolLM2-135M (counted on the real model where PEFT supports the method):
#
# * **Freeze tuning**: freeze most of the network and train only a part, typically the last few blocks. Among the
#   earliest PEFT methods; efficient, works when the new task is close to what pre-training taught (text
#   classification, say), but often too weak for hard tasks.
# * **Adapters**: insert small bottleneck layers (down-project, non-linearity, up-project) inside each block and
#   train only those. Modular and stable, but they change the architecture and add computation at inference time
#   (the non-linearity means an adapter cannot be merged into $W$). The lesson calls them slightly larger than
#   LoRA; as the table shows, that depends on the bottleneck size and on how many layers LoRA targets.
# * **Prompt tuning**: leave the model untouched and learn a few "virtual token" vectors prepended to every input.
#   No structural change, suits generation tasks such as translation or dialogue, but it steers the model only
#   through the input, which can be too little for complex tasks.

# %%
from peft import PromptTuningConfig

base = peft_model.unload()  # remove the LoRA layers again: back to the plain model
freeze_last_2 = sum(p.numel() for p in base.model.layers[-2:].parameters())

shape, bottleneck = theory.SMOLLM2_135M, 16  # adapter: 576 -> 16 -> 576 with biases
adapters = shape.layers * 2 * (shape.hidden * bottleneck + bottleneck + bottleneck * shape.hidden + shape.hidden)

# prompt tuning only wraps the model (it adds no layers inside), so `base` stays usable afterwards
prompt_model = get_peft_model(base, PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=20))
prompt_tuning = prompt_model.get_nb_trainable_parameters()[0]

# %%
# NBVAL_CHECK_OUTPUT
rows = [
    ("full fine-tuning", n_base),
    ("freeze: train the last 2 of 30 blocks", freeze_last_2),
    ("adapters: bottleneck 16, two per block", adapters),
    ("LoRA r = 8, all linear layers", trainable),
    ("LoRA r = 8, q_proj and v_proj only", shape.layers * (theory.lora_params(576, 576, 8) + theory.lora_params(576, 192, 8))),
    ("prompt tuning: 20 virtual tokens x 576", prompt_tuning),
]
for name, n in rows:
    print(f"{name:40s} {n:>12,}  {n / n_base:7.3%}")

# %% [markdown]
# The same four methods as pictures: what each one trains (orange) and what stays frozen (grey). A few
# blocks stand for SmolLM2's 30; the counts in the titles are the real ones from the table.

# %%
theory.plot_peft_methods({"freeze": freeze_last_2, "adapter": adapters, "lora": trainable, "prompt": prompt_tuning},
                         total=n_base);

# %% [markdown]
# ## 6. Fine-tuning beyond language models
#
# "Start from a pre-trained model, adapt it with a little task data" works across machine learning:
#
# | task | typical pre-trained models | what fine-tuning adapts | why it pays |
# |---|---|---|---|
# | image classification (objects, medical scans) | ResNet, ViT | feature extraction for your image set | general visual knowledge transfers, so far fewer labelled images are needed |
# | object detection (driving, security cameras) | YOLO, Faster R-CNN | sensitivity to your objects' positions and classes | fewer false alarms and missed detections in your scenes |
# | machine translation (legal, medical, technical) | mBART, T5 | your domain's terminology and phrasing | general translators misread specialised meaning |
# | recommendation (shops, content feeds) | collaborative filtering, deep ranking models | ranking from your users' behaviour | more personal results, better handling of new users and items, higher click-through and conversion |
#
# ## 7. Should you fine-tune, and with what data?
#
# Fine-tuning in production is not free. Before starting, check:
#
# 1. Would a **cheaper** approach do: better prompts, or retrieval (RAG) over your documents?
# 2. Do you have **enough good data**: as a floor, about **1,000 high-quality examples** for a non-trivial task?
# 3. Do the **budget and the team's skills** fit the expected gain?
#
# Building the data set is most of the work:
#
# * **Quality**: correct, relevant, unambiguous examples; remove wrong or contradictory ones.
# * **Diversity**: cover the whole task, all its contexts and its vocabulary, not one narrow slice.
# * **Balance**: if there are classes, keep them in proportion so the model does not lean toward one.
# * **Iteration**: fine-tuning is a loop; look at where the model fails on the validation set, then fix and grow the data.
#
# Ways to get more data: **manual annotation** by domain experts for typical cases, **generation** with an LLM that
# imitates your scenarios (check its output!), and **collection** from public data sets, the web or user feedback.
# When data stays scarce, lean on **retrieval** from a knowledge base (documents, FAQs); many real systems combine a
# fine-tuned model with retrieval.
#
# ## 8. Evaluation metrics, computed live
#
# Different tasks need different yardsticks. Each one below is computed on a tiny example.
#
# **Classification.** *Accuracy* is the share of correct predictions. For a "positive" class, *precision* asks
# "of everything flagged positive, how much was right?", *recall* asks "of all real positives, how many were
# found?", and *F1* is their harmonic mean.
#
# The example: 20 exam answers, of which a human marked 6 as correct, and three automatic graders that
# try to tell the correct ones apart. Correct answers are the minority, as in a hard exam, and that is
# where the four numbers start to disagree.

# %%
# NBVAL_CHECK_OUTPUT
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

truth = [1] * 6 + [0] * 14  # 1 = a human says the answer is correct
graders = {
    "careful grader": [1, 1, 1, 1, 0, 0] + [1] + [0] * 13,  # finds 4 of the 6, one false alarm
    "says 'wrong' to everything": [0] * 20,
    "says 'correct' to everything": [1] * 20,
}
print(f"{'grader':30s} {'accuracy':>8s} {'precision':>9s} {'recall':>6s} {'F1':>5s}")
for name, guess in graders.items():
    print(f"{name:30s} {accuracy_score(truth, guess):8.2f} {precision_score(truth, guess, zero_division=0):9.2f} "
          f"{recall_score(truth, guess):6.2f} {f1_score(truth, guess, zero_division=0):5.2f}")

# %% [markdown]
# Four numbers, different stories. The careful grader is right 85% of the time; when it says "correct" it is
# right 80% of the time (precision), but it finds only two thirds of the correct answers (recall). The grader
# that rejects everything still reaches **70% accuracy**, because 14 of the 20 answers are wrong anyway,
# while its recall is 0: accuracy flatters a lazy rule whenever one class dominates. The grader that accepts
# everything has perfect recall and poor precision (0.30). F1, the harmonic mean of precision and recall, is
# high only when both are, and ranks the careful grader clearly first.

# %% [markdown]
# **Text generation.** *BLEU* (machine translation) counts how many 1- to 4-word sequences of the output also
# appear in reference texts, with a penalty for outputs that are too short; smoothing avoids a zero score when a
# short sentence has no matching 4-gram. *ROUGE* (summarisation) measures the overlap from the reference's side:
# recall, precision and F-measure of shared words (ROUGE-1) or of the longest common subsequence (ROUGE-L).

# %%
# NBVAL_CHECK_OUTPUT
from nltk.translate.bleu_score import SmoothingFunction, sentence_bleu
from rouge_score import rouge_scorer

reference = "she has 12 apples left after giving 3 away"
candidate = "she has 12 apples left after she gave away 3"
bleu = sentence_bleu([reference.split()], candidate.split(), smoothing_function=SmoothingFunction().method1)
print(f"BLEU    {bleu:.3f}")
for name, score in rouge_scorer.RougeScorer(["rouge1", "rougeL"]).score(reference, candidate).items():
    print(f"{name:7s} precision {score.precision:.3f}  recall {score.recall:.3f}  F {score.fmeasure:.3f}")

# %% [markdown]
# **Perplexity** measures how surprised a language model is by a text: the exponential of the average negative
# log-probability it gave to each actual next token, $\exp\big(-\frac{1}{n}\sum \log p(\text{token}_i)\big)$. Lower
# is better; a perplexity of 4 means "as unsure as choosing uniformly among 4 tokens". First by hand, then with
# the cross-entropy loss PyTorch computes during training:

# %%
# NBVAL_CHECK_OUTPUT
p_correct = torch.tensor([0.5, 0.25, 0.125, 0.5])  # probability the model gave each actual next token
print("perplexity by hand:", round(torch.exp(-torch.log(p_correct).mean()).item(), 3))

vocab_logits = torch.log(torch.tensor([[0.5, 0.3, 0.2], [0.25, 0.5, 0.25], [0.125, 0.125, 0.75], [0.5, 0.25, 0.25]]))
next_tokens = torch.tensor([0, 0, 0, 0])
loss = torch.nn.functional.cross_entropy(vocab_logits, next_tokens)
print("exp(cross-entropy):", round(torch.exp(loss).item(), 3))

# %% [markdown]
# The same number for a real model: SmolLM2-135M reading one sentence. (The `loss` a model returns when given
# `labels` is exactly that mean negative log-likelihood, the quantity fine-tuning minimises.)

# %%
from transformers import AutoTokenizer

tokenizer = AutoTokenizer.from_pretrained(embedded_model().path)
for sentence in ["Tom has 3 apples and buys 5 more, so he has 8 apples.",
                 "Apples 8 so more has Tom buys 3, he and 5 apples has."]:
    ids = tokenizer(sentence, return_tensors="pt").input_ids
    with torch.no_grad():
        nll = base(ids, labels=ids).loss
    print(f"perplexity {torch.exp(nll).item():7.1f}   {sentence}")


# %% [markdown]
# The model finds the grammatical sentence far less surprising than the same words shuffled.
#
# **Object detection.** *IoU* (intersection over union) compares a predicted box with the true box: overlap area
# divided by combined area, 1 for a perfect match, 0 for no overlap. *mAP* (mean average precision) builds on it:
# a detection counts as correct when its IoU passes a threshold (often 0.5), and precision is averaged over recall
# levels and classes.

# %%
# NBVAL_CHECK_OUTPUT
def iou(a, b):  # boxes as (x1, y1, x2, y2)
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


print("IoU =", round(iou((0, 0, 4, 4), (2, 2, 6, 6)), 4), "(overlap 4, union 16 + 16 - 4 = 28)")

# %% [markdown]
# ## Summary
#
# * Training a 1.5 B model from scratch needs ~5.6 GiB for the weights and ~39–45 GiB to train, and at 1,200
#   tokens/s 200 B tokens take about 5.3 years, not 10 days. Pre-training once and fine-tuning on a few thousand
#   labelled examples is how everyone else gets a specialised model.
# * Fine-tuning changes are approximately **low-rank**; LoRA learns them as $BA$ next to a frozen $W$, training
#   9.2 M numbers for Qwen2.5-1.5B (0.6%, about 18 MB in BF16) and 2.44 M for SmolLM2-135M (1.82%), exactly
#   what PEFT reports. The original
#   weights stay intact: merge to deploy, drop the adapter to undo.
# * The rank $r$ is the main LoRA knob: small for small data, larger for large data.
# * Training and validation loss together tell you whether a run failed, underfits, overfits or converged.
# * Pick metrics to fit the task: accuracy/F1, BLEU/ROUGE/perplexity, IoU/mAP.
#
# Next: **[03_fine_tuning_lab.ipynb](03_fine_tuning_lab.ipynb)** fine-tunes a real model and puts these ideas to work.
#
# ## Quiz
#
# ### Question 1 (one answer)

# %%
q1 = quiz.ask(quiz.LORA_WRONG)

# %% [markdown]
# ### Question 2 (several answers)

# %%
q2 = quiz.ask(quiz.VAL_LOSS_RISING)
