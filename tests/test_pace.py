"""The lab's time on this machine: a measured step, scaled timed runs, the fp32 switch, the row a learner sees."""

import pytest

from helpers import environment, pace, tracks

RUN = {"date": "2026-12-01", "wall_time_s": 1000.0, "training_s": 800.0, "other_s": 200.0,
       "pace": {"mode": "fp32", "train_step_s": 4.0, "forward_s": 1.0, "threads": 2}}


def test_a_real_step_is_measured_once_per_kernel(monkeypatch):
    import statistics
    import time
    import types

    clock = []  # every reading of the clock measure() takes: the forward pass, then each training step on its own
    monkeypatch.setattr(pace, "time", types.SimpleNamespace(perf_counter=lambda: clock.append(time.perf_counter()) or clock[-1]))
    pace._measured.pop("fp32", None)  # measured here, and kept for the tests after this one
    first = pace.measure(False)
    assert first.mode == "fp32" and first.threads >= 1
    assert 0 < first.forward_s < first.train_step_s  # a forward pass is a fraction of a training step
    assert len(clock) == 2 + 2 * 3 and first.forward_s == clock[1] - clock[0]
    steps = [b - a for a, b in zip(clock[2::2], clock[3::2])]
    assert first.train_step_s == statistics.median(steps)  # one slow step on a shared host does not set the pace
    assert pace.measure(False) is first  # a learner re-running the cell does not wait again


def test_the_estimate_scales_training_and_the_rest_by_their_own_measured_rate(monkeypatch):
    here = pace.Pace("fp32", train_step_s=8.0, forward_s=1.5, threads=2)
    monkeypatch.setattr(pace, "measure", lambda bf16: here)
    est = pace.estimate(False, runs=[RUN])
    assert est.seconds == pytest.approx(800 * 8 / 4 + 200 * 1.5 / 1)  # 1600 + 300
    assert "about 32 min" in str(est) and "timed fp32 run of 2026-12-01" in str(est)
    bf16 = dict(RUN, pace={**RUN["pace"], "mode": "bf16", "train_step_s": 2.0}, date="2026-11-30")
    assert "2026-12-01" in pace.estimate(False, runs=[RUN, bf16]).basis  # the same mode wins over a newer other one
    assert "bf16 run of 2026-11-30" in pace.estimate(False, runs=[bf16]).basis  # else the other mode is scaled


def test_the_estimate_scales_a_run_of_todays_lab_not_of_a_shorter_earlier_one(monkeypatch):
    """Experiment 6 made the lab longer: a fp32 run timed with five experiments would undershoot, so a run of
    the six-experiment lab is scaled, even from the other mode."""
    here = pace.Pace("fp32", train_step_s=8.0, forward_s=1.5, threads=2)
    monkeypatch.setattr(pace, "measure", lambda bf16: here)
    six = dict(RUN, date="2026-12-02", training_s=1200.0, experiments=6,
               pace={**RUN["pace"], "mode": "bf16", "train_step_s": 2.0})
    est = pace.estimate(False, runs=[RUN, six])
    assert "bf16 run of 2026-12-02 (6 experiments)" in est.basis
    assert est.seconds == pytest.approx(1200 * 8 / 2 + 200 * 1.5 / 1)
    assert "(5 experiments)" in pace.estimate(False, runs=[RUN]).basis  # a run that does not say had five
    assert all(pace.experiments(r) >= 5 for r in pace.timings())  # the kept timings say or are five-experiment runs
    assert pace.experiments(pace.timings()[-1]) == len(list((pace.paths.RECORDINGS_DIR / "cpu").glob("exp[0-9]*")))


def test_without_a_timed_run_the_recorded_notebook_run_is_scaled(monkeypatch):
    here = pace.Pace("fp32", train_step_s=5.2, forward_s=1.0, threads=2)
    monkeypatch.setattr(pace, "measure", lambda bf16: here)
    rec = pace.recorded_run()
    assert rec["wall_time_s"] > 600 and 1 < rec["swift_step_s"] < 10  # the stored cpu-track recording
    est = pace.estimate(False, runs=[])
    assert est.seconds == pytest.approx(rec["wall_time_s"] * 5.2 / rec["swift_step_s"])
    assert "recorded run of" in est.basis


