"""Hardening: hostile paths, bad inputs rejected before training, model folders without weights, low disk,
interrupts at every stage (conversion, merge, exam) and nothing machine-specific in stored notebooks.

The e2e file covers the rest (course in a path with spaces and '&', Ctrl-C during sft, malformed JSON,
renamed flags); tests/test_models.py covers the partial-cache rebuild.
"""

import collections
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import ROOT

from helpers import knobs, models, paths, swift_runner, training

pytestmark = pytest.mark.timeout(300)

GOOD_ROW = {"messages": [{"role": "system", "content": ""},
                         {"role": "user", "content": "#Math Problem#\nWhat is 2 + 3?"},
                         {"role": "assistant", "content": "2 + 3 = 5.\n\n{{ans:5}}"}]}


def _row(question="What is 2 + 3?", answer="2 + 3 = 5.\n\n{{ans:5}}", roles=("system", "user", "assistant")):
    content = {"system": "", "user": f"#Math Problem#\n{question}", "assistant": answer}
    return json.dumps({"messages": [{"role": r, "content": content[r]} for r in roles]})


def _write(path: Path, lines) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _env(**extra):
    env = {**os.environ, "FTLAB_TRACK": "ci", "PYTHONUNBUFFERED": "1", **extra}
    env.pop("MPLBACKEND", None)
    return env


def _tree_hash(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _start(args, log: Path, **env) -> subprocess.Popen:
    """`python -m helpers ARGS` from the course folder, output to `log` (read while it runs)."""
    with open(log, "wb") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen([sys.executable, "-m", "helpers", *args], cwd=ROOT, env=_env(**env),
                                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def _wait_for(pred, timeout: float, what: str, proc: subprocess.Popen | None = None, log: Path | None = None):
    deadline = time.time() + timeout
    while not pred():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"exited ({proc.returncode}) before {what}:\n" + (log.read_text()[-3000:] if log else ""))
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}:\n" + (log.read_text()[-3000:] if log else ""))
        time.sleep(0.05)


def _interrupt(proc: subprocess.Popen, watched: set[int], timeout: float = 60) -> int:
    """SIGINT the helper process (as Ctrl-C would), wait for it; return its exit code."""
    try:
        watched.update(c.pid for c in psutil.Process(proc.pid).children(recursive=True))
    except psutil.Error:
        pass
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:  # it ignored the interrupt: stop it and its swift session, leave no orphans
            for pid in [*watched, *(c.pid for c in psutil.Process(proc.pid).children(recursive=True))]:
                try:
                    psutil.Process(pid).kill()
                except psutil.Error:
                    pass
            proc.kill()


def _alive(pids) -> list[int]:
    out = []
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                out.append(pid)
        except psutil.Error:
            pass
    return out


# ---- commands without a shell; paths cannot become flags -------------------------------------------------

def test_no_shell_anywhere_in_helpers():
    offenders = []
    for f in sorted((ROOT / "helpers").glob("*.py")):
        for no, line in enumerate(f.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"shell\s*=\s*True|os\.system\(|os\.popen\(|subprocess\.getoutput|commands\.getoutput", line):
                offenders.append(f"{f.name}:{no}: {line.strip()}")
    assert not offenders, "\n".join(offenders)


@pytest.mark.parametrize("name", ["--learning_rate=9.jsonl", "-x.jsonl"])
@pytest.mark.parametrize("where", ["course root", "folder with spaces in the course", "outside the course"])
def test_dataset_paths_never_become_flags(tmp_path, monkeypatch, name, where):
    course = tmp_path / "my course & co"
    monkeypatch.setattr(paths, "COURSE_ROOT", course)
    folder = {"course root": course, "folder with spaces in the course": course / "my data -v",
              "outside the course": tmp_path / "other place"}[where]
    data = _write(folder / name, [_row()])
    val = _write(folder / f"-{name}", [_row()])
    out = folder / "-o run"
    out.mkdir()
    model = models.Model("m", folder / "-model dir", "llama", "chatml", 0.1, False)
    params = knobs.check(1e-4, 8, 1, 4, 256, 1)
    argv = swift_runner.sft_command(model, data, val, params, out)
    # flags are the even positions; every value that came from a path is a path, never an option
    values = dict(zip(argv[0::2], argv[1::2]))
    assert all(k.startswith("--") for k in values), argv
    for flag, path in (("--dataset", data), ("--val_dataset", val), ("--output_dir", out), ("--model", model.path)):
        v = values[flag]
        assert not v.startswith("-"), f"{flag} {v!r} would be read as an option"
        assert (course / v).resolve() == path.resolve(), (flag, v)
    for a in argv:
        assert not a.startswith("-") or a.startswith("--") and a[2:] in {*knobs.FLAGS.values(),
            "model", "model_type", "template", "dataset", "val_dataset", "output_dir", "add_version", "save_steps",
            "per_device_eval_batch_size", "check_model", "report_to"}, f"{a!r} is not a flag the helpers set"
    ckpt = folder / "-checkpoint-1"
    exp = swift_runner.export_command(ckpt)
    assert not exp[1].startswith("-") and (course / exp[1]).resolve() == ckpt.resolve()


