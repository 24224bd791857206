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


def test_every_visited_point_lies_on_the_drawn_curve_even_when_the_run_diverges():
    # notebook 01's learning rate 2.4 walks out to a = 15 while the grid stops at 8
    grid = np.linspace(-4, 8, 50)
    path = [-3.0, 7.6, -4.2, 8.9, -5.7, 10.6, -7.5, 12.6, -9.7, 15.1, -12.5]
    fig, ax = plt.subplots()
    theory.draw_path(ax, grid, _cost, path, "diverging")
    curve = ax.lines[0]
    xs, ys = curve.get_xdata(), curve.get_ydata()
    assert xs.min() < min(path) and xs.max() > max(path)
    assert np.allclose(np.interp(path, xs, ys), _cost(np.array(path)), rtol=1e-3, atol=1e-2)
    plt.close(fig)


def test_plot_paths_fits_each_panel_unless_told():
    grid = np.linspace(-3, 7, 50)
    fig = theory.plot_paths(grid, _cost, {"small": [0.0, 1.0], "big": [-20.0, 20.0]})
    small, big = fig.axes
    assert big.get_ylim()[1] >= _cost(20.0) > small.get_ylim()[1]
    plt.close(fig)
    fig = theory.plot_paths(grid, _cost, {"small": [0.0, 1.0], "big": [-20.0, 20.0]}, ylim={"small": (0, 5)})
    assert fig.axes[0].get_ylim() == (0, 5)
    plt.close(fig)


def test_network_weight_shapes_match_a_torch_stack():
    import torch

    assert theory.network_weights((3, 4, 4, 2)) == [(4, 3), (4, 4), (2, 4)]
    net = torch.nn.Sequential(torch.nn.Linear(3, 4, bias=False), torch.nn.Linear(4, 4, bias=False),
                              torch.nn.Linear(4, 2, bias=False))
    assert [tuple(layer.weight.shape) for layer in net] == theory.network_weights((3, 4, 4, 2))


def test_pictures_carry_the_computed_counts():
    fig = theory.plot_network((3, 4, 4, 2))
    texts = " ".join(t.get_text() for t in fig.axes[0].texts) + fig.axes[0].get_title()
    assert "36 weights" in texts and "= 12 weights" in texts
    plt.close(fig)
    fig = theory.plot_lora(1536, 1536, 8, "q_proj")
    assert "24,576 trainable" in fig.axes[0].get_title() and "2,359,296 frozen" in fig.axes[0].get_title()
    plt.close(fig)
    counts = {"freeze": 7_080_192, "adapter": 1_141_440, "lora": 2_442_240, "prompt": 11_520}
    fig = theory.plot_peft_methods(counts, total=134_515_008)
    titles = [ax.get_title() for ax in fig.axes]
    assert any("2,442,240 numbers (1.816%)" in t for t in titles)
    assert any(t.startswith("Prompt tuning") and "11,520" in t for t in titles)
    plt.close(fig)


def _bowl(A, B):
    return (A - 1) ** 2 + 3 * (B - 2) ** 2


def test_descent_frame_shows_the_route_so_far_and_the_cost():
    path = [(0.0, 0.0), (0.5, 1.0), (0.8, 1.6), (1.0, 2.0)]
    fig = theory.draw_descent_frame(path, np.linspace(-1, 3, 30), np.linspace(-1, 3, 30), _bowl, 1, 0.1)
    ax, ax_cost = fig.axes[:2]
    assert ax.get_title().startswith("step 1: a = 0.500, b = 1.000")
    assert len(ax_cost.lines[1].get_xdata()) == 2  # steps 0 and 1 drawn bold
    plt.close(fig)


def test_descent_player_redraws_when_the_step_changes(monkeypatch):
    shown = []

    class Handle:
        def update(self, obj):
            shown.append(obj)

    def fake_display(obj, display_id=False, raw=False):
        shown.append(obj)
        return Handle() if display_id else None

    monkeypatch.setattr("IPython.display.display", fake_display)
    path = [(0.0, 0.0), (0.5, 1.0), (0.8, 1.6), (1.0, 2.0), (1.0, 2.0)]
    play, slider = theory.descent_player(path, np.linspace(-1, 3, 20), np.linspace(-1, 3, 20), _bowl)
    assert slider.description == "step" and slider.max == 4 and slider.value == 1
    from IPython.display import Image

    assert isinstance(shown[1], Image) and shown[1].data[:4] == b"\x89PNG"  # the frame a saved notebook keeps
    slider.value = 3
    assert len(shown) == 3 and isinstance(shown[-1], Image) and shown[-1].data != shown[1].data
