#!/usr/bin/env bash
# Rehearse set-up on a PAI DSW image's Python side, for real, on this machine (maintainers; not in `make test`:
# it downloads a few GB of torch and CUDA libraries).
#
#   tools/dsw_rehearsal.sh lesson   # the lesson's image: Python 3.10.13, CUDA torch 2.4.0 (+ torchvision 0.19.0)
#   tools/dsw_rehearsal.sh today    # today's image:      Python 3.12,    CUDA torch 2.10.0 (+ torchvision 0.25.0)
#
# 1. "The image": a copy of pyenv's interpreter (a real Python install, not a venv, so that a venv made from it
#    with --system-site-packages sees its packages as on DSW), with the image's torch and torchvision from PyPI
#    (PyPI's torch wheels are CUDA builds; they also run on a CPU).
# 2. A copy of this course (the working tree, without .venv, .cache or output) and `PYTHON=<image python> make setup`.
# 3. Notebook 03 on the ci track with papermill, one exam of the embedded model, and `python -m helpers check`.
# Every step is timed; the last lines are the summary. The work folder is kept for inspection (several GB).
set -eu
image="${1:-}"
case "$image" in
  lesson) pyver=3.10.13; torch=2.4.0; vision=0.19.0 ;;
  today) pyver=3.12.1; torch=2.10.0; vision=0.25.0 ;;
  *) echo "usage: $0 lesson|today" >&2; exit 2 ;;
esac
here="$(cd "$(dirname "$0")/.." && pwd)"
prefix="$(pyenv prefix "$pyver" 2>/dev/null)" || { echo "no Python $pyver from pyenv here (pyenv install $pyver)" >&2; exit 2; }
work="$(mktemp -d "${TMPDIR:-/tmp}/ftlab-dsw-$image.XXXXXX")"
log="$work/rehearsal.log"
summary=()
t() { date +%s; }
note() { summary+=("$1"); echo "### $1" | tee -a "$log"; }

echo "work folder: $work (log: $log)"
s=$(t)
cp -a "$prefix" "$work/image"
py="$work/image/bin/python${pyver%.*}"
"$py" -m pip install -q "torch==$torch" "torchvision==$vision" >>"$log" 2>&1
note "image ($image): Python $("$py" -c 'import platform; print(platform.python_version())'), torch $("$py" -c 'import torch; print(torch.__version__, "CUDA", torch.version.cuda)') built in $(( $(t) - s )) s"

mkdir "$work/course"
(cd "$here" && git ls-files -co --exclude-standard -z | xargs -0 tar -cf - ) | tar -xf - -C "$work/course"
cd "$work/course"
# the rehearsal's set-up registers the course kernel in a Jupyter data folder of its own (the user's stays as it is)
export JUPYTER_DATA_DIR="$work/jupyter-data"

s=$(t)
if PYTHON="$py" make setup >>"$log" 2>&1; then
  note "make setup: ok in $(( $(t) - s )) s"
else
  note "make setup: FAILED after $(( $(t) - s )) s (see $log)"; printf '%s\n' "${summary[@]}"; exit 1
fi
grep -E "^(Python|==>|    done)" "$log" | sed 's/^/    /' || true
.venv/bin/python -m helpers check > "$work/check.txt" 2>&1 || true
note "check_environment: $(grep -E '^torch ' "$work/check.txt" | sed 's/  */ /g')"

s=$(t)
mkdir -p output
if FTLAB_TRACK=ci .venv/bin/papermill notebooks/03_fine_tuning_lab.ipynb output/lab-ci.ipynb -p track ci \
    --cwd notebooks >>"$log" 2>&1; then
  note "notebook 03, ci track: ok in $(( $(t) - s )) s"
else
  note "notebook 03, ci track: FAILED after $(( $(t) - s )) s (see $log)"
fi

s=$(t)
if .venv/bin/python -m helpers exam --model .cache/models/SmolLM2-135M-Instruct --data resources/2_7/test.jsonl \
    --out output/rehearsal-exam.json --max_new_tokens 64 >"$work/exam.txt" 2>>"$log"; then
  note "exam: $(tail -1 "$work/exam.txt")"
else
  note "exam: FAILED (see $log)"
fi
echo
echo "summary ($image image, $(date -u +%Y-%m-%d), $(nproc) cores):"
printf '  %s\n' "${summary[@]}"