def test_fp32_switch_takes_the_path_of_a_cpu_without_native_bf16(monkeypatch):
    monkeypatch.setenv("FTLAB_CPU_BF16", "0")
    native, why = environment.cpu_bf16()
    assert not native and "FTLAB_CPU_BF16=0" in why
    flags = tracks.cpu_speed_flags()
    assert "bf16" not in flags and "external_plugins" not in flags and flags["lora_dropout"] == 0.0
    monkeypatch.setenv("FTLAB_CPU_BF16", "yes")
    with pytest.raises(ValueError, match="use 0"):
        environment.cpu_bf16()


def test_bf16_only_with_amx_the_matrix_units_that_make_it_pay():
    assert environment.cpu_bf16_of({"avx512f", "amx_bf16", "amx_tile", "avx512_bf16"})[0]
    native, why = environment.cpu_bf16_of({"avx512f", "avx512_bf16"})  # AVX512-BF16 alone: fp32 was faster
    assert not native and "no AMX" in why
    assert not environment.cpu_bf16_of({"avx2", "fma"})[0]


def test_check_environment_prints_the_lab_estimate_on_the_cpu_track(monkeypatch):
    monkeypatch.setenv("FTLAB_TRACK", "cpu")
    monkeypatch.setattr(environment, "gpu_info", lambda: None)
    rows = dict(pace.check_environment(show=False).rows)
    assert rows["Lab estimate"].startswith("about ") and "min on this machine" in rows["Lab estimate"]
    assert "and the work it did" in rows["Lab estimate"]  # scaled by today's plan against the timed run's
    monkeypatch.setenv("FTLAB_TRACK", "ci")
    assert "Lab estimate" not in dict(pace.check_environment(show=False).rows)  # tests wait for nothing
    from helpers import check_environment

    assert check_environment is pace.check_environment  # the API's, the one notebook 03 calls


def test_the_estimate_scales_by_the_work_todays_lab_does_against_the_timed_runs(monkeypatch):
    """Issue 34 changed the lab's design: a run of the earlier design is scaled by the work each did, counted from
    the plans, and a run that says what it did is preferred to a newer one that does not."""
    here = pace.Pace("fp32", train_step_s=8.0, forward_s=1.5, threads=2)
    monkeypatch.setattr(pace, "measure", lambda bf16: here)
    done = dict(RUN, work={"cost_steps": 400.0, "exam_tokens": 50000, "train_tokens": 1})
    today = {"cost_steps": 200.0, "exam_tokens": 30000, "train_tokens": 1}
    est = pace.estimate(False, runs=[done, dict(RUN, date="2026-12-03")], work=today)
    assert est.seconds == pytest.approx(800 * 8 / 4 * 200 / 400 + 200 * 1.5 / 1 * 30000 / 50000)
    assert est.training_s == pytest.approx(800.0) and "2026-12-01" in est.basis and "the work it did" in est.basis


