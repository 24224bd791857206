"""The playground: the lesson's knobs as widgets and a Train button, for a class or for one more experiment.

- The knobs are the lesson's five: learning rate, LoRA rank, epochs, training rows, batch size. Everything else
  (max length, validation rows, this track's speed flags) comes from this track's experiment 2, a fresh run.
- Before a run starts the widget says how long it will take here: seconds per training row as an earlier run of
  this notebook measured them (`RowPace`), times the rows the knobs ask for, plus the evaluations and swift's
  start-up. The LoRA rank is left out of it: on this model it changes a step's time by a few per cent.
- Train starts `sft(..., wait=False)`; a background thread follows the log (`training.watch`), redraws the live
  curve in the widget and, when the run ends, shows its diagnosis card and the new run overlaid on the earlier
  ones. The notebook stays free meanwhile; Stop ends the run's whole process tree and keeps its log.
- A saved notebook (GitHub, no kernel) shows the widget's static picture: the overlay of the earlier runs.
"""

from __future__ import annotations

import base64
import html
import math
import threading
from dataclasses import dataclass

from . import curves, data, history, process, swift_runner, tracks, training
from .quiz import WithFallback

LEARNING_RATES = (1e-5, 3e-5, 5e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 0.1)  # the lesson's 5e-5 and 0.1 among them
RANKS = (2, 4, 8, 16, 32)
ROWS = (16, 32, 64, 100, 250, 500, 1000)  # up to 100 from train_100, more from train_1k
BATCHES = (4, 8, 16)
EVALS_PER_RUN = 5  # the playground evaluates about this many times a run (and once before the first step)
# an evaluated row costs about half a training row (a forward pass only, but in batches padded to their longest
# row): fitted on the recorded cpu-track runs of 2026-12-02, where experiments 2 and 3 give 0.59 and 0.53
EVAL_ROW_SHARE = 0.55


@dataclass
class RowPace:
    """How fast an earlier run trained here: seconds per training row (its evaluations taken out) and to start."""
    train_row_s: float
    start_s: float
    source: str  # the run that measured it

    @classmethod
    def of(cls, run) -> RowPace | None:
        """From a finished run's own summary line (swift's train_runtime); None for a run without one."""
        from .swiftlog import rows

        summary = next((r for r in rows(run.log_path) if "train_runtime" in r), None) if run.log_path.is_file() else None
        if summary is None:
            return None
        log = run.curves()
        start = log.resumed_at or 0
        steps = log.last_step - start
        evals = [e for e in log.evals if e[0] >= start and not (start and e[0] == start)]
        work = steps * run.params["batch_size"] + len(evals) * (run.params.get("val_rows") or 0) * EVAL_ROW_SHARE
        if steps <= 0 or work <= 0:
            return None
        runtime = float(summary["train_runtime"])
        start_s = max(0.0, (run.wall_time_s or runtime) - runtime)
        return cls(runtime / work, start_s, run.label)

    @classmethod
    def best(cls, items) -> RowPace | None:
        """From the earlier run that trained the most rows (the steadiest measurement)."""
        paced = [(p, r) for r in items if (p := cls.of(r)) is not None]
        if not paced:
            return None
        return max(paced, key=lambda pr: pr[1].curves().last_step * pr[1].params["batch_size"])[0]


