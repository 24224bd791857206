"""What machine are we on, which track fits it, and will the lesson's settings fit in GPU memory?"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from . import paths, process
from .shapes import QWEN25_1_5B
from .view import table

TRACKS = ("gpu", "cpu", "ci")
TRACK_ENV = "FTLAB_TRACK"
STANDIN_ENV = "FTLAB_LESSON_MODEL"  # =standin: the lesson model is replaced by the stand-in (rehearsals)
STANDIN_LABEL = "STAND-IN for Qwen2.5-1.5B-Instruct: same architecture, random weights, learns nothing"


def standin_requested() -> bool:
    """Does this environment rehearse the gpu track on the stand-in (FTLAB_LESSON_MODEL=standin)?"""
    value = os.environ.get(STANDIN_ENV, "").strip().lower()
    if value and value != "standin":
        raise ValueError(f"{STANDIN_ENV}={value!r}: the only substitute this course knows is 'standin'. "
                         f"Fix: unset {STANDIN_ENV} or set it to standin.")
    return value == "standin"


@dataclass
class Track:
    name: str
    reason: str


CPU_BF16_ENV = "FTLAB_CPU_BF16"  # =0: train in fp32 even where the CPU has native bf16 (as on most laptops)


def cpu_bf16() -> tuple[bool, str]:
    """Does the cpu track use bf16 here: has this processor AMX, the matrix units that compute bf16 natively?

    Returns (yes, in words). With AMX, bf16 matrix products run several times faster than fp32. AVX512-BF16
    alone is not enough: on a Xeon with AVX512-BF16 but no AMX (2026-12-02, 2 cores) a cpu-track training step
    took 8.2-8.5 s in bf16 and 4.4-5.5 s in fp32 (helpers/pace.py, measured twice each). Without native bf16
    torch emulates it, slower still. So everywhere else the cpu track stays in fp32.
    FTLAB_CPU_BF16=0 takes the fp32 path anyway (to see what a laptop without native bf16 gets).
    """
    switch = os.environ.get(CPU_BF16_ENV, "").strip()
    if switch not in ("", "0", "1"):
        raise ValueError(f"{CPU_BF16_ENV}={switch!r}: use 0 (fp32) or 1 / unset (bf16 where the CPU has it natively).")
    if switch == "0":
        return False, f"fp32: bf16 switched off by {CPU_BF16_ENV}=0 (the path of a CPU without native bf16)"
    flags: set[str] = set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    break
    except OSError:  # not Linux: no reliable check, stay in fp32
        pass
    return cpu_bf16_of(flags)


def cpu_bf16_of(flags: set[str]) -> tuple[bool, str]:
    """cpu_bf16()'s rule on a processor's flags (as /proc/cpuinfo lists them)."""
    if "amx_bf16" in flags:
        return True, "bf16: this CPU has AMX, matrix units for bf16"
    if "avx512_bf16" in flags:
        return False, "fp32: this CPU has AVX512-BF16 but no AMX, and fp32 trains faster on it than bf16"
    return False, "fp32: no native bf16 on this CPU (neither AMX nor AVX512-BF16), so fp32 is faster"


def gpu_info() -> dict | None:
    """Name and memory of CUDA device 0, or None. Never initialises CUDA when torch lacks it."""
    try:
        import torch
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    free, total = torch.cuda.mem_get_info(0)
    return {"name": torch.cuda.get_device_name(0), "free_gb": free / 2**30, "total_gb": total / 2**30,
            "count": torch.cuda.device_count()}


def gpu_memory_held(own_pids=()) -> list[tuple[int, str, int]]:
    """(pid, name, MiB) of every process holding GPU memory, from `nvidia-smi` ([] where there is none).

    A training left by a restarted kernel shows up here (about 15 GiB of an A10 for the lesson's run).
    """
    exe = shutil.which("nvidia-smi")
    if not exe:
        return []
    try:
        out = subprocess.run([exe, "--query-compute-apps=pid,process_name,used_memory", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return []
    held = []
    for line in out.stdout.splitlines() if out.returncode == 0 else []:
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 3 and parts[0].isdigit() and parts[2].isdigit() and int(parts[0]) not in own_pids:
            held.append((int(parts[0]), parts[1], int(parts[2])))
    return held


def lesson_memory_gb(batch_size: int = 16, max_length: int = 512, lora_rank: int = 8, shape=QWEN25_1_5B) -> float:
    """Rough peak GPU memory (GiB) for the lesson's LoRA run on Qwen2.5-1.5B (or another `shape`) in bf16.

    weights (2 bytes/param) + fp32 logits for the loss (batch x length x vocab x 4 bytes, twice: logits
    and their gradient) + checkpointed activations (one bf16 hidden state per layer) + one layer's
    recomputed activations + LoRA weights with Adam state (16 bytes/param) + 1 GiB CUDA context.
    """
    q = shape
    tokens = batch_size * max_length
    weights = q.params * 2
    logits = tokens * q.vocab * 4 * 2
    checkpoints = tokens * q.hidden * 2 * q.layers
    one_layer = tokens * (4 * q.hidden + 3 * q.intermediate) * 2 * 2
    lora = q.lora_params(lora_rank) * 16
    return (weights + logits + checkpoints + one_layer + lora) / 2**30 + 1.0


def detect_track() -> Track:
    forced = os.environ.get(TRACK_ENV, "").strip().lower()
    if forced:
        if forced not in TRACKS:
            raise ValueError(f"{TRACK_ENV}={forced!r} is not a track. Fix: set it to one of {', '.join(TRACKS)}.")
        return Track(forced, f"set by the environment variable {TRACK_ENV}={forced}")
    gpu = gpu_info()
    need = lesson_memory_gb()
    if gpu and gpu["total_gb"] >= need:
        return Track("gpu", f"{gpu['name']} has {gpu['total_gb']:.0f} GiB; the lesson's settings need about {need:.0f} GiB")
    if gpu:
        return Track("cpu", f"{gpu['name']} has only {gpu['total_gb']:.0f} GiB; the lesson needs about {need:.0f} GiB")
    return Track("cpu", "no CUDA GPU found: the cpu track trains the embedded SmolLM2-135M on the processor")


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def versions() -> dict:
    """What a recording notes down: Python and the four libraries that decide a run."""
    out = {"python": platform.python_version()}
    for dist in ("torch", "ms-swift", "transformers", "peft"):
        v = _version(dist)
        out[dist] = None if v == "not installed" else v
    return out


def cpu_model() -> str:
    """The processor's name ('AMD EPYC 7B13'), from /proc/cpuinfo where there is one, else what Python knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware() -> str:
    gpu = gpu_info()
    cpu = platform.processor() or platform.machine()
    return (f"{gpu['name']} ({gpu['total_gb']:.0f} GiB)" if gpu else "no GPU") + f", {os.cpu_count()} CPU cores ({cpu})"


TORCH_RECORD = ".venv/ftlab-torch.json"  # written by tools/setup_env.sh: which torch set-up chose, and why


def torch_source() -> str:
    """Which torch the course runs on and where it came from, in words (from set-up's record and torch itself)."""
    import json
    import sys

    try:
        import torch
    except ImportError:
        return "not installed (run `make setup`)"
    build = f"CUDA {torch.version.cuda} build" if torch.version.cuda else "CPU build"
    inside = Path(torch.__file__).resolve().is_relative_to(Path(sys.prefix).resolve())
    where = "in .venv" if inside else "the system's Python, seen by .venv"
    try:
        rec = json.loads((paths.COURSE_ROOT / TORCH_RECORD).read_text())
    except (OSError, ValueError):
        rec = {}
    why = {"keep": "the image's own, kept by set-up (never reinstalled)",
           "cuda": f"installed by set-up because the system's torch {rec.get('system_torch')} is older than "
                   "transformers needs (2.5); the system's torch is untouched",
           "cpu": "installed by set-up"}.get(rec.get("kind"), "")
    return f"{torch.__version__} ({build}), {where}" + (f": {why}" if why else "")


def _ram_gb() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        return float("nan")


@dataclass
class EnvironmentReport:
    rows: list[tuple[str, str]] = field(default_factory=list)
    track: Track | None = None
    advice: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"{k:<{max(len(k) for k, _ in self.rows)}}  {v}" for k, v in self.rows]
        lines += ["", f"Track: {self.track.name} ({self.track.reason})"] + [f"- {a}" for a in self.advice]
        return "\n".join(lines)

    def show(self) -> EnvironmentReport:
        """Display the table in a notebook (printed elsewhere); returns the report."""
        try:
            from IPython.display import display

            display(self)
        except ImportError:
            print(self)
        return self

    def _repr_html_(self) -> str:
        import html

        advice = "".join(f"<li>{html.escape(a)}</li>" for a in self.advice)
        return (table(self.rows) + f"<p><b>Track: {self.track.name}</b> — {html.escape(self.track.reason)}</p>"
                f"<ul>{advice}</ul>")


