"""Theory notebooks (01, 02): small calculators, plots and the learning-rate widget.

The ideas themselves (gradient descent loop, LoRA module, SVD) live in the notebooks where learners read
them; this module only holds arithmetic worth unit-testing and matplotlib/ipywidgets plumbing.
"""

from __future__ import annotations

import numpy as np

from .shapes import QWEN25_1_5B, SMOLLM2_135M, DecoderShape, full_params, lora_params, saving_percent  # noqa: F401 - notebook 02 uses them from here

GIB = 2**30
SECONDS_PER_DAY = 86_400


# ---------------------------------------------------------------- memory, time and cost calculators


def param_memory_gib(n_params: float, bytes_per_param: int = 4) -> float:
    """Memory needed just to hold the weights, in GiB (2**30 bytes)."""
    return n_params * bytes_per_param / GIB


def training_memory_gib(n_params: float, bytes_per_param: int = 4, multiplier: float = 8) -> float:
    """Rule of thumb: weights + gradients + optimizer state + activations ~ 7-8x the weights."""
    return param_memory_gib(n_params, bytes_per_param) * multiplier


def training_days(total_tokens: float, tokens_per_second: float) -> float:
    """Wall-clock days to push `total_tokens` through at a measured throughput (tokens/s, all GPUs)."""
    return total_tokens / tokens_per_second / SECONDS_PER_DAY


def lesson_formula_days(total_tokens: float, batch_tokens: float, tokens_per_second: float) -> float:
    """The lesson's formula, which also divides by the batch size (a batch is already inside tokens/s)."""
    return total_tokens / (batch_tokens * tokens_per_second * SECONDS_PER_DAY)


def compute_days(n_params: float, total_tokens: float, gpus: int, peak_flops: float, utilisation: float) -> float:
    """Days of training by compute: about 6 FLOP per parameter per token (2 forward, 4 backward), divided by
    what the GPUs really deliver (their peak times the share of it a training run achieves)."""
    return 6 * n_params * total_tokens / (gpus * peak_flops * utilisation) / SECONDS_PER_DAY


def throughput_for_days(total_tokens: float, days: float) -> float:
    """Tokens per second needed to finish `total_tokens` in `days`."""
    return total_tokens / (days * SECONDS_PER_DAY)


def training_cost(hourly_rate: float, hours: float) -> float:
    """Cost = price per hour x hours (price for the whole machine, all GPUs included)."""
    return hourly_rate * hours


# ---------------------------------------------------------------- plots (return the Figure, never show it)


def _plt():
    import matplotlib.pyplot as plt

    return plt


def plot_cost_curve(a_grid, cost, a_best=None, title="Cost J(a)"):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(a_grid, cost, color="tab:blue")
    if a_best is not None:
        ax.axvline(a_best, ls=":", color="gray")
        ax.annotate(f"minimum at a = {a_best:.2f}", (a_best, min(cost)), xytext=(8, 20), textcoords="offset points")
    ax.set(xlabel="parameter a", ylabel="J(a)", title=title)
    fig.tight_layout()
    return fig


def covering_grid(a_grid, path, n: int = 400):
    """`a_grid` widened (with a margin) so that every visited value of a lies on the drawn curve."""
    lo, hi = min(float(np.min(a_grid)), *map(float, path)), max(float(np.max(a_grid)), *map(float, path))
    margin = 0.03 * (hi - lo)
    return np.linspace(lo - margin, hi + margin, max(n, len(a_grid)))


def draw_path(ax, a_grid, cost_fn, path, title, color="tab:red"):
    """A 1-D cost curve with the visited points joined by arrows.

    The curve is drawn over `a_grid` widened to cover the path, so a run that diverges far outside the
    grid still has its points on the curve (not floating in empty space).
    """
    a_grid = covering_grid(a_grid, path)
    ax.plot(a_grid, cost_fn(a_grid), color="tab:blue", lw=1)
    ys = [cost_fn(a) for a in path]
    ax.plot(path, ys, "o", color=color, ms=4)
    for (a0, y0), (a1, y1) in zip(zip(path, ys), zip(path[1:], ys[1:])):
        ax.annotate("", (a1, y1), (a0, y0), arrowprops={"arrowstyle": "->", "color": color, "lw": 1})
    ax.set(title=title, xlabel="a", ylabel="J(a)")