# ---- bad inputs are rejected before anything starts -------------------------------------------------------

@pytest.fixture
def out_dir(tmp_path, monkeypatch):
    """Runs would go here; every test checks that none was created."""
    out = tmp_path / "output"
    monkeypatch.setattr(paths, "OUTPUT_DIR", out)
    yield out
    runs = [p for p in out.rglob("*")] if out.exists() else []
    assert not runs, f"a run folder was created: {runs}"


BAD_FILES = {
    "not utf-8": (b'{"messages": []}\n' + _row().encode() + b"\n\xff\xfe caf\xe9\n", r":3: not UTF-8"),
    "empty": (b"", r":1: empty file"),
    "wrong role order": ((_row(roles=("system", "assistant", "user")) + "\n").encode(), r":1: roles are"),
    "missing assistant turn": ((_row() + "\n" + _row("What is 1 + 1?", roles=("system", "user")) + "\n").encode(),
                               r":2: roles are \['system', 'user'\]"),
    "no ans tag": ((_row() + "\n" + _row("What is 4 + 4?", "It is 8.") + "\n").encode(), r":2: no \{\{ans:\.\.\.\}\}"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_dataset_rejected_with_file_line_reason(case, tmp_path, out_dir):
    content, expected = BAD_FILES[case]
    f = tmp_path / "my data" / f"{case.replace(' ', '_')}.jsonl"
    f.parent.mkdir()
    f.write_bytes(content)
    with pytest.raises(ValueError) as err:
        training.sft(dataset=str(f), val_dataset=None, show=False)
    msg = str(err.value)
    assert "nothing was started" in msg and re.search(re.escape(str(f)) + expected, msg), msg


def test_missing_dataset_rejected(tmp_path, out_dir):
    with pytest.raises(FileNotFoundError, match="no such dataset file. Fix"):
        training.sft(dataset=str(tmp_path / "nope.jsonl"), show=False)
    with pytest.raises(FileNotFoundError, match="train_1000: no such dataset file.*train_100"):
        training.sft(dataset="train_1000", show=False)


@pytest.mark.parametrize("kwargs, expected", [
    ({"learning_rate": 0}, r"learning_rate=0.0 must be > 0"),
    ({"learning_rate": -1e-4}, r"learning_rate=-0.0001 must be > 0"),
    ({"learning_rate": "fast"}, r"learning_rate='fast' is not a number"),
    ({"learning_rate": float("nan")}, r"learning_rate=nan must be > 0"),
    ({"lora_rank": 0}, r"lora_rank=0 must be > 0"),
    ({"lora_rank": 2.5}, r"lora_rank=2.5 must be a whole number"),
    ({"batch_size": 0}, r"batch_size=0 must be > 0"),
    ({"batch_size": -4}, r"batch_size=-4 must be > 0"),
    ({"num_train_epochs": 0}, r"num_train_epochs=0.0 must be > 0"),
    ({"eval_steps": 0}, r"eval_steps=0 must be > 0"),
    ({"max_length": 8}, r"max_length=8 must be >= 16"),
])
def test_bad_parameters_rejected(kwargs, expected, out_dir):
    with pytest.raises(ValueError, match=expected):
        training.sft(**kwargs, show=False)


def test_max_length_too_small_for_every_row(out_dir):
    with pytest.raises(ValueError, match=r"train_100.jsonl: all 100 rows are longer than max_length=16 tokens; "
                                         r"swift would .*drop every one.*Fix: raise max_length"):
        training.sft(max_length=16, show=False)


def _low_disk(monkeypatch, free_gb=0.05):
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(training.shutil, "disk_usage", lambda _p: usage(100 * 2**30, 100 * 2**30, int(free_gb * 2**30)))


def test_some_rows_too_long_prints_the_count(tmp_path, out_dir, monkeypatch, capsys):
    from transformers import AutoTokenizer

    from helpers import data

    long_answer = " ".join(["The farmer counts another basket of apples and adds it to the pile."] * 20) + " {{ans:7}}"
    f = _write(tmp_path / "mixed.jsonl", [_row(f"What is {i} + {i}?", f"{2 * i}. {{{{ans:{2 * i}}}}}") for i in range(5)]
               + [_row("How many apples?", long_answer), _row("How many pears?", long_answer)])
    tok = AutoTokenizer.from_pretrained(models.embedded_dir())
    assert data.count_too_long(f, tok, 128) == 2
    assert data.count_too_long(f, tok, 4096) == 0
    _low_disk(monkeypatch)  # stop right after the data checks, before any run folder
    with pytest.raises(RuntimeError, match="Not enough disk"):
        training.sft(dataset=str(f), val_dataset=None, max_length=128, show=False)
    out = capsys.readouterr().out
    assert re.search(r"2 of 7 rows in .*mixed.jsonl exceed max_length=128.*drops? them", out), out


def test_low_disk_refused_before_a_run_folder(out_dir, monkeypatch):
    _low_disk(monkeypatch)
    with pytest.raises(RuntimeError, match=r"Not enough disk: this run needs about [\d.]+ GiB .* has 0\.\d GiB free. "
                                           r"Fix: delete old runs"):
        training.sft(show=False)


# ---- a model folder given by path -------------------------------------------------------------------------

def _fake_model(folder: Path, config: dict, weights=True, chat_template_from_embedded=True) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(config))
    if chat_template_from_embedded:
        for name in ("tokenizer_config.json", "chat_template.jinja"):
            if (models.embedded_dir() / name).is_file():
                shutil.copy(models.embedded_dir() / name, folder / name)
    if weights:
        (folder / "model.safetensors").write_bytes(b"\0" * 64)
    return folder


def test_model_folder_without_weights_is_rejected(tmp_path):
    folder = _fake_model(tmp_path / "my model", {"model_type": "llama"}, weights=False)
    with pytest.raises(ValueError, match=r"my model: no model weights \(\*\.safetensors\) — fix: "):
        models.get_model(str(folder))
    with pytest.raises(ValueError, match="no config.json — fix"):
        models.get_model(tmp_path)
    with pytest.raises(ValueError, match="no such model folder"):
        models.get_model(str(tmp_path / "missing"))


def test_model_folder_type_and_template_from_its_files(tmp_path):
    smol = models.get_model(_fake_model(tmp_path / "smol", {"model_type": "llama"}))
    assert (smol.model_type, smol.template, smol.embedded) == ("llama", "chatml", False)
    qwen = models.get_model(str(_fake_model(tmp_path / "qwen", {"model_type": "qwen2"}, chat_template_from_embedded=False)))
    assert qwen.swift_args()[2:] == ["--model_type", "qwen2", "--template", "qwen2_5"]
    with pytest.raises(ValueError, match="without a ChatML chat template"):
        models.get_model(_fake_model(tmp_path / "plain llama", {"model_type": "llama"}, chat_template_from_embedded=False))
    with pytest.raises(ValueError, match="model_type 'gpt2' is not one this course knows"):
        models.get_model(_fake_model(tmp_path / "gpt2", {"model_type": "gpt2"}))
    same = models.get_model(str(models.embedded_dir()))
    assert same.embedded and same.name == models.EMBEDDED_NAME


# ---- interrupts leave the previous state intact and no process ---------------------------------------------

def test_interrupted_conversion_keeps_the_complete_cache(tmp_path):
    src = models.embedded_dir()
    assert models.is_complete(src), "run `python -m helpers prepare` first"
    cache = tmp_path / "cache"
    final = cache / "models" / src.name
    shutil.copytree(src, final, copy_function=os.link)  # hard links: no 0.5 GB copy; conversion never writes in place
    before = _tree_hash_sizes(final)
    for stage in ("loading", "saving"):
        log = tmp_path / f"prepare-{stage}.log"
        proc = _start(["prepare", "--force"], log, FTLAB_CACHE=str(cache))
        watched = {proc.pid}
        if stage == "loading":
            # transformers' "Loading weights" bar: the model is being read, nothing written yet
            _wait_for(lambda log=log: b"Loading weights" in log.read_bytes(), 120, "the model loading", proc, log)
        else:  # the temporary folder appears when save_pretrained starts writing
            _wait_for(lambda: any(cache.glob("models/.*.tmp-*")), 180, "the temporary folder", proc, log)
        rc = _interrupt(proc, watched)
        assert rc == 130, log.read_text()[-2000:]
        assert models.is_complete(final) and _tree_hash_sizes(final) == before, f"cache damaged ({stage})"
        assert not [p.name for p in final.parent.iterdir() if p.name != final.name], "a temporary folder remains"
        assert not _alive(watched)


def _tree_hash_sizes(folder: Path) -> dict:
    return {p.name: (p.stat().st_size, p.stat().st_ino) for p in folder.iterdir()}


# `checkpoint` (conftest): a private copy of the suite's one trained run, shared by the merge and exam tests


def _merge_leftovers(ckpt: Path) -> list[str]:
    return [p.name for p in ckpt.parent.iterdir() if p.name.startswith(f".{ckpt.name}") or p.name.endswith("-merged")]


def test_interrupted_merge_during_export_leaves_nothing(checkpoint, tmp_path):
    before = _tree_hash(checkpoint)
    log = tmp_path / "merge.log"
    proc = _start(["merge", str(checkpoint)], log)
    watched = {proc.pid}
    _wait_for(lambda: b"swift export" in log.read_bytes(), 120, "the export command", proc, log)
    # the swift export child is running: record it, and wait until it has begun writing the merged model
    _wait_for(lambda: psutil.Process(proc.pid).children(recursive=True), 30, "the swift child", proc, log)
    tmp = checkpoint.parent / f".{checkpoint.name}-merging"
    _wait_for(tmp.exists, 240, "swift export to start writing", proc, log)
    assert proc.poll() is None, "the export finished before it could be interrupted"
    rc = _interrupt(proc, watched)
    assert rc == 130, log.read_text()[-2000:]
    assert "Merge interrupted: nothing was written" in log.read_text()
    _wait_for(lambda: not _alive(watched), 5, "the interrupted processes to be gone")
    assert not _merge_leftovers(checkpoint), _merge_leftovers(checkpoint)
    assert _tree_hash(checkpoint) == before, "the checkpoint changed"


def test_interrupted_merge_during_verification_leaves_nothing(checkpoint, tmp_path):
    """After swift export finished, the helpers compare adapter and merged answers; Ctrl-C there too."""
    before = _tree_hash(checkpoint)
    tmp = checkpoint.parent / f".{checkpoint.name}-merging"
    log = tmp_path / "merge-verify.log"
    proc = _start(["merge", str(checkpoint)], log)
    watched = {proc.pid}

    def exported():
        watched.update(c.pid for c in psutil.Process(proc.pid).children(recursive=True))
        return (tmp / "config.json").is_file() and any(tmp.glob("*.safetensors")) and \
            not psutil.Process(proc.pid).children(recursive=True)

    _wait_for(exported, 240, "the end of swift export", proc, log)  # now the helpers verify the merged model
    # The one timed wait left, on purpose: right after the export the helper imports the model code, and a SIGINT
    # that lands while importlib runs one of its weakref callbacks is swallowed by Python ("Exception ignored in
    # ... _get_module_lock"), so the merge would go on. A second later it is loading the models.
    time.sleep(1)
    assert proc.poll() is None, "merge finished before it could be interrupted"
    rc = _interrupt(proc, watched)
    assert rc == 130, log.read_text()[-2000:]
    assert not _alive(watched)
    assert _tree_hash(checkpoint) == before
    assert not _merge_leftovers(checkpoint), f"left behind: {_merge_leftovers(checkpoint)}"


def test_interrupted_exam_writes_no_results(checkpoint, tmp_path):
    out = tmp_path / "r.json"
    out.write_text('{"previous": true}')
    previous = out.read_bytes()
    log = tmp_path / "exam.log"
    proc = _start(["exam", "--model", str(checkpoint), "--data", "resources/2_7/test.jsonl", "--out", str(out)], log)
    watched = {proc.pid}
    _wait_for(lambda: b"exam test:" in log.read_bytes(), 180, "the model to load (exam progress bar)", proc, log)
    assert proc.poll() is None, "the exam finished before it could be interrupted"
    rc = _interrupt(proc, watched)
    assert rc != 0 and "interrupted" in log.read_text()
    assert out.read_bytes() == previous, "the previous results file was touched"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exam.log", "r.json"], "a partial results file was written"
    assert not [p for p in checkpoint.iterdir() if p.suffix == ".json" and "exam" in p.name], "results saved anyway"
    assert not _alive(watched)


def test_exam_cli_takes_the_embedded_model_folder(tmp_path):
    r = subprocess.run([sys.executable, "-m", "helpers", "exam", "--model", str(models.embedded_dir()), "--data",
                        "resources/2_7/demo.jsonl", "--out", str(tmp_path / "r.json"), "--max_new_tokens", "2"],
                       cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=180, check=False)
    assert r.returncode == 0, r.stderr[-1500:]
    assert (tmp_path / "r.json").is_file()


# ---- nothing secret or machine-specific in the stored notebooks -------------------------------------------

SECRET_PATTERNS = {
    "the repository's absolute path": re.escape(str(ROOT)),
    "a home folder": r"/root/|/home/[^/\s\"]+/|/Users/[^/\s\"]+/",
    "a temporary folder": r"/tmp/|/var/folders/",
    "a Jupyter token": r"token=[0-9a-f]{8,}",
    "a timestamp": r"\b20\d\d-\d\d-\d\dT\d\d:\d\d",
    "an access key": r"(?i)(api[_-]?key|secret|password|access[_-]?key)\s*[=:]\s*\S{8,}",
}


@pytest.mark.parametrize("notebook", sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb")))
def test_stored_notebook_outputs_hold_nothing_machine_specific(notebook):
    nb = json.loads((ROOT / "notebooks" / notebook).read_text(encoding="utf-8"))
    found = []
    for i, cell in enumerate(nb["cells"]):
        for out in cell.get("outputs", []):
            text = json.dumps({k: v for k, v in out.items() if k != "metadata"}, ensure_ascii=False)
            for what, pattern in SECRET_PATTERNS.items():
                for m in re.finditer(pattern, text):
                    found.append(f"cell {i}: {what}: ...{text[max(0, m.start() - 60):m.end() + 30]}...")
    # absolute paths or tokens anywhere else in the file (metadata, sources) are just as bad
    raw = (ROOT / "notebooks" / notebook).read_text(encoding="utf-8")
    for what in ("the repository's absolute path", "a home folder", "a Jupyter token"):
        if re.search(SECRET_PATTERNS[what], raw):
            found.append(f"file: {what}")
    assert not found, "\n".join(found[:20])


UNFINISHED_BAR = re.compile(r"\d+%\|[^|\n]*\|\s*(\d+)/(\d+)")


@pytest.mark.parametrize("notebook", sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb")))
def test_stored_notebook_outputs_hold_no_noise(notebook):
    """What a reader sees before running: no stderr stream, no progress bar stopped half-way, no library
    warning; the diagnosis statistics only inside the card's collapsed details block."""
    nb = json.loads((ROOT / "notebooks" / notebook).read_text(encoding="utf-8"))
    found = []
    for i, cell in enumerate(nb["cells"]):
        for out in cell.get("outputs", []):
            if out.get("name") == "stderr":
                found.append(f"cell {i}: a stderr stream: {''.join(out['text'])[:120]!r}")
            texts = ["".join(out.get("text", ""))]
            texts += ["".join(v) for k, v in out.get("data", {}).items() if k.startswith("text/")]
            for text in texts:
                for m in UNFINISHED_BAR.finditer(text):
                    if m.group(1) != m.group(2):
                        found.append(f"cell {i}: an unfinished progress bar: {m.group(0)!r}")
                if re.search(r"(?i)\bwarn(ing)?\b|deprecat", text):
                    found.append(f"cell {i}: a warning: {text[:160]!r}")
            html = "".join(out.get("data", {}).get("text/html", ""))
            if "ftlab-diagnosis" in html:
                assert "<details>" in html, f"cell {i}: the diagnosis card shows its statistics uncollapsed"
    assert not found, "\n".join(found[:20])
