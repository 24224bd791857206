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
# # 01 · How models learn
#
# A language model is a very large function with billions of adjustable numbers. Fine-tuning means nudging those
# numbers so the function gets better at *our* task: elementary-school maths word problems. Before we touch a
# real model, this notebook builds the whole idea on something small enough to see:
#
# 1. **Learning from data**: guess a rule's parameter from examples.
# 2. **Loss and cost**: one number that says how wrong a guess is.
# 3. **Gradient descent**: walk downhill on the cost, with a *learning rate* deciding the stride.
# 4. **Training knobs**: batch size, eval steps, epochs, early stopping, shown on a real (tiny) PyTorch run.
# 5. **Neural networks**: layers of `ReLU(W·X)`, the shape of every LLM block.
#
# Everything runs on a CPU in a few seconds. Run the cells top to bottom.

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
import matplotlib.pyplot as plt
import numpy as np
import torch

from helpers import theory

torch.set_num_threads(1)  # our tensors are tiny: one thread beats two threads taking turns
torch.manual_seed(0)
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. Learning a rule from examples
#
# In ordinary programming *we* write the rule, for example $f(x) = a\,x$ with a known $a$: the price of $x$ kg of
# apples when a kilo costs $a$ yuan. Machine learning turns this around. We do **not** know $a$; we only have
# observations $(x_i, y_i)$, the **training set**, and we want the program to find a good $a$ by itself. Finding
# it is called **training**, and $a$ is a **parameter** (or **weight**).
#
# Here are five purchases. The true price is hidden; the receipts are a little noisy.

# %%
# NBVAL_CHECK_OUTPUT
x = np.array([0.2, 0.4, 0.6, 0.8, 1.0])  # kilograms
y = np.array([0.5, 0.7, 1.3, 1.5, 2.1])  # yuan paid
for xi, yi in zip(x, y):
    print(f"{xi:.1f} kg -> {yi:.1f} yuan")

# %% [markdown]
# ## 2. Loss (one example) and cost (the whole set)
#
# To judge a candidate $a$, compare the prediction $a x_i$ with the truth $y_i$.
#
# * The plain difference $y_i - a x_i$ can be positive or negative, and when we add up many examples, errors of
#   opposite sign cancel: two predictions that are off by $+3$ and $-3$ average to a "perfect" $0$.
# * Squaring fixes that and also punishes big misses more than small ones. The **loss** of one example is
#
# $$L(y_i, f(x_i)) = (y_i - a x_i)^2 .$$
#
# * The **cost** averages the loss over all $m$ training examples: the *mean squared error* (MSE)
#
# $$J(a) = \frac{1}{m}\sum_{i=1}^{m} (y_i - a x_i)^2 .$$
#
# Other models use other losses (language models use cross-entropy), but the recipe is the same: one number, lower
# is better. In practice people say "loss" for both, and so will we after this section.

# %%
# NBVAL_CHECK_OUTPUT
signed = np.array([+3.0, -3.0])
print("signed errors +3 and -3 average to", signed.mean(), "; squared they average to", (signed**2).mean())

a = 1.5
losses = (y - a * x) ** 2
print(f"a = {a}: per-example losses {np.round(losses, 3)} -> cost J = {losses.mean():.4f}")


# %% [markdown]
# Training now has a precise meaning: **find the $a$ where $J(a)$ is smallest**. For one parameter we can simply
# draw $J$ and look for the bottom of the curve. For this simple cost there is even a formula for the bottom
# ($a^\ast = \sum x_i y_i / \sum x_i^2$), which lets us check the search methods below.

# %%
def J(a):
    # Cost for one value of a, or for a whole array of candidate values at once.
    a = np.asarray(a, dtype=float)[..., None]
    return ((y - a * x) ** 2).mean(axis=-1)


a_grid = np.linspace(-4, 8, 241)
a_best = (x * y).sum() / (x * x).sum()
theory.plot_cost_curve(a_grid, J(a_grid), a_best);

