"""Theory notebooks (01, 02): small calculators, plots and the learning-rate widget.

The ideas themselves (gradient descent loop, LoRA module, SVD) live in the notebooks where learners read
them; this module only holds arithmetic worth unit-testing and matplotlib/ipywidgets plumbing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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


def throughput_for_days(total_tokens: float, days: float) -> float:
    """Tokens per second needed to finish `total_tokens` in `days`."""
    return total_tokens / (days * SECONDS_PER_DAY)


def training_cost(hourly_rate: float, hours: float) -> float:
    """Cost = price per hour x hours (price for the whole machine, all GPUs included)."""
    return hourly_rate * hours


# ---------------------------------------------------------------- LoRA parameter counts


def full_params(d_in: int, d_out: int) -> int:
    """Trainable numbers in a d_in -> d_out weight matrix (no bias)."""
    return d_in * d_out


def lora_params(d_in: int, d_out: int, r: int) -> int:
    """LoRA adds A (r x d_in) and B (d_out x r): r * (d_in + d_out) trainable numbers."""
    return r * (d_in + d_out)


def saving_percent(full: int, lora: int) -> float:
    return 100 * (1 - lora / full)


@dataclass(frozen=True)
class DecoderShape:
    """The shapes that decide how many LoRA parameters a Llama/Qwen-style decoder gets."""

    name: str
    hidden: int
    layers: int
    intermediate: int
    heads: int
    kv_heads: int

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    def linear_layers(self) -> dict[str, tuple[int, int]]:
        """(d_in, d_out) of every linear layer in one decoder block (what 'all-linear' targets)."""
        h, kv, i = self.hidden, self.kv_heads * self.head_dim, self.intermediate
        return {
            "q_proj": (h, h), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (h, h),
            "gate_proj": (h, i), "up_proj": (h, i), "down_proj": (i, h),
        }

    def lora_params(self, r: int = 8) -> int:
        per_block = sum(lora_params(d_in, d_out, r) for d_in, d_out in self.linear_layers().values())
        return per_block * self.layers

    def linear_params(self) -> int:
        """Numbers inside those linear layers (what full fine-tuning of them would train)."""
        return self.layers * sum(full_params(a, b) for a, b in self.linear_layers().values())


QWEN25_1_5B = DecoderShape("Qwen2.5-1.5B", hidden=1536, layers=28, intermediate=8960, heads=12, kv_heads=2)
SMOLLM2_135M = DecoderShape("SmolLM2-135M", hidden=576, layers=30, intermediate=1536, heads=9, kv_heads=3)


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


def draw_path(ax, a_grid, cost_fn, path, title, color="tab:red"):
    """A 1-D cost curve with the visited points joined by arrows."""
    ax.plot(a_grid, cost_fn(a_grid), color="tab:blue", lw=1)
    ys = [cost_fn(a) for a in path]
    ax.plot(path, ys, "o", color=color, ms=4)
    for (a0, y0), (a1, y1) in zip(zip(path, ys), zip(path[1:], ys[1:])):
        ax.annotate("", (a1, y1), (a0, y0), arrowprops={"arrowstyle": "->", "color": color, "lw": 1})
    ax.set(title=title, xlabel="a", ylabel="J(a)")


def plot_paths(a_grid, cost_fn, paths: dict, ylim=None):
    """One panel per named path, side by side."""
    plt = _plt()
    fig, axes = plt.subplots(1, len(paths), figsize=(4.2 * len(paths), 3.2), squeeze=False)
    for ax, (title, path) in zip(axes[0], paths.items()):
        draw_path(ax, a_grid, cost_fn, path, title)
        if ylim:
            ax.set_ylim(*ylim)
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