def _recorded_cpu_run() -> str:
    """', whose recorded run took N min on M cores (largest process X GiB)', from the stored recording."""
    import json

    try:
        rec = json.loads((paths.COURSE_ROOT / "resources" / "recordings" / "cpu" / "notebook_run.json").read_text())
        return (f"; the recorded run of the whole lab notebook took {rec['wall_time_s'] / 60:.0f} min on "
                f"{rec['hardware'].split(', ')[-1]} (largest process {rec['peak_rss_largest_process_gib']:.1f} GiB)")
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def _gpu_rows_and_advice(rep, gpu: dict, need: float) -> None:
    """What check_environment says about a GPU: memory other processes hold, and whether the lesson fits."""
    held = gpu_memory_held(own_pids={os.getpid()})
    rep.rows.append(("GPU memory held by other processes", ", ".join(
        f"{mib:,} MiB by pid {pid} ({Path(name).name})" for pid, name, mib in held) or "none"))
    if held:
        rep.advice.append(f"{sum(m for *_, m in held) / 1024:.1f} GiB of the GPU is held by other processes. A "
                          "training from a restarted kernel? `python -m helpers runs` lists live runs and "
                          "`python -m helpers stop RUN` stops one; otherwise end those processes (`nvidia-smi`).")
    if gpu["total_gb"] >= need:
        rep.advice.append(f"{gpu['name']} ({gpu['total_gb']:.0f} GiB): the gpu track fits (needs ~{need:.0f} GiB).")
    else:
        rep.advice.append(f"{gpu['name']} has {gpu['total_gb']:.0f} GiB, under the ~{need:.0f} GiB the lesson needs: "
                          "lower batch_size to 8 or use the cpu track.")


