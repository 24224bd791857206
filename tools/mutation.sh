#!/usr/bin/env bash
# Mutation testing of the pure rules (issue 21), in a throw-away copy of the committed tree so that mutmut's
# mutants/ folder and config never touch the checkout:
#   bash tools/mutation.sh helpers/diagnosis.py "tests/test_diagnosis.py tests/test_recordings.py"
#   bash tools/mutation.sh helpers/scoring.py "tests/test_scoring_rules.py tests/test_exam.py --timeout=60 \
#     --deselect=tests/test_exam.py::test_tiny_real_exam_batched_equals_one_by_one ..."
#   bash tools/mutation.sh helpers/data.py "tests/test_data.py tests/test_data_rules.py tests/test_edge_files.py \
#     tests/test_problems.py tests/test_swift_commands.py --timeout=60 \
#     --deselect=<test_edge_files' two tests that train>"
#   (the scoring run leaves out test_exam's tests that load the model: a mutant that breaks score_responses makes
#   them run for minutes; --timeout stops any that still hang. The pure rules keep all their tests.)
# Prints killed / survived per function from mutmut's own results. mutmut (3.x) is a maintainer's tool, not a
# course requirement: it is installed into .venv on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
source_path=$1; tests=$2
.venv/bin/python -m pip show mutmut >/dev/null 2>&1 || .venv/bin/python -m pip install -q "mutmut>=3.8,<4"
work=$(mktemp -d)
git archive HEAD | tar -x -C "$work"
ln -s "$PWD/.venv" "$work/.venv"; ln -s "$PWD/.cache" "$work/.cache"
selection=$(printf '"%s", ' $tests)
cat >> "$work/pyproject.toml" <<TOML

[tool.mutmut]
source_paths = ["$source_path"]
pytest_add_cli_args_test_selection = [${selection%, }]
also_copy = ["resources", "tools", "tests", "notebooks", "helpers"]
TOML
cd "$work"
FTLAB_CACHE="$work/.cache" PYTHONHASHSEED=0 FTLAB_TRACK=ci MPLBACKEND=Agg .venv/bin/mutmut run --max-children "$(nproc)" > mutmut.log 2>&1 || true
.venv/bin/python - "$source_path" <<'PY'
import collections, json, re, sys
codes = json.load(open(f"mutants/{sys.argv[1]}.meta"))["exit_code_by_key"]
kind = {1: "killed", 0: "survived", 33: "no tests", None: "not run"}
total = collections.Counter(kind.get(v, "timeout/other") for v in codes.values())
print(dict(total), f"killed {total['killed'] / max(1, sum(total.values())):.1%}")
for fn, n in collections.Counter(re.sub(r"__mutmut_\d+$", "", k) for k, v in codes.items() if v == 0).most_common():
    print(f"  survived {n:3d}  {fn}")
PY
echo "mutants and log: $work"