def plot_paths(a_grid, cost_fn, paths: dict, ylim=None):
    """One panel per named path, side by side. `ylim`: one (low, high) for all panels, a dict
    title -> (low, high) for some, or None to let every panel fit its own path."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(paths), figsize=(4.2 * len(paths), 3.2), squeeze=False)
    for ax, (title, path) in zip(axes[0], paths.items()):
        draw_path(ax, a_grid, cost_fn, path, title)
        limits = ylim.get(title) if isinstance(ylim, dict) else ylim
        if limits:
            ax.set_ylim(*limits)
    fig.tight_layout()
    return fig


def plot_contour(a_grid, b_grid, cost_ab, paths: dict, arrows=False, title="Cost surface J(a, b)"):
    """Contour lines of J(a, b) with one or more descent paths (list of (a, b))."""
    plt = _plt()
    A, B = np.meshgrid(a_grid, b_grid)
    Z = cost_ab(A, B)
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    levels = np.geomspace(Z.min() + 1e-3, Z.max(), 14)
    cs = ax.contour(A, B, Z, levels=levels, cmap="viridis", linewidths=0.8)
    ax.clabel(cs, fontsize=7, fmt="%.2g")
    colors = ["tab:red", "tab:orange", "tab:green", "tab:purple"]
    for color, (label, path) in zip(colors, paths.items()):
        p = np.asarray(path)
        ax.plot(p[:, 0], p[:, 1], ".-", color=color, lw=1, ms=3, label=label)
        if arrows:
            ax.quiver(p[:-1, 0], p[:-1, 1], np.diff(p[:, 0]), np.diff(p[:, 1]), color=color,
                      angles="xy", scale_units="xy", scale=1, width=0.004)
    ax.set(xlabel="a (slope)", ylabel="b (intercept)", title=title)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def plot_train_val(steps, train, val, best_step=None, stop_step=None, title="Training run"):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 3.4))
    ax.plot(steps, train, label="training loss", color="tab:blue")
    ax.plot(steps, val, label="validation loss", color="tab:orange")
    if best_step is not None:
        ax.axvline(best_step, color="tab:green", ls="--", label=f"best validation (step {best_step})")
    if stop_step is not None:
        ax.axvline(stop_step, color="tab:red", ls=":", label=f"early stop (step {stop_step})")
    ax.set(xlabel="training step", ylabel="MSE loss", yscale="log", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_fits(x_train, y_train, x_val, y_val, x_grid, curves: dict):
    """Data points plus one or more fitted curves (name -> y values on x_grid)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    ax.plot(x_train, y_train, "o", color="tab:blue", label="training points")
    ax.plot(x_val, y_val, "x", color="tab:orange", alpha=0.6, label="validation points")
    for name, ys in curves.items():
        ax.plot(x_grid, ys, label=name)
    ax.set(xlabel="x", ylabel="y", ylim=(-2, 2))
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def synthetic_curves(state: str, n: int = 40, seed: int = 0):
    """Made-up (train, validation) loss curves that look like each training state."""
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 1, n)
    noise = rng.normal(0, 0.02, (2, n))
    if state == "failed":
        train = 2.0 + 0.3 * np.sin(12 * t) + 0.8 * t
        val = train + 0.1
    elif state == "underfitting":
        train = 2.0 - 1.0 * t
        val = 2.1 - 0.9 * t
    elif state == "overfitting":
        train = 0.2 + 1.8 * np.exp(-5 * t)
        val = 0.6 + 1.5 * np.exp(-6 * t) + 0.9 * t**2
    elif state == "converged":
        train = 0.3 + 1.7 * np.exp(-7 * t)
        val = 0.4 + 1.7 * np.exp(-7 * t)
    else:
        raise ValueError(f"unknown state {state!r}")
    return train + noise[0], val + noise[1]


