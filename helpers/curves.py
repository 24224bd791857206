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


def draw(ax, train, evals, title: str = "", label: str = "", color=None) -> None:
    if train:
        ax.plot(*zip(*train), "-", color=color, lw=1.6, label=f"{label} train loss".strip())
    if evals:
        ax.plot(*zip(*evals), "o--", color=color or "C1", lw=1.2, ms=4, label=f"{label} eval loss".strip())
    ax.set_xlabel("training step")
    ax.set_ylabel("loss")
    if title:
        ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    if train or evals:
        ax.legend(fontsize=8)


class LiveCurves:
    """A figure updated in place while swift trains: `display(fig, display_id=True)` then `handle.update(fig)`.

    JupyterLab shows every update; the saved notebook keeps the last PNG; outside Jupyter nothing is drawn.
    """

    def __init__(self, title: str):
        self.title = title
        self.fig, self.ax = plt.subplots(figsize=(7, 3.6))
        self.handle = None
        self.points = 0
        if _in_notebook():
            from IPython.display import display

            draw(self.ax, [], [], title)
            self.handle = display(self.fig, display_id=True)

    def update(self, train, evals, subtitle: str = "") -> None:
        n = len(train) + len(evals)
        if n == self.points:
            return
        self.points = n
        self.ax.clear()
        draw(self.ax, train, evals, f"{self.title}\n{subtitle}" if subtitle else self.title)
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


def overlay(curves: list[dict], title: str = "All experiments"):
    """One chart for many runs: `curves` items have label, train, eval, state. Returns the figure."""
    fig, ax = plt.subplots(figsize=(8, 4.2))
    for i, c in enumerate(curves):
        color = f"C{i}"
        if c["train"]:
            ax.plot(*zip(*c["train"]), "-", color=color, lw=1.4, label=f"{c['label']} — train ({c['state']})")
        if c["eval"]:
            ax.plot(*zip(*c["eval"]), "o--", color=color, lw=1, ms=3, label=f"{c['label']} — eval")
    ax.set_yscale("log")
    ax.set_xlabel("training step")
    ax.set_ylabel("loss (log scale)")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig
