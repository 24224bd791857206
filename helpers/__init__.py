"""Fine-Tuning Lab helpers: one module per concept, imported from the course folder. `dir(helpers)` is the API.

Where each idea lives, bottom to top (a module imports only from its own layer's earlier modules or below):

  ground     paths (course folders) · kernel (the course's Jupyter kernel, the first cell's check) · knobs (the lesson's six knobs, defined once) · view (the one table helper, state colours) · shapes (LoRA counts) ·
             swiftlog (the one swift-log reader) ·
             process (child process trees, their guard, one training per machine) ·
             environment (machine, track, versions, memory estimate) · models (which model, its folder, chat template) ·
             data (rows, the prompt format, the {{ans:}} tag, validation) · calculator (the call syntax, safe arithmetic)
  judgement  scoring (seed/strict rules) · diagnosis (the four training states)
  views      cards (diagnosis card, exam tables) · curves (live loss plots, progress) · theory (notebook 01/02
             plots) · quiz
  engine     swift_runner (argv, swift processes, the template swift trains with) · tracks (the five experiments per track) · pace (a measured step,
             the lab's work and its time here) · history (Run, and every run on disk) ·
             training (sft, watch) · inference (the one model loader) · exams · merging · gguf_export (a GGUF file and
             an Ollama Modelfile, checked by transformers' GGUF reader) · llamacpp (llama.cpp itself reads the file) · serving (swift deploy for the learner's openai client) · recordings · ask ·
             classroom (the playground: the lesson's knobs as widgets, a Train button)
  face       this API · cli (`python -m helpers`)

The dataset generator is tools/problems.py; the ms-swift plugin for bf16 on a CPU is swift_plugins/cpu_bf16.py
(swift_plugins/compile_layers.py compiles the decoder layers of the cpu track's long runs where bf16 is native;
swift_plugins/exam_reward.py is the exam's strict rule as a GRPO reward for `swift rlhf`).
The API is imported lazily, so `import helpers` stays fast.
"""

LAYERS = {
    "ground": ["paths", "kernel", "knobs", "view", "shapes", "swiftlog", "process", "environment", "models", "data", "calculator"],
    "judgement": ["scoring", "diagnosis"],
    "views": ["cards", "curves", "theory", "quiz"],
    "engine": ["swift_runner", "tracks", "pace", "history", "training", "inference", "exams", "merging", "gguf_export", "llamacpp", "serving", "recordings", "ask", "classroom"],
    "face": ["__init__", "cli", "__main__"],
}

_API = {
    # the environment and the model
    "check_kernel": "kernel", "check_environment": "pace", "detect_track": "environment", "get_model": "models",
    "DATA_DIR": "paths",
    # training
    "experiments": "tracks", "calculator_experiment": "tracks", "plan_table": "tracks", "exam_settings": "tracks", "lab_budget": "pace",
    "sft": "training", "stop": "training", "Run": "history", "runs": "history", "compare_runs": "history", "pick_best": "history",
    "diagnose": "diagnosis", "diagnose_log": "history", "thresholds_table": "cards",
    # exams
    "exam": "exams", "compare_exams": "exams", "misses": "exams", "wording_split": "exams", "scores_table": "exams", "over_credit_example": "exams",
    "ExamResult": "scoring",
    # after training
    "merge": "merging", "ask_your_model": "ask", "prompt_row": "data", "read_rows": "data", "turn": "data",
    "encode_prompt": "inference", "swift_template": "swift_runner",
    # taking the model home
    "serve": "serving", "servers": "serving", "ask_with_calculator": "serving",
    "export_gguf": "gguf_export", "check_gguf": "gguf_export",
    "check_llamacpp": "llamacpp", "exam_with_llamacpp": "llamacpp", "llamacpp_score_line": "llamacpp",
    "llamacpp_missing": "llamacpp",
    # for a class
    "playground": "classroom",
    # recordings of real runs
    "replay": "recordings", "save_recording": "recordings", "load_recording": "recordings",
    "save_exams": "recordings", "add_exams": "recordings", "recorded_exams": "recordings",
}

__all__ = sorted(_API)


def __getattr__(name):
    if name in _API:
        from importlib import import_module

        return getattr(import_module(f"{__name__}.{_API[name]}"), name)
    raise AttributeError(f"module 'helpers' has no attribute {name!r}")


def __dir__():
    return __all__
