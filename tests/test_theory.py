"""Unit tests for the theory notebooks' calculators, plots and quiz logic (helpers/theory.py, helpers/quiz.py)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pytest

from helpers import quiz, theory


def test_weight_memory_of_1_5b_params_is_5_59_gib():
    assert round(theory.param_memory_gib(1.5e9, 4), 2) == 5.59
    assert round(theory.param_memory_gib(1.5e9, 2), 2) == 2.79


def test_training_memory_range_is_39_to_45_gib():
    assert round(theory.training_memory_gib(1.5e9, 4, 7), 1) == 39.1
    assert round(theory.training_memory_gib(1.5e9, 4, 8), 1) == 44.7


def test_corrected_training_time_is_about_5_3_years():
    days = theory.training_days(200e9, 1200)
    assert round(days) == 1929
    assert round(theory.years(days), 1) == 5.3


def test_lesson_formula_gives_under_a_day_not_ten():
    assert round(theory.lesson_formula_days(200e9, 2000, 1200), 2) == 0.96


def test_throughput_needed_for_ten_days():
    needed = theory.throughput_for_days(200e9, 10)
    assert round(needed) == 231_481
    assert theory.training_days(200e9, needed) == pytest.approx(10)


def test_training_cost():
    assert theory.training_cost(100, 240) == 24_000


def test_lesson_lora_table():
    full, lora = theory.full_params(1024, 1024), theory.lora_params(1024, 1024, 8)
    assert (full, lora) == (1_048_576, 16_384)
    assert round(theory.saving_percent(full, lora), 2) == 98.44


def test_qwen_shapes_and_lora_count():
    q = theory.QWEN25_1_5B
    assert q.head_dim == 128
    layers = q.linear_layers()
    assert layers["q_proj"] == (1536, 1536) and layers["k_proj"] == (1536, 256)
    assert layers["gate_proj"] == (1536, 8960) and layers["down_proj"] == (8960, 1536)
    assert q.lora_params(8) == 9_232_384


def test_smollm_lora_count_matches_peft():
    # 2,442,240 is what peft's get_nb_trainable_parameters() reports for r=8, all-linear (notebook 02 checks live)
    s = theory.SMOLLM2_135M
    assert s.head_dim == 64
    assert s.linear_layers()["k_proj"] == (576, 192)
    assert s.lora_params(8) == 2_442_240
    assert s.lora_params(16) == 2 * s.lora_params(8)


def test_quiz_single_choice():
    q = quiz.LORA_WRONG
    assert not q.multiple
    assert quiz.check(q, "B")[0]
    assert quiz.check(q, "b")[0]
    ok, text = quiz.check(q, "A")
    assert not ok and "A" in text
    assert quiz.check(q, "")[1] == "Pick an answer first."


def test_quiz_multiple_choice_needs_exactly_b_and_d():
    q = quiz.VAL_LOSS_RISING
    assert q.multiple
    assert quiz.check(q, ["B", "D"])[0]
    assert quiz.check(q, "DB")[0]
    assert not quiz.check(q, ["B"])[0]
    assert not quiz.check(q, ["A", "B", "D"])[0]


def test_quiz_static_fallback_hides_answer_in_details():
    html = quiz.static_html(quiz.VAL_LOSS_RISING)
    assert "<details>" in html and "Answer: <b>BD</b>" in html


def test_quiz_widget_bundle_has_widget_and_html():
    bundle = quiz.quiz_widget(quiz.LORA_WRONG)._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/html"] == quiz.static_html(quiz.LORA_WRONG)


@pytest.mark.parametrize("state", ["failed", "underfitting", "overfitting", "converged"])
def test_synthetic_curves_have_the_state_shape(state):
    train, val = theory.synthetic_curves(state)
    if state == "failed":
        assert train[-1] >= train[0]
    elif state == "overfitting":
        assert train[-1] < train[0] and val[-1] > val.min() + 0.3
    else:
        assert train[-1] < train[0] and val[-1] < val[0]


def _cost(a):
    a = np.asarray(a, dtype=float)
    return (a - 2) ** 2


def test_plot_helpers_return_figures():
    grid = np.linspace(-3, 7, 50)
    path = [-3.0, 0.0, 1.5, 2.0]
    figs = [
        theory.plot_cost_curve(grid, _cost(grid), a_best=2.0),
        theory.plot_paths(grid, _cost, {"a": path, "b": path}, ylim=(0, 10)),
        theory.plot_contour(np.linspace(-1, 3, 20), np.linspace(-1, 3, 20), lambda A, B: (A - 1) ** 2 + (B - 2) ** 2,
                            {"path": [(0, 0), (0.5, 1), (1, 2)]}, arrows=True),
        theory.plot_train_val([1, 2, 3], [3, 2, 1], [3, 2, 2.5], best_step=2, stop_step=3),
        theory.plot_fits([0, 1], [0, 1], [0.5], [0.5], np.linspace(0, 1, 5), {"fit": np.linspace(0, 1, 5)}),
        theory.plot_training_states(),
        theory.plot_singular_values([3, 2, 0.1]),
        theory.plot_loss_histories({"r1": [1, 0.5], "r2": [1, 0.1]}),
    ]
    for fig in figs:
        assert isinstance(fig, matplotlib.figure.Figure)
        plt.close(fig)


def test_learning_rate_explorer_redraws_on_slider_change(monkeypatch):
    shown = []

    class Handle:
        def update(self, obj):
            shown.append(obj)

    def fake_display(obj, display_id=False, raw=False):
        shown.append(obj)
        return Handle() if display_id else None

    monkeypatch.setattr("IPython.display.display", fake_display)
    grid = np.linspace(-3, 7, 50)
    lr, steps = theory.learning_rate_explorer(lambda eta, n: [-3.0] * (n + 1), grid, _cost)
    assert lr.description == "learning rate"
    n_before = len(shown)
    lr.value = 1.0
    assert len(shown) == n_before + 1 and isinstance(shown[-1], matplotlib.figure.Figure)
    steps.value = 3
    assert len(shown) == n_before + 2