# %%
# NBVAL_CHECK_OUTPUT
print(f"best a = {a_best:.4f} yuan per kg, cost there J = {float(J(a_best)):.4f}")


# %% [markdown]
# ## 3. Gradient descent: walking downhill
#
# A real model has millions or billions of parameters, so its cost is a surface in a space we cannot draw, and we
# cannot spot the bottom by eye. **Gradient descent** finds it automatically: start somewhere (often at random),
# then repeat small moves downhill. Each move needs two decisions: **which direction** and **how far**.
#
# ### Direction: follow the slope down
# On a U-shaped curve, the **slope** (derivative) tells us where downhill is. A positive slope means the cost
# rises to the right, so step left; a negative slope means step right. For our cost:
#
# $$\frac{dJ}{da} = -\frac{2}{m}\sum_i x_i\,(y_i - a x_i).$$
#
# Moving against the slope also moves us to where the curve is flatter; at the bottom the slope is $0$.

# %%
# NBVAL_CHECK_OUTPUT
def slope(a):
    return -2 * np.mean(x * (y - a * x))


for a in [-3.0, a_best, 5.0]:
    print(f"a = {a:7.4f}   slope = {slope(a):+.4f}")

h = 1e-6  # sanity check against a numerical derivative
print("numerical slope at a = 5:", round((float(J(5 + h)) - float(J(5 - h))) / (2 * h), 4))


# %% [markdown]
# ### How far: a fixed step does not settle
# The simplest rule: always move a fixed distance, say **1.5**, in the downhill direction. Starting at $a=-3$ it
# walks towards the minimum, overshoots it, comes back, overshoots again... forever: it can never land closer than
# the step size allows.

# %%
# NBVAL_CHECK_OUTPUT
def fixed_step_descent(a, step=1.5, n_steps=8):
    path = [a]
    for _ in range(n_steps):
        a = float(a - step * np.sign(slope(a)))  # only the sign of the slope is used
        path.append(a)
    return path


fixed_path = fixed_step_descent(-3.0)
print("visited a:", fixed_path)


# %% [markdown]
# ### Slope-sized steps, and the learning rate
# Near the bottom the slope shrinks, so using the **slope itself** as the step makes the strides shrink
# automatically. But on a steep cost curve the slope is large, and a slope-sized step can jump right over the
# valley and keep bouncing. So we scale the slope by a small number we choose, the **learning rate** $\eta$:
#
# $$a \leftarrow a - \eta\,\frac{dJ}{da}.$$
#
# That one line *is* gradient descent. The loop below is all of it:

# %%
def gradient_descent(slope_fn, a, learning_rate, n_steps):
    path = [a]
    for _ in range(n_steps):
        a = a - learning_rate * slope_fn(a)
        path.append(a)
    return path


# %% [markdown]
# Three runs from $a=-3$: the fixed step of 1.5, slope-sized steps ($\eta = 1$) on our cost, and slope-sized steps
# on a **steeper** cost (the same receipts with every $x$ 1.5 times larger, started at $a=0$), where $\eta=1$
# bounces from side to side.

# %%
x_steep = 1.5 * x


def J_steep(a):
    a = np.asarray(a, dtype=float)[..., None]
    return ((y - a * x_steep) ** 2).mean(axis=-1)


def slope_steep(a):
    return -2 * np.mean(x_steep * (y - a * x_steep))


fig, axes = plt.subplots(1, 3, figsize=(13, 3.3))
theory.draw_path(axes[0], a_grid, J, fixed_path, "fixed step 1.5: oscillates")
theory.draw_path(axes[1], a_grid, J, gradient_descent(slope, -3.0, 1.0, 8), "step = slope: settles")
steep_grid = np.linspace(-1.5, 4.2, 200)
theory.draw_path(axes[2], steep_grid, J_steep, gradient_descent(slope_steep, 0.0, 1.0, 8),
                 "steeper cost, step = slope: bounces")