@dataclass
class Plan:
    """One playground run: the knobs, and the steps and evaluations they make."""
    learning_rate: float
    lora_rank: int
    num_train_epochs: int
    rows: int
    batch_size: int
    val_rows: int

    @property
    def steps(self) -> int:
        return math.ceil(self.rows / self.batch_size) * self.num_train_epochs

    @property
    def eval_steps(self) -> int:
        return max(1, math.ceil(self.steps / EVALS_PER_RUN))

    @property
    def evaluations(self) -> int:
        return self.steps // self.eval_steps + 1  # and one before the first step

    def seconds(self, pace: RowPace) -> float:
        rows = self.steps * self.batch_size + self.evaluations * self.val_rows * EVAL_ROW_SHARE
        return pace.start_s + rows * pace.train_row_s

    def estimate(self, pace: RowPace | None) -> str:
        what = (f"{self.steps} steps of {self.batch_size} rows, {self.evaluations} evaluations of "
                f"{self.val_rows} rows")
        if pace is None:
            return f"{what}; no finished run here yet to time it by."
        s = self.seconds(pace)
        took = f"{s:.0f} s" if s < 90 else f"{s / 60:.0f} min"
        return (f"about {took} here: {what}, at {pace.train_row_s:.2f} s a training row as {pace.source} "
                f"measured, plus {pace.start_s:.0f} s to start swift")

    def label(self, n: int) -> str:
        return (f"play{n} lr{swift_runner.flag_text(self.learning_rate)} r{self.lora_rank} "
                f"e{self.num_train_epochs} {self.rows} rows")

    def params(self, base: dict) -> dict:
        """sft()'s keywords: the base experiment's, with the knobs and the data they name."""
        params = {k: v for k, v in base.items() if k not in ("resume_from", "lr_scheduler_kwargs")}
        dataset = "train_100" if self.rows <= 100 else "train_1k"
        size = len(data.read_rows(data.resolve_dataset(dataset)))
        params.update(learning_rate=self.learning_rate, lora_rank=self.lora_rank, num_train_epochs=self.num_train_epochs,
                      batch_size=self.batch_size, eval_steps=self.eval_steps, dataset=dataset,
                      train_rows=self.rows if self.rows < size else None,
                      logging_steps=1 if self.steps <= 100 else 5)
        return params


def _image_html(png: bytes) -> str:
    return f"<img style='max-width:100%' src='data:image/png;base64,{base64.b64encode(png).decode()}'>"


def _options(values, default, text=str) -> list:
    return [(text(v), v) for v in sorted({*values, default})]