def plot_training_states(states=("failed", "underfitting", "overfitting", "converged"), advice=None):
    plt = _plt()
    fig, axes = plt.subplots(1, len(states), figsize=(3.3 * len(states), 3), sharey=True)
    for ax, state in zip(np.atleast_1d(axes), states):
        train, val = synthetic_curves(state)
        ax.plot(train, label="train")
        ax.plot(val, label="validation")
        ax.set_title(state if not advice else f"{state}\n→ {advice[state]}", fontsize=9)
        ax.set_xlabel("eval step")
    np.atleast_1d(axes)[0].set_ylabel("loss")
    np.atleast_1d(axes)[0].legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_singular_values(singular_values, title="Singular values"):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3))
    s = np.asarray(singular_values)
    ax.bar(np.arange(1, len(s) + 1), s, color="tab:blue")
    ax.set(xlabel="index", ylabel="singular value", title=title)
    fig.tight_layout()
    return fig


def plot_loss_histories(histories: dict, title="LoRA toy fit"):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    for name, losses in histories.items():
        ax.plot(losses, label=name)
    ax.set(xlabel="step", ylabel="error (MSE)", yscale="log", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------- the learning-rate explorer widget


def learning_rate_explorer(run, a_grid, cost_fn, lr=0.5, steps=10, lr_range=(0.01, 2.5)):
    """Sliders for learning rate and steps that redraw a descent plot.

    `run(lr, steps)` is the notebook's own gradient-descent function and returns the visited values of a.
    The plot is shown with a display id and updated in place: the saved notebook keeps a static PNG
    (GitHub, nbval), and a live kernel redraws it whenever a slider moves.
    """
    import ipywidgets as widgets
    from IPython.display import display

    plt = _plt()
    lr_slider = widgets.FloatSlider(value=lr, min=lr_range[0], max=lr_range[1], step=0.01,
                                    description="learning rate", readout_format=".2f", continuous_update=False,
                                    style={"description_width": "initial"})
    steps_slider = widgets.IntSlider(value=steps, min=1, max=40, description="steps", continuous_update=False)

    def draw():
        path = run(lr_slider.value, steps_slider.value)
        fig, ax = plt.subplots(figsize=(5.5, 3.4))
        draw_path(ax, a_grid, cost_fn, path,
                  f"learning rate {lr_slider.value:.2f}, {steps_slider.value} steps: a = {path[-1]:.3f}")
        top = float(np.max(cost_fn(a_grid)))
        ax.set_ylim(-0.05 * top, top * 1.05)
        fig.tight_layout()
        plt.close(fig)
        return fig

    controls = widgets.HBox([lr_slider, steps_slider])
    bundle = controls._repr_mimebundle_()
    bundle["text/plain"] = "[sliders: learning rate, steps (they move with a running kernel)]"
    display(bundle, raw=True)
    handle = display(draw(), display_id=True)

    def redraw(_change):
        handle.update(draw())

    lr_slider.observe(redraw, names="value")
    steps_slider.observe(redraw, names="value")
    return lr_slider, steps_slider


def fmt_int(n: float) -> str:
    """12345 -> '12,345' (for tables)."""
    return f"{round(n):,}"


def years(days: float) -> float:
    return days / 365.25


# ---------------------------------------------------------------- pictures drawn from shapes and counts


def network_weights(layer_sizes) -> list[tuple[int, int]]:
    """(rows, cols) of every weight matrix W_k in a plain layer stack: W_k maps n_{k-1} numbers to n_k."""
    sizes = list(layer_sizes)
    return [(n_out, n_in) for n_in, n_out in zip(sizes, sizes[1:])]


def plot_network(layer_sizes=(3, 4, 4, 2), activation="ReLU", title=None):
    """Every unit a circle, every weight a line; each gap labelled with its W shape and count."""
    plt = _plt()
    sizes = list(layer_sizes)
    shapes = network_weights(sizes)
    tallest = max(sizes)
    fig, ax = plt.subplots(figsize=(1.5 * len(sizes) + 0.8, 0.5 * tallest + 1.4))
    ys = [np.linspace(-(n - 1) / 2, (n - 1) / 2, n) for n in sizes]
    for k, (y_left, y_right) in enumerate(zip(ys, ys[1:])):
        for y0 in y_left:
            for y1 in y_right:
                ax.plot([k, k + 1], [y0, y1], color="tab:gray", lw=0.6, alpha=0.6, zorder=1)
        rows, cols = shapes[k]
        ax.text(k + 0.5, tallest / 2 + 0.15, f"$W_{k + 1}$: {rows}×{cols}\n= {rows * cols} weights",
                ha="center", va="bottom", fontsize=8)
    for k, y_col in enumerate(ys):
        last = k == len(sizes) - 1
        color = "tab:green" if k == 0 else ("tab:orange" if last else "tab:blue")
        ax.scatter([k] * len(y_col), y_col, s=260, color=color, edgecolor="black", zorder=2)
        if k == 0:
            label = f"input X\n{sizes[0]} numbers"
        elif last:
            label = f"output Y\n{sizes[k]} numbers"
        else:
            label = f"hidden {k}\n{activation}(W·…)"
        ax.text(k, -tallest / 2 - 0.35, label, ha="center", va="top", fontsize=8)
    total = sum(r * c for r, c in shapes)
    ax.set_title(title or f"{len(shapes)} layers, {total} weights in all (no biases)", fontsize=10)
    ax.set_xlim(-0.5, len(sizes) - 0.5)
    ax.set_ylim(-tallest / 2 - 1.3, tallest / 2 + 1.0)
    ax.axis("off")
    fig.tight_layout()
    return fig


def _trapezoid(ax, y0, y1, bottom_width, top_width, x_center, color, label=None):
    from matplotlib.patches import Polygon

    pts = [(x_center - bottom_width / 2, y0), (x_center + bottom_width / 2, y0),
           (x_center + top_width / 2, y1), (x_center - top_width / 2, y1)]
    ax.add_patch(Polygon(pts, closed=True, facecolor=color, edgecolor="black", lw=1))
    if label:
        ax.text(x_center + max(bottom_width, top_width) / 2 + 0.08, (y0 + y1) / 2, label, va="center", fontsize=8)


def plot_lora(d_in: int, d_out: int, r: int, name: str = "one linear layer"):
    """The frozen W beside the trainable path x -> A -> B, widths proportional to the real sizes.

    A narrows d_in numbers down to r, B widens r back to d_out; r is drawn at least a little wide so a
    rank of 8 next to a width of 1,536 stays visible (the labels carry the true numbers).
    """
    from matplotlib.patches import FancyArrowPatch, Rectangle

    plt = _plt()
    full, lora = full_params(d_in, d_out), lora_params(d_in, d_out, r)
    width = 1.6  # drawing width of the larger of d_in, d_out
    unit = width / max(d_in, d_out)
    w_in, w_out, w_r = d_in * unit, d_out * unit, max(r * unit, 0.12)
    fig, ax = plt.subplots(figsize=(7.6, 4.4))
    left, right = 0.0, 2.5
    # the frozen weight: a d_out x d_in block
    ax.add_patch(Rectangle((left - w_in / 2, 1.0), w_in, 1.6, facecolor="#cfd8e3", edgecolor="black", lw=1))
    ax.text(left, 1.8, f"W  (frozen)\n{d_out:,} × {d_in:,}\n= {full:,} numbers", ha="center", va="center", fontsize=9)
    # the trainable low-rank path: A squeezes, B widens
    _trapezoid(ax, 1.0, 1.75, w_in, w_r, right, "tab:orange",
               f"A: {r} × {d_in:,}\ntrainable, random start")
    _trapezoid(ax, 1.85, 2.6, w_r, w_out, right, "tab:orange",
               f"B: {d_out:,} × {r}\ntrainable, starts at 0")
    ax.text(right, 1.8, f"r = {r}", ha="center", va="center", fontsize=8, color="black",
            bbox={"boxstyle": "round,pad=0.15", "facecolor": "white", "edgecolor": "none"})
    # input at the bottom, output at the top
    ax.add_patch(Rectangle((left - w_in / 2, 0.2), w_in + (right - left), 0.25, facecolor="tab:green", alpha=0.5))
    ax.text((left + right) / 2, 0.325, f"input x: {d_in:,} numbers", ha="center", va="center", fontsize=9)
    ax.add_patch(Rectangle((left - w_out / 2, 3.15), w_out + (right - left), 0.25, facecolor="tab:blue", alpha=0.35))
    ax.text((left + right) / 2, 3.275, f"output h = W x + B A x: {d_out:,} numbers", ha="center", va="center", fontsize=9)
    for x0 in (left, right):
        ax.add_patch(FancyArrowPatch((x0, 0.45), (x0, 1.0), arrowstyle="->", mutation_scale=12))
        ax.add_patch(FancyArrowPatch((x0, 2.6), (x0, 3.15), arrowstyle="->", mutation_scale=12))
    ax.text((left + right) / 2, 2.88, "+", ha="center", va="center", fontsize=18)
    ax.set_title(f"LoRA on {name}, rank {r}: {lora:,} trainable numbers beside {full:,} frozen "
                 f"({100 * lora / full:.2f}%)", fontsize=10)
    ax.set_xlim(left - width / 2 - 0.2, right + width / 2 + 1.2)
    ax.set_ylim(0.0, 3.6)
    ax.set_aspect("equal")
    ax.axis("off")
    fig.tight_layout()
    return fig


PEFT_METHODS = ("freeze", "adapter", "lora", "prompt")
_FROZEN, _TRAIN = "#cfd8e3", "tab:orange"


def _peft_panel(ax, method: str, blocks: int, trained: int | None, total: int | None, frozen_last: int):
    from matplotlib.patches import Rectangle

    names = {"freeze": f"Freeze: train the last {frozen_last} blocks", "adapter": "Adapters: new layers inside blocks",
             "lora": "LoRA: B·A beside each weight", "prompt": "Prompt tuning: learned input vectors"}
    # tokens at the bottom: 5 real ones, plus learned "virtual" ones for prompt tuning
    n_virtual = 3 if method == "prompt" else 0
    n_tokens = n_virtual + 5
    pitch = min(0.13, 0.9 / n_tokens)
    for i in range(n_tokens):
        virtual = i < n_virtual
        ax.add_patch(Rectangle((0.05 + i * pitch, 0.05), pitch * 0.77, 0.25, facecolor=_TRAIN if virtual else "white",
                               edgecolor="black", lw=0.8))
    ax.text(0.05, 0.33 + 0.02, "learned tokens + input" if n_virtual else "input tokens", fontsize=7, va="bottom")
    height = 0.42
    for b in range(blocks):
        y = 0.75 + b * (height + 0.12)
        trainable = method == "freeze" and b >= blocks - frozen_last
        ax.add_patch(Rectangle((0.05, y), 0.9, height, facecolor=_TRAIN if trainable else _FROZEN,
                               edgecolor="black", lw=0.8))
        ax.text(0.1, y + height / 2, "attention", fontsize=6, va="center")
        ax.text(0.52, y + height / 2, "MLP", fontsize=6, va="center")
        if method == "adapter":  # a bottleneck after attention and after the MLP
            for x in (0.38, 0.8):
                ax.add_patch(Rectangle((x, y + 0.08), 0.1, height - 0.16, facecolor=_TRAIN, edgecolor="black", lw=0.6))
        if method == "lora":  # a thin trainable pair beside the weights
            for x in (0.33, 0.75):
                ax.add_patch(Rectangle((x, y + 0.05), 0.035, height - 0.1, facecolor=_TRAIN, edgecolor="none"))
                ax.add_patch(Rectangle((x + 0.045, y + 0.05), 0.035, height - 0.1, facecolor=_TRAIN, edgecolor="none"))
    top = 0.75 + blocks * (height + 0.12)
    ax.text(0.5, top - 0.05, "⋮ (all blocks alike)" if method != "freeze" else "", ha="center", fontsize=7, va="bottom")
    share = f"\ntrains {trained:,} numbers ({trained / total:.3%})" if trained is not None and total else ""
    ax.set_title(names[method] + share, fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, top + 0.25)
    ax.axis("off")


def plot_peft_methods(counts: dict | None = None, total: int | None = None, blocks: int = 5, frozen_last: int = 2):
    """Four small models side by side, frozen parts grey and trained parts orange.

    counts: method ("freeze", "adapter", "lora", "prompt") -> trainable numbers, shown with their share of
    `total`. The block stack is schematic (a few blocks stand for all of them); the counts are real.
    """
    plt = _plt()
    from matplotlib.patches import Patch

    counts = counts or {}
    fig, axes = plt.subplots(1, len(PEFT_METHODS), figsize=(12, 3.9))
    for ax, method in zip(axes, PEFT_METHODS):
        _peft_panel(ax, method, blocks, counts.get(method), total, frozen_last)
    fig.legend(handles=[Patch(facecolor=_FROZEN, edgecolor="black", label="frozen (no gradient)"),
                        Patch(facecolor=_TRAIN, edgecolor="black", label="trained")],
               loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


# ---------------------------------------------------------------- gradient descent, step by step


def draw_descent_frame(path, a_grid, b_grid, cost_ab, step: int, learning_rate: float | None = None):
    """One frame of a 2-parameter descent: the whole route faint, the part walked so far bold, the next
    step as a green arrow (against the gradient), and the cost so far on the right."""
    plt = _plt()
    p = np.asarray(path, dtype=float)
    step = int(np.clip(step, 0, len(p) - 1))
    A, B = np.meshgrid(a_grid, b_grid)
    Z = cost_ab(A, B)
    costs = np.array([float(cost_ab(np.asarray(a), np.asarray(b))) for a, b in p])
    fig, (ax, ax_cost) = plt.subplots(1, 2, figsize=(9.5, 3.6), gridspec_kw={"width_ratios": [1.25, 1]})
    ax.contour(A, B, Z, levels=np.geomspace(Z.min() + 1e-3, Z.max(), 14), cmap="viridis", linewidths=0.7)
    ax.plot(p[:, 0], p[:, 1], "-", color="tab:red", alpha=0.2, lw=1)
    ax.plot(p[: step + 1, 0], p[: step + 1, 1], ".-", color="tab:red", lw=1.2, ms=4)
    ax.plot(*p[step], "o", color="tab:red", ms=8, mec="black")
    if step < len(p) - 1:  # the downhill direction (-gradient), drawn at a fixed length so it stays visible
        d = p[step + 1] - p[step]
        span = np.array([np.ptp(a_grid), np.ptp(b_grid)])
        length = np.linalg.norm(d / span)
        if length > 0:
            tip = p[step] + d / length * 0.15
            ax.annotate("", tip, p[step], arrowprops={"arrowstyle": "-|>", "color": "tab:green", "lw": 2})
            ax.annotate("−gradient", tip, fontsize=8, color="tab:green", xytext=(4, 4), textcoords="offset points")
    rate = f", learning rate {learning_rate:g}" if learning_rate is not None else ""
    ax.set(xlabel="a", ylabel="b", title=f"step {step}: a = {p[step, 0]:.3f}, b = {p[step, 1]:.3f}{rate}")
    ax.title.set_fontsize(9)
    ax_cost.plot(np.arange(len(p)), costs, color="tab:red", alpha=0.2)
    ax_cost.plot(np.arange(step + 1), costs[: step + 1], ".-", color="tab:red")
    ax_cost.set(xlabel="step", ylabel="cost J(a, b)", yscale="log", title=f"cost {costs[step]:.4f}")
    ax_cost.title.set_fontsize(9)
    fig.tight_layout()
    return fig


def png_image(fig, dpi: int = 64):
    """The figure as a PNG display object at a chosen resolution (small stored notebooks); closes it."""
    import io

    from IPython.display import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    _plt().close(fig)
    return Image(data=buf.getvalue(), format="png")


def descent_player(path, a_grid, b_grid, cost_ab, learning_rate=None, step=None, interval_ms=250, dpi=64):
    """A Play button and a 'step' slider over a finished descent; the plot follows the slider.

    Shown like the learning-rate explorer: the saved notebook keeps the frame at `step` as a PNG (default:
    a quarter of the way, where the path bends), and a running kernel redraws as the slider moves or plays.
    """
    import ipywidgets as widgets
    from IPython.display import display

    last = len(path) - 1
    start = last // 4 if step is None else int(step)
    play = widgets.Play(value=start, min=0, max=last, step=1, interval=interval_ms, description="play")
    slider = widgets.IntSlider(value=start, min=0, max=last, description="step", continuous_update=True)
    widgets.jslink((play, "value"), (slider, "value"))

    def draw():
        return png_image(draw_descent_frame(path, a_grid, b_grid, cost_ab, slider.value, learning_rate), dpi=dpi)

    bundle = widgets.HBox([play, slider])._repr_mimebundle_()
    bundle["text/plain"] = "[play button and step slider (they move with a running kernel)]"
    display(bundle, raw=True)
    handle = display(draw(), display_id=True)
    slider.observe(lambda _change: handle.update(draw()), names="value")
    return play, slider
