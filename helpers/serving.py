"""Take your model home: `swift deploy` serves the base model and the fine-tuned one behind an OpenAI-compatible
API on this machine, for the learner's own `openai` client (the protocol their Q&A bot already speaks).

    server = serve(best_run)          # prints the base URL and the two model names; waits until it answers
    client = server.client()          # openai.OpenAI(base_url=..., api_key=...)
    client.chat.completions.create(model="tuned", messages=[...], temperature=0)
    server.stop()

One server holds both models: the base model under its folder's name and the LoRA adapter as "tuned"
(`--adapters tuned=CKPT`). So the base weights are loaded once (3 GB on the gpu track instead of 6), no merge is
needed first, and a side-by-side question compares the two in one process with one template. A merged folder or a
plain model is served alone (a merged folder as "tuned").

Like a training, the server is a guarded child (process.py): in a session of its own, stopped as a whole tree
with `stop()`, and by its guard when the kernel or command that started it dies. It listens on 127.0.0.1 unless
`host=` says otherwise, on a port checked free before it starts (swift would silently take the next one). Every
live server is listed by `servers()` (and `python -m helpers runs`).
"""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from . import calculator, inference, models, paths, process, swift_runner
from .history import checkpoint_to_use, is_run

TUNED = "tuned"  # the fine-tuned model's name on the server
API_KEY = "ftlab"  # swift deploy without --api_key accepts any key; the openai client insists on one
SERVER_FILE = "ftlab_server.json"


def servers_dir() -> Path:
    return paths.OUTPUT_DIR / "servers"


@dataclass
class Server:
    """A running `swift deploy`: where to reach it, what it serves, and how to stop it."""

    url: str  # the OpenAI base URL, http://HOST:PORT/v1
    names: dict  # {"base": name, "tuned": name} (only those it serves)
    folder: Path  # its log and its record
    command: str
    pid: int | None = None
    child: process.Child | None = field(default=None, repr=False)

    @property
    def log_path(self) -> Path:
        return self.folder / "swift-deploy.log"

    @property
    def alive(self) -> bool:
        return process.alive(self.pid) if self.child is None else self.child.poll() is None

    def client(self, **kwargs):
        """The official `openai` client pointed at this server."""
        from openai import OpenAI

        return OpenAI(base_url=self.url, api_key=API_KEY, **kwargs)

    def stop(self) -> None:
        """Stop the server's whole process tree (and forget it); safe to call twice."""
        if self.child is not None:
            self.child.stop()
        elif self.pid and process.alive(self.pid):
            process.stop_tree(self.pid, _record(self.folder).get("guard", ""))
        _write_record(self.folder, {**_record(self.folder), "stopped": datetime.now().isoformat(timespec="seconds")})

    def __str__(self) -> str:
        names = ", ".join(f"{v!r} ({k})" for k, v in self.names.items())
        state = "running" if self.alive else "stopped"
        return f"Server {state} at {self.url} — models: {names}"


def _record(folder: Path) -> dict:
    try:
        return json.loads((folder / SERVER_FILE).read_text())
    except (OSError, ValueError):
        return {}


def _write_record(folder: Path, info: dict) -> None:
    (folder / SERVER_FILE).write_text(json.dumps(info, indent=1))