for ax in axes[:2]:
    ax.set_ylim(-0.5, 12)
fig.tight_layout()

# %% [markdown]
# ### Too small, about right, too large
# The learning rate is the knob you will tune most in the lab notebook. With 10 steps from $a=-3$:
#
# * **too small** ($\eta = 0.05$): every step is safe but tiny; after 10 steps we are still far away. It gets
#   there eventually, but it costs time and compute.
# * **about right** ($\eta = 1$): a few steps and we are at the bottom.
# * **too large** ($\eta = 2.4$): each step overshoots by more than it corrects; the bounces grow and the cost
#   climbs instead of falling. (Its panel has its own vertical scale: the cost reaches about 93, and the
#   curve is drawn wide enough that every visited point sits on it.)

# %%
# NBVAL_CHECK_OUTPUT
runs = {f"learning rate {lr}": gradient_descent(slope, -3.0, lr, 10) for lr in (0.05, 1.0, 2.4)}
for name, path in runs.items():
    print(f"{name:18s} final a = {path[-1]:9.4f}   cost = {float(J(path[-1])):9.4f}")

# %%
theory.plot_paths(a_grid, J, runs);

# %% [markdown]
# A smaller rate creeps closer to the exact bottom but needs more steps, so real trainers often **change the rate
# during training**: start larger and decay it (linearly, or along a cosine curve), the "learning-rate schedule"
# option in ms-swift and in cloud fine-tuning consoles. AutoML tools can also search for a good rate for you.
#
# ### Try it yourself
# Move the sliders. Find the largest learning rate that still settles, and the smallest one that gets close
# within 10 steps. (With a running kernel the plot redraws; on GitHub you see the starting picture.)

# %%
explorer = theory.learning_rate_explorer(
    run=lambda lr, n: gradient_descent(slope, -3.0, lr, n), a_grid=a_grid, cost_fn=J, lr=0.5, steps=10
)

# %% [markdown]
# For this cost anything above $\eta = 2/J''$ diverges, where $J'' = \frac{2}{m}\sum x_i^2$ is the curvature:

# %%
# NBVAL_CHECK_OUTPUT
curvature = 2 * np.mean(x**2)
print(f"curvature J'' = {curvature:.2f}  ->  learning rates above {2 / curvature:.3f} blow up")


# %% [markdown]
# ## 4. Two parameters: the gradient is a vector
#
# Let the rule have an intercept too: $f(x) = a x + b$ (a fixed bag fee $b$). Now the cost $J(a, b)$ is a
# **surface**, drawn below as contour lines, like a hiking map. At any point there are many downhill directions;
# the fastest one is straight down the fall line.
#
# The **gradient** collects the slope along each axis (the *partial derivatives*):
#
# $$\nabla J = \left(\frac{\partial J}{\partial a},\ \frac{\partial J}{\partial b}\right)
# = \left(-\frac{2}{m}\sum_i x_i r_i,\ -\frac{2}{m}\sum_i r_i\right), \qquad r_i = y_i - (a x_i + b).$$
#
# It points in the direction of **steepest ascent**, so gradient descent steps along $-\nabla J$, the steepest
# descent. PyTorch computes gradients for us (`loss.backward()`); it agrees with the formula:

# %%
# NBVAL_CHECK_OUTPUT
def gradient(a, b):
    r = y - (a * x + b)
    return np.array([-2 * np.mean(x * r), -2 * np.mean(r)])


a_t = torch.tensor(-2.0, requires_grad=True)
b_t = torch.tensor(2.5, requires_grad=True)
loss = ((torch.tensor(y) - (a_t * torch.tensor(x) + b_t)) ** 2).mean()
loss.backward()
print("formula:", np.round(gradient(-2.0, 2.5), 4))
print("torch  :", np.round([a_t.grad.item(), b_t.grad.item()], 4))


