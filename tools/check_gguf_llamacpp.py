"""Maintainers: read the course's GGUF files with llama.cpp itself and compare its greedy answers with the model
folder's (not in `make test`: llama-cpp-python is a source build, 15-30 min on 2 cores).

    .venv/bin/python tools/check_gguf_llamacpp.py [MODEL_OR_MERGED_FOLDER] [--max-new-tokens 112]

1. llama-cpp-python is built once into .cache/llamacpp-venv (its own venv: the course's .venv stays as pinned).
2. export_gguf() writes the f16 and q8_0 files of the folder (default: the embedded model) into a temporary folder.
3. The folder's greedy answers to the lesson's ten questions (transformers, the course's template and decoding), and
   llama.cpp's answers from each file, given the same prompt token ids (so both read identical prompts), greedy.
Prints, per file: identical answers, answers ending with the same number.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

VENV = ROOT / ".cache" / "llamacpp-venv"
PIN = "llama-cpp-python==0.3.36"

LLAMA_SIDE = r"""
import json, sys
from llama_cpp import Llama
job = json.load(open(sys.argv[1]))
llm = Llama(model_path=job["gguf"], n_ctx=1024, n_threads=2, verbose=False)
stops = set(job["stops"])
out = []
for prompt in job["prompts"]:
    llm.reset()
    ids = []
    for tok in llm.generate(prompt, temp=0.0, top_k=1, top_p=1.0, repeat_penalty=1.0, reset=True):
        if tok in stops or len(ids) >= job["max_new_tokens"]:
            break
        ids.append(tok)
    out.append(ids)
json.dump(out, open(sys.argv[2], "w"))
"""


def llama_python() -> Path:
    python = VENV / "bin" / "python"
    if not python.exists() or subprocess.run([str(python), "-c", "import llama_cpp"], capture_output=True).returncode:
        print(f"building {PIN} into {VENV.relative_to(ROOT)} (once; 15-30 min on 2 cores)...", flush=True)
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", PIN], check=True)
    return python


def main(argv: list[str]) -> int:
    from helpers import data, inference, models, scoring
    from helpers.gguf_export import export_gguf

    max_new = int(argv[argv.index("--max-new-tokens") + 1]) if "--max-new-tokens" in argv else 112
    folders = [a for a in argv if not a.startswith("--") and not a.isdigit()]
    folder = Path(folders[0]) if folders else models.prepare_embedded(quiet=True)
    python = llama_python()
    rows = data.read_rows(ROOT / "resources" / "2_7" / "test.jsonl")
    loaded = inference.load(folder)
    prompts = [inference.encode_prompt(loaded.template, r) for r in rows]
    with inference.threads(None):
        ours = inference.generate(loaded, prompts, max_new)
    stops = inference.stop_ids(loaded)
    print(f"{folder.name}: the lesson's {len(rows)} questions, greedy, {max_new} new tokens at most")
    with tempfile.TemporaryDirectory() as tmp:
        for quant in ("f16", "q8_0"):
            gguf = export_gguf(folder, quant=quant, out_dir=Path(tmp), show=False)
            job, result = Path(tmp) / "job.json", Path(tmp) / "answers.json"
            job.write_text(json.dumps({"gguf": str(gguf), "prompts": prompts, "stops": stops, "max_new_tokens": max_new}))
            subprocess.run([str(python), "-c", LLAMA_SIDE, str(job), str(result)], check=True)
            theirs = [loaded.tokenizer.decode(ids, skip_special_tokens=True).strip() for ids in json.loads(result.read_text())]
            same = sum(a == b for a, b in zip(ours, theirs))
            number = sum(scoring.last_number(a) == scoring.last_number(b) for a, b in zip(ours, theirs))
            print(f"  {quant}: llama.cpp {same}/{len(rows)} identical, {number}/{len(rows)} with the same last number")
            for a, b in zip(ours, theirs):
                if a != b:
                    print(f"    folder:    {a[:160]!r}\n    llama.cpp: {b[:160]!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
