"""Take your model home, part 1: `serve()` starts a guarded `swift deploy` of the base model and the fine-tuned
adapter, and the learner's own `openai` client gets exam()'s greedy answers from it. Real server, real client,
the suite's trained run (conftest.checkpoint)."""

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import openai
import psutil
import pytest
from conftest import ROOT, course_env

from helpers import DATA_DIR, exam, read_rows, serve, servers
from helpers.serving import ask_with_calculator

MAX_TOKENS = 24  # the ci track's exam length: the answers are compared token for token, not judged


def _digest(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _listening(pid: int) -> set[tuple[str, int]]:
    """The addresses the server's process tree listens on."""
    found = set()
    for p in [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]:
        try:
            found |= {(c.laddr.ip, c.laddr.port) for c in p.net_connections("inet") if c.status == psutil.CONN_LISTEN}
        except psutil.Error:
            continue
    return found


@pytest.fixture(scope="module")
def served(checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("serve-out")
    os.environ["FTLAB_OUTPUT"] = str(out)
    import helpers.paths

    old, helpers.paths.OUTPUT_DIR = helpers.paths.OUTPUT_DIR, out
    before = _digest(checkpoint.parent)
    server = serve(checkpoint, more={"calculator": checkpoint}, show=False)  # a second adapter, one base
    try:
        yield server, checkpoint, before
    finally:
        server.stop()
        helpers.paths.OUTPUT_DIR = old
        os.environ.pop("FTLAB_OUTPUT", None)


def test_it_listens_on_this_machine_only_and_names_both_models(served):
    server, _, _ = served
    port = int(server.url.rsplit(":", 1)[1].split("/")[0])
    assert server.url == f"http://127.0.0.1:{port}/v1"
    assert _listening(server.pid) == {("127.0.0.1", port)}
    listed = [m.id for m in server.client().models.list().data]
    assert listed == ["SmolLM2-135M-Instruct", "tuned", "calculator"] == list(server.names.values())
    assert [s.url for s in servers()] == [server.url]  # its own listing, while it lives
    assert "--host 127.0.0.1" in server.command and "--infer_backend transformers" in server.command


def test_greedy_answers_through_the_server_equal_the_exams_on_the_lessons_ten(served):
    server, checkpoint, _ = served
    rows = read_rows(DATA_DIR / "test.jsonl")
    assert len(rows) == 10
    client = server.client()
    got = [client.chat.completions.create(model="tuned", messages=r["messages"][:2], temperature=0,
                                          max_tokens=MAX_TOKENS).choices[0].message.content.strip() for r in rows]
    want = [i.response for i in exam(checkpoint, DATA_DIR / "test.jsonl", max_new_tokens=MAX_TOKENS, save_to=False,
                                     progress=False).items]
    assert got == want
    # streamed, as the notebook shows it: the same answer, in pieces
    chunks = [c.choices[0].delta.content or "" for c in client.chat.completions.create(
        model="tuned", messages=rows[0]["messages"][:2], temperature=0, max_tokens=MAX_TOKENS, stream=True)]
    assert len([c for c in chunks if c]) > 1 and "".join(chunks).strip() == want[0]
    # the client-side calculator loop: this model writes no call, so it is the plain answer
    assert ask_with_calculator(client, "tuned", rows[0]["messages"][:2], max_tokens=MAX_TOKENS) == want[0]


def test_the_base_model_answers_as_its_exam(served):
    server, checkpoint, _ = served
    from helpers import get_model

    row = read_rows(DATA_DIR / "test.jsonl")[1]
    got = server.client().chat.completions.create(model=server.names["base"], messages=row["messages"][:2],
                                                  temperature=0, max_tokens=MAX_TOKENS).choices[0].message.content
    want = exam(get_model(), DATA_DIR / "test.jsonl", max_new_tokens=MAX_TOKENS, limit=2, save_to=False,
                progress=False).items[1].response
    assert got.strip() == want


def test_an_unknown_model_name_is_refused_with_the_names_it_has(served):
    server, _, _ = served
    with pytest.raises(openai.BadRequestError) as e:
        server.client().chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "hi"}])
    assert "`gpt-4` is not in the model_list: `['SmolLM2-135M-Instruct', 'tuned', 'calculator']`" in str(e.value)


def test_a_server_killed_mid_answer_fails_the_client_and_loses_nothing(served):
    """Last in this module: it kills the module's server."""
    server, checkpoint, before = served
    client = server.client(max_retries=0)
    stream = client.chat.completions.create(model="tuned", messages=[{"role": "user", "content": "Count to 500."}],
                                            temperature=0, max_tokens=400, stream=True)
    next(iter(stream))
    for p in [psutil.Process(server.pid), *psutil.Process(server.pid).children(recursive=True)]:
        p.kill()
    with pytest.raises((openai.APIError, httpx.TransportError)):  # the stream breaks off: the client says so
        for _ in stream:
            pass
    deadline = time.time() + 10
    while server.alive and time.time() < deadline:
        time.sleep(0.2)
    assert not server.alive and servers() == []
    with pytest.raises(openai.APIConnectionError):
        client.models.list()
    assert _digest(checkpoint.parent) == before  # the run and its checkpoints are as they were