def port_in_use(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _sources(model_or_run) -> tuple[Path, str | None, str | None, Path | None, Path | None]:
    """(base folder, model_type, template, adapter or None, merged/plain tuned folder or None), checked."""
    if is_run(model_or_run) and not checkpoint_to_use(model_or_run):
        raise ValueError(f"run {paths.short(model_or_run.run_dir)} has no finished checkpoint to serve. Fix: train "
                         "it to its first evaluation (or pick a run from runs() that has one).")
    if isinstance(model_or_run, (str, Path)) and not Path(model_or_run).is_dir():
        raise ValueError(f"{model_or_run}: no such folder. Fix: pass a Run, a checkpoint-N folder or a model folder "
                         "(runs() lists them).")
    folder = Path(model_or_run) if isinstance(model_or_run, (str, Path)) else None
    if folder is not None and not (folder / "adapter_config.json").is_file():
        _refuse_incomplete(folder, models.folder_problems(folder), None)  # before resolve() reads its files
    base, model_type, template, adapter, _, _ = inference.resolve(model_or_run)
    for folder in (base, adapter):
        if folder is None:
            continue
        problems = models.folder_problems(folder) if adapter is None or folder == base else _adapter_problems(folder)
        _refuse_incomplete(folder, problems, adapter)
    if adapter is None and not isinstance(model_or_run, models.Model) and base.name.endswith("-merged"):
        return base, model_type, template, None, base
    return base, model_type, template, adapter, None


def _refuse_incomplete(folder: Path, problems: list[str], adapter: Path | None) -> None:
    if problems:
        raise ValueError(f"{paths.short(folder)} is not complete ({'; '.join(problems)}). Fix: "
                         + ("merge it again (delete the folder first)" if folder.name.endswith("-merged")
                            else "use another checkpoint" if folder == adapter else "run `make setup` again")
                         + ".")


def _adapter_problems(folder: Path) -> list[str]:
    weights = [folder / "adapter_model.safetensors", folder / "adapter_model.bin"]
    problems = [] if any(w.is_file() and w.stat().st_size > 0 for w in weights) else ["no adapter weights"]
    try:
        json.loads((folder / "adapter_config.json").read_text())
    except (OSError, ValueError):
        problems.append("adapter_config.json missing or unreadable")
    return problems


def deploy_command(model_or_run, host: str, port: int, more: dict | None = None) -> tuple[list[str], dict]:
    """The `swift deploy` arguments and the served names ({"base": ..., "tuned": ..., and `more`'s names})."""
    base, model_type, template, adapter, tuned_folder = _sources(model_or_run)
    adapters = {TUNED: adapter} if adapter is not None else {}
    for name, other in (more or {}).items():
        other_base, _, _, other_adapter, _ = _sources(other)
        if other_adapter is None or other_base.resolve() != base.resolve() or tuned_folder is not None:
            raise ValueError(f"more={{{name!r}: ...}} must be a run or checkpoint trained from the same base model "
                             f"({paths.short(base)}). Fix: serve it on its own server.")
        adapters[name] = other_adapter
    args = ["--model", paths.arg_path(tuned_folder or base)]
    if model_type:
        args += ["--model_type", model_type]
    if template:
        args += ["--template", template]
    if tuned_folder is not None:  # a merged model is the fine-tuned one
        args += ["--served_model_name", TUNED]
        names = {TUNED: TUNED}
    else:
        names = {"base": base.name, **{n: n for n in adapters}}
    if adapters:
        args += ["--adapters", *(f"{n}={paths.arg_path(a)}" for n, a in adapters.items())]
    args += ["--infer_backend", "transformers", "--host", host, "--port", str(port), "--verbose", "false"]
    return args, names


def _health(url_root: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url_root}/health", timeout=timeout) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


def serve(model_or_run, more: dict | None = None, host: str = "127.0.0.1", port: int | None = None,
          timeout: float = 300, show: bool = True) -> Server:
    """Start `swift deploy` for a Run (base + its best checkpoint as "tuned"), a checkpoint, a merged folder or a
    Model; return once the server answers. `more={"calculator": run6}` serves more adapters of the same base
    model from the same server. Everything is checked before anything starts."""
    if port is not None and port_in_use(host, port):
        raise ValueError(f"port {port} on {host} is in use. Fix: serve(..., port=None) picks a free one, or stop "
                         f"what listens there (`python -m helpers runs` lists the course's servers).")
    port = port or free_port(host)
    args, names = deploy_command(model_or_run, host, port, more)
    folder = servers_dir() / f"{datetime.now():%Y%m%d-%H%M%S}-{port}"
    folder.mkdir(parents=True, exist_ok=False)
    command = swift_runner.printable("deploy", args)
    if show:
        print("Running from the course folder:\n  " + command, flush=True)
    child = swift_runner.launch("deploy", args, folder / "swift-deploy.log", run_dir=folder)
    root = f"http://{f'[{host}]' if ':' in host else host}:{port}"
    server = Server(f"{root}/v1", names, folder, command, child.pid, child)
    _write_record(folder, {"url": server.url, "names": names, "pid": child.pid, "guard": child.token,
                           "host": host, "port": port, "command": command,
                           "started": datetime.now().isoformat(timespec="seconds")})
    _wait_ready(server, root, timeout)
    if show:
        print(f"Serving at {server.url}: " + ", ".join(f"{v!r}" for v in names.values())
              + " (base URL for the openai client; any api_key). Stop it with server.stop().")
    return server


def _wait_ready(server: Server, url_root: str, timeout: float) -> None:
    t0 = time.time()
    try:
        while not _health(url_root):
            if server.child.poll() is not None:
                raise RuntimeError(f"swift deploy stopped while loading the model (exit {server.child.returncode}):\n"
                                   f"{swift_runner.swift_error(server.log_path)}\nNothing was changed; fix the cause "
                                   "above and serve again.")
            if time.time() - t0 > timeout:
                server.stop()
                raise RuntimeError(f"swift deploy did not answer within {timeout:.0f} s (its log: "
                                   f"{paths.short(server.log_path)}). Fix: serve(..., timeout=600) on a slow machine.")
            time.sleep(0.5)
    except KeyboardInterrupt:
        server.stop()
        raise


def servers() -> list[Server]:
    """The course's live servers on this machine (started from any notebook or terminal)."""
    found = []
    for f in sorted(servers_dir().glob(f"*/{SERVER_FILE}")):
        info = _record(f.parent)
        if info.get("stopped") or not process.alive(info.get("pid")):
            continue
        found.append(Server(info["url"], info["names"], f.parent, info.get("command", ""), info["pid"]))
    return found


def ask_with_calculator(client, model: str, messages: list[dict], max_tokens: int = 256) -> str:
    """Experiment 6's model through the server. The server sends the model's calls raw (`<<18 × 6>>` with no
    result: a client sees only what the model writes); here the course's calculator answers each call on the
    client's side and the model goes on from its own answer (swift continues a trailing assistant message).
    Greedy, like the exam; `max_tokens` counts the model's tokens."""
    text, spent = "", 0
    while spent < max_tokens:
        turn = messages + ([{"role": "assistant", "content": text}] if text else [])
        reply = client.chat.completions.create(model=model, messages=turn, temperature=0, max_tokens=max_tokens - spent,
                                               stop=[calculator.CLOSE])
        spent += reply.usage.completion_tokens if reply.usage else max_tokens
        text += reply.choices[0].message.content or ""
        if reply.choices[0].finish_reason != "stop" or text.rfind(calculator.OPEN) <= text.rfind(calculator.CLOSE):
            break  # it ended by itself, or ran out of tokens: no call left open
        text += calculator.CLOSE + (calculator.answer(text + calculator.CLOSE) or "")  # malformed: left as written
    return text.strip()
