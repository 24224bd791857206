"""Where the course keeps things. Every path is derived from the course folder, never typed by hand."""

from __future__ import annotations

import os
from pathlib import Path

COURSE_ROOT = Path(__file__).resolve().parent.parent
RESOURCES = COURSE_ROOT / "resources"
DATA_DIR = RESOURCES / "2_7"
RECORDINGS_DIR = RESOURCES / "recordings"
CACHE_DIR = Path(os.environ.get("FTLAB_CACHE", COURSE_ROOT / ".cache"))
LESSON_MODEL_DIR = COURSE_ROOT / "model"  # where the lesson downloads Qwen2.5-1.5B-Instruct
OUTPUT_DIR = Path(os.environ.get("FTLAB_OUTPUT", COURSE_ROOT / "output"))
SWIFT_PLUGINS = COURSE_ROOT / "helpers" / "swift_plugins"


def embedded_model_dir() -> Path:
    """The converted SmolLM2-135M-Instruct folder (models.prepare_embedded builds it)."""
    return CACHE_DIR / "models" / "SmolLM2-135M-Instruct"


def short(path: os.PathLike | str) -> str:
    """A path as the learner should read it: relative to the course folder when inside it."""
    p = Path(path)
    try:
        return str(p.resolve().relative_to(COURSE_ROOT))
    except ValueError:
        return str(p)


def arg_path(path: os.PathLike | str) -> str:
    """A path as passed to swift: relative to the course folder when inside it, never starting with '-'."""
    rel = short(path)
    if Path(rel).is_absolute():
        return rel
    # a file named like a flag in the course folder itself ('--learning_rate=9.jsonl') must stay a path
    return os.path.join(".", rel) if rel.startswith("-") else rel