# %%
# NBVAL_CHECK_OUTPUT
def descend_2d(start, learning_rate, n_steps):
    p = np.array(start, dtype=float)
    path = [p.copy()]
    for _ in range(n_steps):
        p = p - learning_rate * gradient(*p)
        path.append(p.copy())
    return np.array(path)


path_2d = descend_2d((-2.0, 2.5), learning_rate=0.6, n_steps=60)
exact_a, exact_b = np.polyfit(x, y, 1)
print(f"gradient descent after 60 steps: a = {path_2d[-1, 0]:.3f}, b = {path_2d[-1, 1]:.3f}")
print(f"exact least-squares answer     : a = {exact_a:.3f}, b = {exact_b:.3f}")


# %%
def J_ab(A, B):
    return ((y - (A[..., None] * x + B[..., None])) ** 2).mean(axis=-1)


theory.plot_contour(np.linspace(-3, 5, 120), np.linspace(-2, 3, 120), J_ab,
                    {"steepest descent, learning rate 0.6": path_2d}, arrows=True);

# %% [markdown]
# ### Watch it step by step
# Press **play** (or drag the **step** slider) to replay the same 60 steps one at a time. Left: where the two
# parameters are, the route still ahead (faint), and the green arrow, the direction against the gradient,
# which is where the next step goes. Right: the cost after each step. The early steps are long because the
# walls are steep; near the valley floor the gradient and therefore the steps shrink, so the cost falls
# ever more slowly. (Without a running kernel you see one frame, step 15, where the path turns into the
# valley.)

# %%
player = theory.descent_player(path_2d, np.linspace(-3, 5, 120), np.linspace(-2, 3, 120), J_ab,
                               learning_rate=0.6, step=15)

# %% [markdown]
# Each arrow crosses the contour lines at a right angle: that is what "steepest" looks like. The path first drops
# fast down the steep walls, then crawls along the flat valley floor; that long, flat valley is why large models
# need many steps and why the learning rate matters so much.
#
# ## 5. The knobs of a real training run
#
# ### Batch size
# One **training step** = compute the gradient, update the parameters. So far each step used *all* examples.
# Real data sets are far too large for that, so each step uses a **mini-batch** of `batch_size` examples and
# averages their gradients. Small batches give cheap but **noisy** gradient estimates (a zig-zag path). Larger
# batches give smoother steps, need fewer steps per epoch and keep a GPU's parallel hardware busy, so training
# usually finishes sooner, but they cost more memory, and very large batches can generalise worse.
# Choosing it is a trade-off between hardware, time and quality, usually settled by experiment.
#
# Below: 20 noisy examples of $y = 2x + 0.5$, and 60 steps with batch size 1, 5 and 20 (the full set), same
# learning rate.

# %%
x20 = rng.uniform(0, 1, 20)
y20 = 2 * x20 + 0.5 + rng.normal(0, 0.2, 20)


def minibatch_descent(batch_size, n_steps=60, learning_rate=0.5, start=(-1.0, 2.5)):
    pick = np.random.default_rng(1)
    a, b = start
    path = [(a, b)]
    for _ in range(n_steps):
        idx = pick.choice(len(x20), size=batch_size, replace=False)
        r = y20[idx] - (a * x20[idx] + b)
        a, b = a + learning_rate * 2 * np.mean(x20[idx] * r), b + learning_rate * 2 * np.mean(r)
        path.append((a, b))
    return path


def J20(A, B):
    return ((y20 - (A[..., None] * x20 + B[..., None])) ** 2).mean(axis=-1)


batch_paths = {f"batch size {n}": minibatch_descent(n) for n in (1, 5, 20)}
theory.plot_contour(np.linspace(-1.5, 4, 120), np.linspace(-0.5, 3, 120), J20, batch_paths,
                    title="Same learning rate, different batch sizes");


