"""Loss curves: one live figure per run (kept as a PNG in the saved notebook) and an overlay of many runs."""

from __future__ import annotations

import time

import matplotlib

if not matplotlib.get_backend().lower().startswith(("module://matplotlib_inline", "module://ipympl")):
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython

        return get_ipython() is not None and "IPKernelApp" in get_ipython().config
    except ImportError:
        return False


def log_loss_axis(ax, values) -> None:
    """Loss on a log scale when every value is positive: the small late changes of a long run stay visible
    (on a linear axis the tail of an underfitting run looks flat). Tick labels are plain numbers (0.05, 0.1, 1)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    if not values or min(values) <= 0:
        ax.set_ylabel("loss")
        return
    ax.set_yscale("log")
    ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_ylabel("loss (log scale)")


def lr_points(lr) -> list:
    """The points a log axis can draw: the schedule's last step, at exactly 0, is left out."""
    return [(s, v) for s, v in lr or () if v and v > 0]


def draw_lr(ax, lr) -> None:
    """The learning rate swift used at each logged step (its schedule lowers it as training goes on), on a log
    scale so that 0.1 and 5e-5 fit one panel."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    lr = lr_points(lr)
    if lr:
        ax.plot(*zip(*lr), "-", color="0.35", lw=1.2)
        ax.set_yscale("log")
        ax.yaxis.set_major_locator(LogLocator(numticks=4))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.0e}".replace("e-0", "e-")))
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_ylabel("learning\nrate", fontsize=8)
    ax.set_xlabel("training step")
    ax.tick_params(labelsize=7)
    ax.grid(alpha=0.3)


def figure(size=(7, 4.4), managed: bool = True):
    """A loss panel above a narrow learning-rate panel, sharing the step axis. `managed=False` makes a figure
    pyplot does not know (nothing to close, safe to draw from a background thread)."""
    if managed:
        fig = plt.figure(figsize=size)
    else:
        from matplotlib.figure import Figure

        fig = Figure(figsize=size)
    ax, lr_ax = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    return fig, ax, lr_ax


def png(fig, dpi: int = 80) -> bytes:
    """The figure as PNG bytes (an ipywidgets Image's value)."""
    import io

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    return buf.getvalue()


def draw(ax, train, evals, title: str = "", label: str = "", color=None) -> None:
    if train:
        ax.plot(*zip(*train), "-", color=color, lw=1.6, label=f"{label} train loss".strip())
    if evals:
        ax.plot(*zip(*evals), "o--", color=color or "C1", lw=1.2, ms=4, label=f"{label} eval loss".strip())
    log_loss_axis(ax, [v for _, v in [*train, *evals] if v == v])
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3, which="major")
    if train or evals:
        ax.legend(fontsize=8)


class LiveCurves:
    """A figure updated in place while swift trains: `display(fig, display_id=True)` then `handle.update(fig)`.

    JupyterLab shows every update; the saved notebook keeps the last PNG; outside Jupyter nothing is drawn.
    """

    def __init__(self, title: str):
        self.title = title
        self.fig, self.ax, self.lr_ax = figure()
        self.handle = None
        self.points = 0
        if _in_notebook():
            from IPython.display import display

            draw(self.ax, [], [], title)
            draw_lr(self.lr_ax, [])
            self.handle = display(self.fig, display_id=True)

    def update(self, train, evals, subtitle: str = "", lr=()) -> None:
        n = len(train) + len(evals)
        if n == self.points:
            return
        self.points = n
        self.ax.clear()
        self.lr_ax.clear()
        draw(self.ax, train, evals, f"{self.title}\n{subtitle}" if subtitle else self.title)
        draw_lr(self.lr_ax, list(lr))
        self.fig.tight_layout()
        if self.handle is not None:
            self.handle.update(self.fig)

    def close(self) -> None:
        plt.close(self.fig)


class Progress:
    """tqdm's progress line, updated in place: in Jupyter through a display handle, so the saved notebook
    keeps the last (finished) line and no half-drawn widget; in a terminal as a normal tqdm bar."""

    def __init__(self, desc: str, total: int | None = None, unit: str = "step", disable: bool = False):
        from tqdm.auto import tqdm as auto_tqdm
        from tqdm.std import tqdm

        self.desc, self.total, self.unit, self.n = desc, total, unit, 0
        self.t0 = time.time()
        self.handle = self.bar = None
        if disable:
            return
        if _in_notebook():
            from IPython.display import display

            self._format = tqdm.format_meter
            self.handle = display({"text/plain": self._line()}, raw=True, display_id=True)
        else:
            self.bar = auto_tqdm(total=total, desc=desc, unit=unit)

    def _line(self) -> str:
        return self._format(self.n, self.total, time.time() - self.t0, prefix=self.desc, unit=self.unit, ncols=80)

    def update(self, n: int, total: int | None = None) -> None:
        """Move to `n` done (of `total`, when it becomes known)."""
        if n == self.n and (total is None or total == self.total):
            return
        self.n, self.total = n, total or self.total
        if self.bar is not None:
            if self.bar.total != self.total:
                self.bar.total = self.total
            self.bar.update(n - self.bar.n)
        elif self.handle is not None:
            self.handle.update({"text/plain": self._line()}, raw=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.handle is not None:
            self.handle.update({"text/plain": self._line()}, raw=True)


MARKERS = "os^Dvx<>"


def overlay(curves: list[dict], title: str = "All experiments", managed: bool = True):
    """One chart for many runs: `curves` items have label, train, eval, state, and optionally lr and from_step
    (a run that continued another is drawn from the step it took over, so the run it continued stays visible).
    Each run has its own colour and eval marker. Returns the figure (`managed`: as in figure())."""
    fig, ax, lr_ax = figure((8, 5.2), managed)
    values, lrs = [], []
    for i, c in enumerate(curves):
        color, start = f"C{i}", c.get("from_step") or 0
        train = [p for p in c["train"] if p[0] >= start]
        evals = [p for p in c["eval"] if p[0] >= start]
        values += [v for _, v in [*train, *evals] if v == v]
        if train:
            ax.plot(*zip(*train), "-", color=color, lw=1.4, label=f"{c['label']} — train ({c['state']})")
        if evals:
            ax.plot(*zip(*evals), f"{MARKERS[i % len(MARKERS)]}--", color=color, lw=1, ms=4,
                    label=f"{c['label']} — eval")
        lr = [p for p in lr_points(c.get("lr")) if p[0] >= start]
        lrs += lr
        if lr:
            lr_ax.plot(*zip(*lr), "-", color=color, lw=1.2)
    log_loss_axis(ax, values)
    ax.set_title(title)
    ax.grid(alpha=0.3, which="major")
    ax.legend(fontsize=7, loc="upper right", ncol=2)
    draw_lr(lr_ax, [])
    if lrs:
        lr_ax.set_yscale("log")
    fig.tight_layout()
    return fig
