#!/usr/bin/env bash
# Confirm the gpu track on a CUDA machine without any model hub: the Qwen2 stand-in and the embedded
# SmolLM2 trained through the ci and cpu profiles on CUDA in bf16 (exam + merge of the best run), and
# the measured peak GPU memory of the lesson's batch 16 x length 512 settings against the formula
# behind check_environment()'s estimate. One summary line per check; exit 0 only if all pass.
#
#   bash tools/gpu_check.sh            (from the course folder, after `make setup`; ~5-10 min on an A10)
#
# Without CUDA it says so in one line and exits 2. Runs go to a temporary folder, not output/.
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
export FTLAB_OFFLINE=1 HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 MPLBACKEND=Agg

if [ ! -x "$PY" ]; then
  echo "FAIL setup: $PY not found. Fix: run \`make setup\` first (or PY=/path/to/python bash $0)."
  exit 2
fi
if ! "$PY" - <<'EOF'
import sys
import torch
if not torch.cuda.is_available():
    print(f"FAIL cuda: torch {torch.__version__} sees no CUDA GPU (built for CUDA {torch.version.cuda}). "
          "This check needs a GPU machine; nothing was run.")
    sys.exit(2)
print(f"PASS cuda: {torch.cuda.get_device_name(0)}, {torch.cuda.get_device_properties(0).total_memory / 2**30:.1f} GiB, "
      f"torch {torch.__version__}, bf16 supported: {torch.cuda.is_bf16_supported()}")
EOF
then
  exit 2
fi
OUT="$(mktemp -d "${TMPDIR:-/tmp}/ftlab-gpu-check.XXXXXX")"
export FTLAB_OUTPUT="$OUT/output"

"$PY" - "$OUT" <<'EOF'
import json, os, subprocess, sys, threading, time, traceback
from pathlib import Path

from helpers import environment, exams, history, merging, models, tracks, training
from helpers.paths import DATA_DIR

out = Path(sys.argv[1])
log = open(out / "details.log", "w")
results = []


def line(ok, check, detail):
    text = f"{'PASS' if ok else 'FAIL'} {check}: {detail}"
    print(text, flush=True)
    results.append(ok)


class PeakGpuMemory:
    """Whole-GPU memory in use, polled every 0.2 s with nvidia-smi (includes the CUDA context)."""

    def __enter__(self):
        self.peak, self.stop = 0.0, False
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.base = self._used()
        self.thread.start()
        return self

    def _used(self):
        try:
            text = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", "0"],
                                  capture_output=True, text=True, timeout=10).stdout
            return float(text.split()[0]) / 1024
        except (OSError, ValueError, IndexError, subprocess.TimeoutExpired):
            return 0.0

    def _poll(self):
        while not self.stop:
            self.peak = max(self.peak, self._used())
            time.sleep(0.2)

    def __exit__(self, *exc):
        self.stop = True
        self.thread.join()

    @property
    def gib(self):
        return max(0.0, self.peak - self.base)


def swift_peak(run):
    """The largest `memory(GiB)` ms-swift logged (torch's max reserved memory of the training process)."""
    best = 0.0
    for ln in run.log_path.read_text().splitlines() if run.log_path.is_file() else []:
        try:
            d = json.loads(ln)
        except ValueError:
            continue
        for k, v in d.items():
            if k.startswith("memory") and isinstance(v, (int, float, str)):
                try:
                    best = max(best, float(str(v).rstrip("GiB")))
                except ValueError:
                    pass
    return best


def estimate_gb(model, batch_size, max_length, lora_rank):
    """check_environment()'s formula (environment.lesson_memory_gb) with this model's shapes."""
    import dataclasses

    from helpers.shapes import DecoderShape

    cfg = json.loads((Path(model.path) / "config.json").read_text())
    params = sum(f.stat().st_size for f in Path(model.path).glob("*.safetensors")) / 4  # float32 files
    shape = dataclasses.replace(DecoderShape.of_config(cfg, model.name), params=params)
    return environment.lesson_memory_gb(batch_size, max_length, lora_rank, shape=shape)