def check_environment(show: bool = True) -> EnvironmentReport:
    """Table of GPU / memory / disk / versions, the track that will be used and why, and advice."""
    gpu = gpu_info()
    disk = shutil.disk_usage(paths.COURSE_ROOT).free / 2**30
    need = lesson_memory_gb()
    track = detect_track()
    rep = EnvironmentReport(track=track)
    rep.rows = [
        ("GPU", f"{gpu['name']} x{gpu['count']}, {gpu['free_gb']:.1f} of {gpu['total_gb']:.1f} GiB free" if gpu else "none"),
        ("CPU cores", str(os.cpu_count())),
        ("CPU bf16", cpu_bf16()[1]),
        ("RAM", f"{_ram_gb():.1f} GiB"),
        ("Free disk", f"{disk:.1f} GiB"),
        ("Python", platform.python_version()),
        ("torch", torch_source()),
        ("ms-swift", _version("ms-swift")),
        ("transformers", _version("transformers")),
        ("peft", _version("peft")),
        ("Lesson run estimate", f"~{need:.1f} GiB GPU memory (Qwen2.5-1.5B, LoRA r=8, batch 16, length 512)"),
    ]
    live = process.TrainingLock().holder()
    live = live if live and process.TrainingLock.is_live(live) else None
    rep.rows.append(("Training now", f"{live['run']} (pid {live.get('pid') or live.get('owner')}, since "
                                     f"{live.get('since', '?')})" if live else "none"))
    if live:
        rep.advice.append(process.busy_message(live))
    if gpu:
        _gpu_rows_and_advice(rep, gpu, need)
    else:
        rep.advice.append("No GPU: the cpu track runs the lesson's five experiments on SmolLM2-135M"
                          + _recorded_cpu_run() + ".")
    if not gpu or track.name != "gpu":
        native, why = cpu_bf16()
        rep.advice.append("CPU training: no gradient checkpointing, LoRA dropout 0, and "
                          + ("bf16 autocast with each LoRA update added in fp32 (the course's swift plugin) and "
                             "eager attention" if native else "fp32") + f": {why}.")
    if track.name == "gpu":  # the cpu track's row: pace.check_environment (it needs the plan)
        rep.rows.append(("Lab estimate", "about 40 min of training on an A10 (the lesson's own timings: 1 + 2 + 10 + 5 + "
                                         "20 min), plus the model download and the exams"))
    if disk < 5:
        rep.advice.append(f"Only {disk:.1f} GiB of free disk: the gpu track needs ~5 GiB (model 3.1 GiB + checkpoints). "
                          "Free space or delete old runs under output/.")
    if standin_requested():
        rep.rows.append(("Lesson model", f"{STANDIN_LABEL} ({STANDIN_ENV}=standin)"))
        rep.advice.append(f"{STANDIN_ENV}=standin: a rehearsal — the gpu track's own commands run on a tiny random "
                          "Qwen2; its losses, diagnoses and scores mean nothing.")
    if track.name == "ci":
        rep.advice.append("ci track: tiny runs that exercise every code path in seconds; scores mean nothing here.")
    return rep.show() if show else rep
