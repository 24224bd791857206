# Fine-Tuning Lab. `make lab` = set up + JupyterLab on the course; `make test` = set up + every test.
# Works from a folder whose name has spaces or '&' (recipes quote every path).
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8888
PYTEST_ARGS ?=

.PHONY: setup lab test test-unit test-notebooks test-browser bench clean-runs

setup:
	@bash tools/setup_env.sh

lab: setup
	bash tools/lab.sh --port=$(PORT)

test: setup
	bash tools/run_tests.sh $(PYTEST_ARGS)

bench: setup
	"$(PY)" bench/bench_cpu_training.py
	"$(PY)" bench/profile_cpu_step.py
	"$(PY)" bench/bench_exam.py
	"$(PY)" bench/bench_overhead.py
