"""Fine-Tuning Lab helpers: one module per concept, imported from the course folder.

The notebook API (one call per idea) is re-exported here lazily, so `import helpers` stays fast.
"""

_API = {
    "check_environment": "environment",
    "detect_track": "environment",
    "get_model": "models",
    "sft": "training",
    "Run": "training",
    "runs": "training",
    "compare": "training",
    "exam": "exams",
    "merge": "merging",
    "replay": "recordings",
    "record": "recordings",
    "experiments": "tracks",
    "diagnose": "diagnosis",
}

__all__ = sorted(_API)


def __getattr__(name):
    if name in _API:
        from importlib import import_module

        return getattr(import_module(f"{__name__}.{_API[name]}"), name)
    raise AttributeError(f"module 'helpers' has no attribute {name!r}")