def on_cuda(params):
    """A profile's parameters, in bf16 on the GPU (whatever the profile says about dtype or CPU)."""
    return {**{k: v for k, v in params.items() if k != "use_cpu"}, "torch_dtype": "bfloat16"}


def profile_check(model, profile):
    """Every experiment of `profile` on CUDA in bf16, then exam + merge of the best run."""
    name = f"{model.name} / {profile} profile"
    t0 = time.time()
    try:
        runs = []
        with PeakGpuMemory() as mem:
            for e in tracks.experiments(profile):
                runs.append(training.sft(model, **on_cuda(e.params), label=f"{profile}-exp{e.number}", show=False))
        bad = [f"{r.label}: {r.status} {r.error[-300:]}" for r in runs if r.status != "finished"]
        if bad:
            return line(False, name, "; ".join(bad))
        args = json.loads((runs[0].run_dir / "args.json").read_text())
        best = history.pick_best(runs)  # notebook 03's choice
        result = exams.exam(best, DATA_DIR / "test.jsonl", limit=2, max_new_tokens=32, save_to=False, progress=False)
        merged = merging.merge(best, show=False)
        used_gpu = mem.gib > 0 or max(swift_peak(r) for r in runs) > 0
        line(used_gpu and result.settings["device"] == "cuda" and args.get("torch_dtype") == "bfloat16", name,
             f"{len(runs)} runs finished ({', '.join(f'{r.label} {r.diagnosis.state}' for r in runs)}), "
             f"dtype {args.get('torch_dtype')}, exam on {result.settings['device']}, merged {merged.name}, "
             f"peak {mem.gib:.2f} GiB (swift: {max(swift_peak(r) for r in runs):.2f}), {time.time() - t0:.0f} s")
    except Exception as exc:  # one check failing must not hide the others
        traceback.print_exc(file=log)
        line(False, name, f"{type(exc).__name__}: {str(exc)[:300]}")


def memory_check(model):
    """The lesson's heaviest settings (batch 16, length 512, rank 8) for 20 steps, against the formula."""
    name = f"{model.name} / lesson batch 16 x 512 memory"
    try:
        e = tracks.experiments("gpu")[3]
        with PeakGpuMemory() as mem:
            run = training.sft(model, **on_cuda(e.params), label="memory", show=False, max_steps=20)
        if run.status != "finished":
            return line(False, name, f"{run.status}: {run.error[-300:]}")
        longest = max(training.data.token_lengths(model.path, training.data.read_rows(DATA_DIR / "train_1k.jsonl")))
        upper, at_data = estimate_gb(model, 16, 512, 8), estimate_gb(model, 16, longest, 8)
        peak = max(mem.gib, swift_peak(run))
        # the formula assumes every row is 512 tokens; the lesson's rows are shorter (longest: `longest`)
        line(0 < peak <= upper, name, f"measured peak {peak:.2f} GiB (nvidia-smi {mem.gib:.2f}, swift "
             f"{swift_peak(run):.2f}) vs formula {upper:.2f} GiB at length 512, {at_data:.2f} GiB at the data's "
             f"longest row ({longest} tokens); lesson estimate for Qwen2.5-1.5B: {environment.lesson_memory_gb():.1f} GiB")
    except Exception as exc:
        traceback.print_exc(file=log)
        line(False, name, f"{type(exc).__name__}: {str(exc)[:300]}")


os.environ["FTLAB_TRACK"] = "ci"
for model in (models.standin_model(), models.embedded_model()):
    for profile in ("ci", "cpu"):
        profile_check(model, profile)
    memory_check(model)
rep = environment.check_environment(show=False)
line(rep.track.name in ("ci", "gpu"), "environment report", " | ".join(f"{k}: {v}" for k, v in rep.rows[:1] + rep.rows[-1:]))
print(f"{sum(results)} of {len(results)} checks passed; runs and details in {out}")
sys.exit(0 if all(results) else 1)
EOF