STARTER = """
import sys
from pathlib import Path
from helpers import serve
s = serve(Path(sys.argv[1]), show=False)
print(s.pid, s.url, flush=True)
import time
time.sleep(600)
"""


def test_the_guard_stops_a_server_whose_kernel_died(checkpoint, tmp_path):
    env = {**course_env(), "FTLAB_OUTPUT": str(tmp_path)}
    starter = subprocess.Popen([sys.executable, "-c", STARTER, str(checkpoint)], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, text=True)
    try:
        pid, url = starter.stdout.readline().split()
    finally:
        starter.kill()  # SIGKILL: no handler runs, only the guard can stop the server
        starter.wait()
    port = int(url.rsplit(":", 1)[1].split("/")[0])

    def left():  # swift's wrapper and the server it runs both carry the port on their command lines
        return [p for p in psutil.process_iter(["cmdline", "status"])
                if f"--port {port}" in " ".join(p.info["cmdline"] or []) and p.info["status"] != psutil.STATUS_ZOMBIE]

    deadline = time.time() + 20
    while left():
        assert time.time() < deadline, f"the server outlived the process that started it: {left()}"
        time.sleep(0.2)
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
    while not list(tmp_path.glob("servers/*/ftlab_stopped.json")):  # the guard writes why once all is gone
        assert time.time() < deadline, "the guard wrote no note"
        time.sleep(0.2)
    note = json.loads(next(tmp_path.glob("servers/*/ftlab_stopped.json")).read_text())
    assert note["why"] == "the command that started it stopped"


def _refused(model_or_run, **kw) -> str:
    with pytest.raises(ValueError) as e:
        serve(model_or_run, show=False, **kw)
    return str(e.value)


def test_bad_input_is_refused_before_anything_starts(checkpoint, tmp_path, monkeypatch):
    import helpers.paths

    monkeypatch.setattr(helpers.paths, "OUTPUT_DIR", tmp_path / "out")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert _refused(checkpoint, port=port) == (
            f"port {port} on 127.0.0.1 is in use. Fix: serve(..., port=None) picks a free one, or stop what listens "
            "there (`python -m helpers runs` lists the course's servers).")
    assert _refused(tmp_path / "no such checkpoint").startswith(f"{tmp_path / 'no such checkpoint'}: no such folder. Fix:")
    broken = tmp_path / "run" / "checkpoint-9"
    broken.mkdir(parents=True)
    (broken / "adapter_config.json").write_text("{}")
    (broken.parent / "args.json").write_text((checkpoint.parent / "args.json").read_text())
    said = _refused(broken)
    assert "is not complete (no adapter weights)" in said and said.endswith("Fix: use another checkpoint.")
    merged = tmp_path / "checkpoint-9-merged"
    merged.mkdir()
    (merged / "config.json").write_text(json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]}))
    said = _refused(merged)
    assert "is not complete (" in said and said.endswith("Fix: merge it again (delete the folder first).")
    assert not (tmp_path / "out" / "servers").exists() or not any((tmp_path / "out" / "servers").iterdir())


def test_a_run_without_a_finished_checkpoint_is_refused(tmp_path, monkeypatch):
    import helpers.paths
    from helpers.history import Run

    monkeypatch.setattr(helpers.paths, "OUTPUT_DIR", tmp_path / "out")
    run = Run(run_dir=tmp_path / "out" / "ci" / "001-exp1", label="exp1", track="ci")
    said = _refused(run)
    assert said.startswith("run ") and said.endswith("has no finished checkpoint to serve. Fix: train it to its first "
                                                     "evaluation (or pick a run from runs() that has one).")


class _Scripted:
    """What swift deploy answers to a calculator-trained model, turn by turn: the calls come back raw."""

    def __init__(self, replies):
        self.replies, self.sent = list(replies), []
        self.chat = self
        self.completions = self

    def create(self, **kw):
        self.sent.append(kw)
        text, reason = self.replies.pop(0)
        choice = type("C", (), {"message": type("M", (), {"content": text}), "finish_reason": reason})
        return type("R", (), {"choices": [choice], "usage": type("U", (), {"completion_tokens": len(text)})})


def test_the_client_side_calculator_answers_each_call_and_lets_the_model_go_on():
    client = _Scripted([("Area = <<18 × 6 ÷ 2", "stop"), (" m².\n{{ans:54}}", "stop")])
    text = ask_with_calculator(client, "tuned", [{"role": "user", "content": "q"}], max_tokens=100)
    assert text == "Area = <<18 × 6 ÷ 2>>54 m².\n{{ans:54}}"
    assert client.sent[1]["messages"][-1] == {"role": "assistant", "content": "Area = <<18 × 6 ÷ 2>>54"}
    assert all(s["stop"] == [">>"] and s["temperature"] == 0 for s in client.sent)