# %% [markdown]
# ### Epochs, eval steps and early stopping, on a tiny PyTorch run
# * An **epoch** is one full pass over the training set. With 20 examples and batch size 5, one epoch is 4 steps.
#   One epoch is rarely enough to reach the bottom, so trainers take `num_train_epochs` (in ms-swift) as a setting.
#   Too few epochs stop before the bottom; too many waste time, and, as we are about to see, can make the model
#   *worse*.
# * Every `eval_steps` steps the trainer measures the loss on a **validation set**: examples the model never
#   trains on. (On large data sets waiting for the end of an epoch would be too rare a check.)
# * **Early stopping**: set a generous number of epochs, watch the validation loss, and stop when it has not
#   improved for `patience` evaluations in a row; keep the checkpoint from the best evaluation.
#
# The model: a degree-15 polynomial fitted to 20 noisy points from a sine wave. It has far more freedom than 20
# points justify, so after learning the wave it starts bending to fit the noise: **overfitting**.

# %%
def make_points(n):
    xs = np.sort(rng.uniform(-1, 1, n))
    ys = np.sin(3 * xs) + rng.normal(0, 0.25, n)
    return torch.tensor(xs, dtype=torch.float32)[:, None], torch.tensor(ys, dtype=torch.float32)[:, None]


def features(xs, degree=15):
    return torch.cat([xs**k for k in range(1, degree + 1)], dim=1)


x_train, y_train = make_points(20)
x_val, y_val = make_points(40)

# %% [markdown]
# **A new name below: Adam.** The training loop uses `torch.optim.Adam` instead of our hand-written update.
# Adam is still gradient descent, but it keeps two running averages for every parameter: the average of the
# recent gradients (*momentum*: zig-zags cancel out while a steady direction builds up) and the average of
# the recent *squared* gradients (how large this parameter's gradients usually are). Each step moves the
# parameter by the learning rate × momentum ÷ √(squared average). Because of that division, every
# parameter takes strides of roughly the learning rate's size, whether its slope is steep or gentle, so
# one learning rate suits parameters whose gradients differ by orders of magnitude. Almost every LLM
# fine-tune uses it (ms-swift's default is AdamW, Adam plus a small pull of the weights towards zero). Its
# cost is memory: two extra numbers per trained parameter, which notebook 02 counts when it prices
# training. The first step shows the difference from plain gradient descent most clearly:

# %%
# NBVAL_CHECK_OUTPUT
for start in (-3.0, 5.0):  # a steep slope on the left, a gentler one on the right
    a_param = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    adam = torch.optim.Adam([a_param], lr=0.5)
    ((torch.tensor(y) - a_param * torch.tensor(x)) ** 2).mean().backward()
    adam.step()
    print(f"start a = {start:+.1f}, slope {slope(start):+.3f}: plain step with learning rate 0.5 moves "
          f"{-0.5 * slope(start):+.3f}, Adam's first step moves {a_param.item() - start:+.3f}")

# %%
# NBVAL_CHECK_OUTPUT
import copy

torch.manual_seed(0)
model = torch.nn.Linear(15, 1)  # y = w1*x + w2*x^2 + ... + w15*x^15 + b
optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
batch_size, num_train_epochs, eval_steps = 5, 400, 20
mse = torch.nn.MSELoss()

