#!/usr/bin/env bash
# JupyterLab on the course as a learner meets it (what `make lab` runs; the browser test starts it the same way):
# the file browser shows the three notebooks (root notebooks/, the maintainers' src/ hidden) with their whole
# names, notebook 01 opens first, and no news or update prompt asks anything (tools/jupyterlab/overrides.json).
# hide_globs is jupyter_server's default list plus src. Extra arguments go to jupyter lab.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${FTLAB_PYTHON:-.venv/bin/python}"
root_flag=()
if [ "$(id -u)" = 0 ]; then root_flag=(--allow-root); fi
exec "$python" -m jupyter lab --ServerApp.root_dir=notebooks \
  --LabApp.default_url=/lab/tree/01_how_models_learn.ipynb \
  --LabApp.app_settings_dir=tools/jupyterlab \
  "--ContentsManager.hide_globs=['src', '__pycache__', '*.pyc', '*.pyo', '.DS_Store', '*~']" \
  ${root_flag[@]+"${root_flag[@]}"} "$@"