def test_the_lab_work_is_counted_from_the_plan_and_the_data():
    work = pace.lab_work("cpu")
    exps = {e["label"]: e for e in work["experiments"]}
    assert list(exps) == [f"exp{i}" for i in range(1, 7)]
    e4, e5, e6 = exps["exp4"], exps["exp5"], exps["exp6"]
    rows = tracks.CPU[3].get("train_rows") or len(pace.data.read_rows(pace.paths.DATA_DIR / "train_1k.jsonl"))
    batch, every = tracks.CPU[3]["batch_size"], tracks.CPU[3]["eval_steps"]
    assert e4["steps"] == -(-rows // batch) and e4["train_rows"] == rows and e4["evals"] == e4["steps"] // every + 1
    assert e5["steps"] == e4["steps"] and e5["total_steps"] == 2 * e4["steps"]  # it resumes: only its own epoch
    assert e5["evals"] == e4["evals"] - 1  # no evaluation at its start: experiment 4's last one is it
    calc_rows = tracks.CALC["cpu"].get("train_rows") or len(pace.data.read_rows(pace.paths.DATA_DIR / "train_1k_calc.jsonl"))
    assert e6["steps"] == -(-calc_rows // tracks.CALC["cpu"]["batch_size"])
    assert work["totals"]["train_tokens"] == sum(e["train_tokens"] + e["eval_tokens"] for e in work["experiments"])
    assert work["totals"]["exam_tokens"] == sum(x["questions"] * x["max_new_tokens"] for x in work["exams"])
    assert sum(pace.row_tokens("train_1k", 8)) > 8 * 50  # real rows under the chat template: tens of tokens each


def test_the_work_counter_holds_the_lab_of_2026_12_02_as_it_was():
    """bench/count_lab_work.py compares today's plan with the lab before issue 34, written out in the script: the
    cpu track still runs that plan (issue 34's shorter lab is not recorded yet), so the two counts are equal, and
    the timed run the estimate scales carries the work its own notebook did (no section 9 yet)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("count_lab_work", pace.paths.COURSE_ROOT / "bench" / "count_lab_work.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    before = bench.work(bench.BEFORE_PLAN, bench.BEFORE_EXAMS)["totals"]
    assert before["train_tokens"] > 470_000 and before["exam_tokens"] == 56_000
    now = pace.lab_work("cpu")["totals"]
    assert {k: now[k] for k in ("train_tokens", "cost_steps")} == {k: before[k] for k in ("train_tokens", "cost_steps")}
    # section 9 since issue 39: the f16 file read back by transformers (no longer the q8_0 file), llama.cpp's two
    # ways on the ten, and the q8_0 file through llama.cpp on exam_100's first 40, instead of 4 answers to each of ten
    assert now["exam_tokens"] == before["exam_tokens"] + (-4 * 10 + 2 * 10 + 2 * 10 + 40) * 112 == 60_480
    timed = [r for r in pace.timings() if r.get("work")]
    assert timed and timed[0]["work"] == bench.work(bench.BEFORE_PLAN, bench.TIMED_EXAMS)["totals"]


def test_the_budget_table_gives_each_experiment_its_minutes_here(monkeypatch):
    monkeypatch.setattr(pace, "measure", lambda bf16: pace.Pace("fp32", train_step_s=6.0, forward_s=2.0, threads=2))
    text = pace.lab_budget("cpu", bf16=False)
    lines = text.splitlines()
    titles = [title for title, _ in tracks.lab_plan("cpu", titles=True)]
    rows = [ln for ln in lines if ln.startswith(tuple(titles))]
    assert len(rows) == 6 and all(float(r.split()[-1]) > 0 for r in rows)
    est = pace.estimate(False)
    whole = next(ln for ln in lines if ln.startswith("the whole lab"))
    assert whole.split()[-1] == f"{est.seconds / 60:.0f}" and "Estimated here: about" in text
    minutes = [float(r.split()[-1]) for r in rows]
    assert sum(minutes) == pytest.approx(est.training_s / 60, abs=0.1 * len(rows))
    assert "minutes are estimated on the cpu track only" in pace.lab_budget("ci")


def test_a_mac_trains_on_its_processor_not_on_apples_gpu(monkeypatch):
    monkeypatch.setattr(tracks.sys, "platform", "darwin")
    monkeypatch.setattr(tracks.environment, "cpu_bf16", lambda: (False, "no /proc/cpuinfo"))
    assert tracks.cpu_speed_flags()["use_cpu"] is True


def test_batch_order_is_swifts_sampler_over_swifts_loaded_order():
    """Each epoch trains every row once, in the batches ms-swift's BatchSamplerShard makes from its loader's order;
    grouped by length, the same rows pad less (200 rows: transformers sorts megabatches of len // (4 x batch) = 6
    batches here; far fewer rows would barely group). bench/check_batch_order.py checks the count against
    transformers' own counter in real swift runs."""
    params = dict(dataset="train_1k", train_rows=200, batch_size=8, num_train_epochs=2, eval_steps=5, val_rows=4)
    order = pace.swift_load_order("train_1k", 200)
    assert sorted(order) == list(range(200)) and order != list(range(200))  # swift's loader shuffles the file once
    steps = pace.batch_order(params)
    assert len(steps) == 50 and all(len(b) == 8 for b in steps)
    for epoch in (steps[:25], steps[25:]):
        assert sorted(i for b in epoch for i in b) == list(range(200))
    assert steps[:25] != steps[25:]  # a new permutation each epoch (data_seed + epoch)
    assert pace.batch_order(params) == steps  # seeded: the same every time
    lengths = pace.swift_lengths("train_1k", 200)
    random_, grouped = pace.computed_work(params), pace.computed_work(dict(params, group_by_length=True))
    assert random_["train_real"] == grouped["train_real"] == 2 * sum(lengths)
    assert random_["train_computed"] == sum(8 * max(lengths[i] for i in b) for b in steps)
    assert grouped["train_real"] <= grouped["train_computed"] < random_["train_computed"]
    assert random_["eval_computed"] == grouped["eval_computed"]  # evaluations stay ungrouped
    resumed = pace.computed_work(params, done_steps=25)
    assert resumed["train_real"] == sum(lengths)  # a resumed run counts only its own steps
