#!/usr/bin/env bash
# The whole test suite (what `make test` and CI run): unit + CLI + end-to-end tests, nbval on every
# notebook in the ci track, and the real-browser test. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
export FTLAB_TRACK="${FTLAB_TRACK:-ci}"
export PYTHONHASHSEED=0 MPLBACKEND=Agg
bash tools/install_browser.sh
exec .venv/bin/python -m pytest -p no:cacheprovider tests notebooks --nbval-lax \
  --nbval-sanitize-with tests/nbval_sanitize.cfg --durations=15 "$@"