history = {"step": [], "train": [], "val": []}
best_val, best_state, step = float("inf"), None, 0
for epoch in range(num_train_epochs):
    order = torch.randperm(len(x_train))
    for i in range(0, len(x_train), batch_size):
        batch = order[i : i + batch_size]
        loss = mse(model(features(x_train[batch])), y_train[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        step += 1
        if step % eval_steps == 0:
            with torch.no_grad():
                history["step"].append(step)
                history["train"].append(mse(model(features(x_train)), y_train).item())
                history["val"].append(mse(model(features(x_val)), y_val).item())
            if history["val"][-1] < best_val:
                best_val, best_state = history["val"][-1], copy.deepcopy(model.state_dict())

print(f"{step} steps = {num_train_epochs} epochs x {len(x_train) // batch_size} steps; {len(history['step'])} evaluations")
print(f"first eval: train {history['train'][0]:.3f}, validation {history['val'][0]:.3f}")
print(f"last eval : train {history['train'][-1]:.3f}, validation {history['val'][-1]:.3f}")


# %% [markdown]
# Early stopping as a function. `patience` is how many evaluations in a row we tolerate without a new best
# validation loss. Validation loss is noisy, so patience 1 can stop on a random wobble; a larger patience waits to
# be sure, at the price of some wasted steps.

# %%
# NBVAL_CHECK_OUTPUT
def early_stopping(val_losses, patience):
    # Return (index of best evaluation, index where training would stop).
    best, best_i = float("inf"), 0
    for i, v in enumerate(val_losses):
        if v < best:
            best, best_i = v, i
        elif i - best_i >= patience:
            return best_i, i
    return best_i, len(val_losses) - 1


for patience in (1, 3, 10):
    best_i, stop_i = early_stopping(history["val"], patience)
    print(f"patience {patience:2d}: best at step {history['step'][best_i]:4d} "
          f"(val {history['val'][best_i]:.3f}), stop at step {history['step'][stop_i]:4d}")

# %%
best_i, stop_i = early_stopping(history["val"], patience=10)
theory.plot_train_val(history["step"], history["train"], history["val"],
                      best_step=history["step"][best_i], stop_step=history["step"][stop_i],
                      title="Training loss keeps falling; validation loss turns up (overfitting)");

# %% [markdown]
# The training loss keeps creeping down for all 1,600 steps, but the validation loss bottoms out early and then
# climbs to many times its best value: the model is bending itself around the 20 training points, noise included,
# and goes wild between and beyond them. With patience 10 we would have stopped at the red line and kept the green
# checkpoint. The fitted curves tell the same story:

# %%
grid = torch.linspace(-1, 1, 200)[:, None]
last_state = copy.deepcopy(model.state_dict())
curves = {}
for name, state in [("best checkpoint (early stop)", best_state), ("after all 400 epochs", last_state)]:
    model.load_state_dict(state)
    with torch.no_grad():
        curves[name] = model(features(grid)).squeeze(1).numpy()
theory.plot_fits(x_train, y_train, x_val, y_val, grid.squeeze(1), curves);

# %% [markdown]
# Early stopping is one way to choose the number of epochs; another is to lower the learning rate whenever the
# validation loss stalls, which indirectly limits how far training moves. Notebook 03 reads these same curves from
# real fine-tuning runs.
#
# ## 6. Neural networks: stacking simple layers
#
# Maths word problems do not come with a one-number rule like $y = a x$: the input is text, the output is text,
# both with huge numbers of dimensions. We need a function family flexible enough to approximate almost anything:
# **neural networks**. One layer is
#
# $$Y = \sigma(W \cdot X)$$
#
# with $W$ the layer's parameters, $X$ and $Y$ matrices (capital letters: many numbers), and $\sigma$ an
# **activation function** that makes the layer non-linear. The most common one is ReLU:
#
# $$\mathrm{ReLU}(z) = \max(0, z) = \begin{cases} z & z > 0 \\ 0 & z \le 0 \end{cases}$$
#
# A unit whose input is $\le 0$ outputs nothing ("not activated"); a positive input passes through. Without
# $\sigma$, stacking layers would collapse into one big matrix product, still just a linear rule.
#
# ### One layer with numbers: $W_{2\times 3} \cdot X_{3\times 2}$
# Each column of $X$ is one input with 3 features; each column of $Y$ is that input's 2 outputs. Entry $(i, j)$
# of $W X$ is row $i$ of $W$ times column $j$ of $X$: $\sum_{k=1}^{3} w_{i,k}\,x_{k,j}$.

# %%
# NBVAL_CHECK_OUTPUT
W = [[1.0, -2.0, 0.5],
     [-1.0, 0.0, 2.0]]
X = [[1.0, 2.0],
     [0.0, 1.0],
     [2.0, -4.0]]

Z = [[0.0, 0.0], [0.0, 0.0]]
for i in range(2):
    for j in range(2):
        terms = [W[i][k] * X[k][j] for k in range(3)]
        Z[i][j] = sum(terms)
        print(f"z[{i + 1},{j + 1}] = " + " + ".join(f"({W[i][k]})*({X[k][j]})" for k in range(3)) + f" = {Z[i][j]}")

Y = [[max(0.0, z) for z in row] for row in Z]
print("W·X        =", Z)
print("ReLU(W·X)  =", Y)

# %% [markdown]
# **A typo in the lesson's expansion.** Its first entry of row 2 reads $w_{2,1}x_{1,1} + w_{1,2}x_{2,1} +
# w_{1,3}x_{3,1}$, mixing in row 1's weights. Row 2 must use row 2 of $W$ throughout:
# $w_{2,1}x_{1,1} + w_{2,2}x_{2,1} + w_{2,3}x_{3,1}$. With our numbers the difference is not small:

# %%
# NBVAL_CHECK_OUTPUT
typo = W[1][0] * X[0][0] + W[0][1] * X[1][0] + W[0][2] * X[2][0]
right = W[1][0] * X[0][0] + W[1][1] * X[1][0] + W[1][2] * X[2][0]
print(f"with the typo: {typo}    correct: {right}")

# %% [markdown]
# The same layer in PyTorch is one line, and it matches the loops:

# %%
# NBVAL_CHECK_OUTPUT
Wt, Xt = torch.tensor(W), torch.tensor(X)
print(torch.relu(Wt @ Xt))

# %% [markdown]
# ### A stack of $k$ layers
# A $k$-layer network feeds each layer's output into the next:
# $Y = \sigma(W_k \cdots \sigma(W_2 \cdot \sigma(W_1 \cdot X)))$. PyTorch writes it as a `Sequential`. (PyTorch
# keeps one example per *row*, so it computes $X W^\top$; same numbers, transposed layout.) An LLM block is this
# idea at scale: SmolLM2-135M's MLP maps 576 numbers to 1,536 and back, 30 times over. The picture is drawn from the
# same layer sizes as the code below: each circle is one number, each line one weight.

# %%
theory.plot_network((3, 4, 4, 2));

# %%
# NBVAL_CHECK_OUTPUT
torch.manual_seed(0)
net = torch.nn.Sequential(
    torch.nn.Linear(3, 4, bias=False), torch.nn.ReLU(),  # W1: 4x3
    torch.nn.Linear(4, 4, bias=False), torch.nn.ReLU(),  # W2: 4x4
    torch.nn.Linear(4, 2, bias=False),                   # W3: 2x4 (last layer often without activation)
)
h = Xt.T  # two examples as rows, 3 features each
for layer in net:
    h = layer(h)
    print(f"{layer.__class__.__name__:6s} -> shape {tuple(h.shape)}")
print("parameters:", sum(p.numel() for p in net.parameters()))

# %% [markdown]
# ## Summary
#
# * **Training** = search for the parameters that minimise a **cost** (here MSE) over the training set.
# * **Gradient descent** steps against the gradient; the **learning rate** scales the step. Too small is slow,
#   too large bounces or blows up. **Adam** adds running averages so that every parameter takes strides of
#   about the learning rate's size.
# * **Batch size** trades gradient noise against memory; an **epoch** is one pass over the data; **eval steps**
#   sets how often the validation loss is measured; **early stopping** with a **patience** keeps the best checkpoint
#   once validation loss stops improving.
# * **Neural networks** stack `ReLU(W·X)` layers, and gradient descent trains them just the same, even with
#   billions of parameters.
#
# Those billions are the problem: training them all is expensive. Next, **[02_lora.ipynb](02_lora.ipynb)**
# estimates how expensive, and shows how LoRA trains only a small share of them instead: 1.82% of the
# 135 M-parameter model you fine-tune in notebook 03, 0.6% of the lesson's Qwen2.5-1.5B.