class Playground:
    """The widget and its runs: `.runs` are the playground's own, `.earlier` the runs it overlays them on."""

    def __init__(self, model, earlier, track: str | None = None):
        import ipywidgets as w

        self.model, self.earlier, self.runs = model, list(earlier), []
        self.base = dict(tracks.experiments(track)[1].params)  # experiment 2: a fresh run on this track
        self.pace = RowPace.best(self.earlier)
        self.run = None
        b = self.base
        default_rows = b.get("train_rows") or len(data.read_rows(data.resolve_dataset(b["dataset"])))
        style = {"description_width": "120px"}
        self.learning_rate = w.Dropdown(options=_options(LEARNING_RATES, b["learning_rate"], swift_runner.flag_text),
                                        value=b["learning_rate"], description="learning rate", style=style)
        self.lora_rank = w.Dropdown(options=_options(RANKS, b["lora_rank"]), value=b["lora_rank"],
                                    description="LoRA rank", style=style)
        self.epochs = w.BoundedIntText(value=int(b["num_train_epochs"]), min=1, max=50, description="epochs",
                                       style=style)
        self.rows = w.Dropdown(options=_options(ROWS, default_rows), value=default_rows, description="training rows",
                               style=style)
        self.batch = w.Dropdown(options=_options(BATCHES, b["batch_size"]), value=b["batch_size"],
                                description="batch size", style=style)
        self.estimate = w.HTML()
        self.train_button = w.Button(description="Train", button_style="primary", icon="play")
        self.stop_button = w.Button(description="Stop", icon="stop", disabled=True)
        self.status = w.HTML("<i>Pick the knobs and press Train.</i>")
        first = curves.png(self._overlay_figure())
        self.picture = w.Image(value=first, format="png", layout=w.Layout(max_width="100%"))
        self.caption = w.HTML(self._caption())
        self.card = w.HTML()
        for knob in self.knobs:
            knob.observe(lambda _: self._show_estimate(), names="value")
        self.train_button.on_click(lambda _: self.train())
        self.stop_button.on_click(lambda _: self.stop())
        self._show_estimate()
        fallback = (f"<p><b>Playground</b> (a stored picture: the runs so far). {html.escape(self.plan().estimate(self.pace))}."
                    "</p>" + _image_html(first) + "<p><i>With a running kernel (JupyterLab) the knobs and a Train "
                    "button appear here.</i></p>")
        self.widget = WithFallback(
            [w.HBox([w.VBox(self.knobs[:3]), w.VBox(self.knobs[3:])]), self.estimate,
             w.HBox([self.train_button, self.stop_button]), self.status, self.picture, self.caption, self.card],
            fallback=fallback, plain="Playground: the lesson's knobs and a Train button (needs a running kernel)")
        self.widget.add_class("ftlab-playground")

    @property
    def knobs(self) -> list:
        return [self.learning_rate, self.lora_rank, self.epochs, self.rows, self.batch]

    def plan(self) -> Plan:
        return Plan(self.learning_rate.value, self.lora_rank.value, int(self.epochs.value), self.rows.value,
                    self.batch.value, self.base.get("val_rows") or 0)

    def _show_estimate(self) -> None:
        self.estimate.value = f"<p class='ftlab-estimate'>Time: {html.escape(self.plan().estimate(self.pace))}</p>"

    def _overlay_figure(self):
        items = history.overlay_items(self.earlier + self.runs)
        return curves.overlay(items, "The runs so far" + (" and the playground's" if self.runs else ""), managed=False)

    def _caption(self) -> str:
        names = [r.label for r in self.earlier + self.runs]
        return f"<p class='ftlab-overlay-runs'>On the chart: {html.escape(', '.join(names)) or 'no runs yet'}</p>"

    def train(self):
        """Start a run with the knobs as they are; returns it (None when it could not start, the reason shown)."""
        plan = self.plan()
        try:
            run = training.sft(self.model, **plan.params(self.base), label=plan.label(len(self.runs) + 1),
                               wait=False, show=False)
        except Exception as e:  # noqa: BLE001 - a Busy lock or a bad knob: said in the widget, nothing started
            self.status.value = f"<p style='color:#b00'>Not started: {html.escape(str(e))}</p>"
            return None
        self.run = run
        self.train_button.disabled, self.stop_button.disabled = True, False
        self.card.value = ""
        self.status.value = f"<p>Training <b>{html.escape(run.label)}</b> — the notebook stays free meanwhile.</p>"
        self._thread = threading.Thread(target=self._follow, args=(run, run.child), daemon=True)
        self._thread.start()
        return run

    def _live(self, run, log) -> None:
        fig, ax, lr_ax = curves.figure(managed=False)
        curves.draw(ax, log.train, log.evals, f"{run.label} (live)")
        curves.draw_lr(lr_ax, log.learning_rate)
        fig.tight_layout()
        self.picture.value = curves.png(fig)
        last = f"step {log.last_step}" + (f" of {log.max_steps}" if log.max_steps else "")
        self.status.value = (f"<p>Training <b>{html.escape(run.label)}</b>: {last}"
                             + (f", eval loss {log.evals[-1][1]:.3f}" if log.evals else "") + "</p>")

    def _follow(self, run, child) -> None:
        try:
            training.watch(run, child, show=False, on_update=self._live)
            if run.status == "failed":
                self.status.value = (f"<p style='color:#b00'>swift failed (exit code {run.returncode}): "
                                     f"{html.escape(run.error or '')}</p>")
            else:
                self.runs.append(run)
                self.status.value = (f"<p>{html.escape(run.label)}: {html.escape(run.status_text)}, "
                                     f"{run.wall_time_s:.0f} s.</p>")
                self.card.value = run.diagnosis._repr_html_()
            self.picture.value = curves.png(self._overlay_figure())
            self.caption.value = self._caption()
        except Exception as e:  # noqa: BLE001 - a thread's error would be lost: show it
            self.status.value = f"<p style='color:#b00'>{html.escape(type(e).__name__)}: {html.escape(str(e))}</p>"
        finally:
            self.train_button.disabled, self.stop_button.disabled = False, True

    def stop(self) -> None:
        if self.run is not None and self.run.live:
            why = "Stop pressed in the playground"
            process.note_stopped(self.run.run_dir, why)  # so the thread that follows it records why, not a failure
            training.stop(self.run, why=why)

    def wait(self) -> None:
        """Block until the run the playground started has ended and been drawn (tests, scripts)."""
        thread = getattr(self, "_thread", None)
        if thread is not None:
            thread.join()


def playground(model, earlier=(), track: str | None = None) -> Playground:
    """Display the playground: the lesson's knobs, a time estimate, Train/Stop, live curves and an overlay of each
    new run on `earlier` (e.g. the five experiments' runs). Returns it; `.runs` holds the runs it trained."""
    from IPython.display import display

    pg = Playground(model, earlier, track)
    display(pg.widget)
    return pg
