"""Child processes (swift sft / export, downloads): started in a session of their own, stopped as a whole tree,
never outliving the process that started them, one training per machine.

`swift sft` starts Python, which may start torchrun, whose workers sit in sessions of their own: a signal to
one pid leaves the rest training as orphans. So every child

- is started with `start_new_session=True`, and carries a token in its environment (`FTLAB_GUARD`) that
  all of its descendants inherit, so the whole tree can be found even after a rank was re-parented;
- has a guard: a small process (`python -m helpers.process guard …`) that holds the read end of a pipe
  whose write end only the starting process has. When that process dies (a kernel restart, a crash,
  SIGKILL, a closed terminal), the pipe reads end-of-file and the guard stops the whole tree within a
  few seconds, then notes why in the run folder. PDEATHSIG would reach only the first child, not
  swift's trainer below it.

`stop` sends SIGINT to the tree (swift still writes its summary), then SIGKILL to whatever is left.
`TrainingLock` keeps a second training of this course from starting while one is live.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import psutil

from . import paths

GUARD_ENV = "FTLAB_GUARD"  # the token every process of one guarded tree carries in its environment
STOPPED_FILE = "ftlab_stopped.json"  # written into a run folder by the guard that stopped its tree
LOCK_DIR_ENV = "FTLAB_LOCK_DIR"  # where the machine's training lock lives (default: the temp folder)


def alive(pid: int | None) -> bool:
    """Is the process `pid` still there (and not a zombie)?"""
    if not pid:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def owner_words() -> str:
    """Who started a child, as the run list says it: the notebook, or the command in a terminal."""
    return "the notebook" if "ipykernel" in sys.modules else "the command"


def tree(pid: int | None, token: str = "", seen=()) -> list[psutil.Process]:
    """Every live process of one started command: `pid`, its descendants, those seen before and every
    process whose environment carries `token` (ranks re-parented when their launcher died)."""
    found: dict[int, psutil.Process] = {}
    for p in [pid, *seen]:
        proc = _process(p) if p else None
        if proc is None:
            continue
        found[proc.pid] = proc
        try:
            found.update((c.pid, c) for c in proc.children(recursive=True))
        except psutil.Error:
            pass
    if token:
        for proc in psutil.process_iter():
            try:
                if proc.pid != os.getpid() and proc.environ().get(GUARD_ENV) == token:
                    found[proc.pid] = proc
            except psutil.Error:
                continue
    return [p for p in found.values() if p.pid != os.getpid()]


def stop_tree(pid: int | None, token: str = "", seen=(), grace: float = 3.0, first=signal.SIGINT) -> None:
    """`first` to the whole tree (SIGINT lets swift write its summary), SIGKILL after `grace` s to what is left."""
    procs = tree(pid, token, seen)
    if pid:
        _signal_group(pid, first)
    for p in procs:
        _signal(p, first)
    _, left = psutil.wait_procs(procs, timeout=grace)
    if pid:
        _signal_group(pid, signal.SIGKILL)
    for p in left + tree(pid, token, seen):  # anything started during the grace period, too
        _signal(p, signal.SIGKILL)
    psutil.wait_procs(left, timeout=2)


class Child:
    """One started command, its log file, its guard, and every descendant seen while it ran.

    `run_dir` (optional) is where the guard writes why it stopped the tree, if it has to.
    """

    def __init__(self, argv: list[str], log_path: Path, env: dict | None = None, cwd: Path | None = None,
                 run_dir: Path | None = None, lock: TrainingLock | None = None):
        self.log_path = Path(log_path)
        self.token = uuid.uuid4().hex
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(argv, cwd=cwd or paths.COURSE_ROOT, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True,
                                          env={**os.environ, **(env or {}), GUARD_ENV: self.token})
        self.pid = self.popen.pid
        self.seen: set[int] = set()
        self.lock = lock
        if lock is not None:
            lock.update(pid=self.pid, guard=self.token)
        self._guard_fd, self._guard = _start_guard(self.pid, self.token, run_dir, lock)

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def poll(self) -> int | None:
        """Return code, or None while running; remembers the descendants it has now."""
        try:
            self.seen.update(c.pid for c in psutil.Process(self.pid).children(recursive=True))
        except psutil.Error:
            pass
        code = self.popen.poll()
        if code is not None:
            self._release_guard()
        return code

    def stop(self, grace: float = 3.0) -> None:
        """SIGINT the whole tree (swift writes its summary), then SIGKILL what is left; wait for all of it."""
        self.poll()
        stop_tree(self.pid, self.token, self.seen, grace)
        self.popen.wait(timeout=5)
        self._release_guard()

    def wait(self, poll_s: float = 0.5, on_poll=None) -> int:
        """Wait until it ends, calling `on_poll()` every `poll_s`; an interrupt stops the whole tree and re-raises."""
        try:
            while self.poll() is None:
                if on_poll:
                    on_poll()
                time.sleep(poll_s)
        except KeyboardInterrupt:
            self.stop()
            raise
        return self.popen.returncode

    def _release_guard(self) -> None:
        """The child has ended: closing our end of the pipe lets the guard go (it finds nothing to stop)."""
        if self._guard_fd is not None:
            os.close(self._guard_fd)
            self._guard_fd = None
        try:  # it goes at once (nothing to stop); reap it, so no zombie outlives this process
            self._guard.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        if self.lock is not None:  # released here at once, so the next training can start right away
            self.lock.release()


def _start_guard(pid: int, token: str, run_dir: Path | None, lock: TrainingLock | None) -> tuple[int, subprocess.Popen]:
    read_end, write_end = os.pipe()  # not inherited by swift: only this process holds the write end
    argv = [sys.executable, "-m", "helpers.process", "guard", str(read_end), str(pid), token,
            str(run_dir or ""), str(lock.path if lock else ""), owner_words()]
    guard = subprocess.Popen(argv, cwd=paths.COURSE_ROOT, pass_fds=(read_end,), start_new_session=True,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env={k: v for k, v in os.environ.items() if k != GUARD_ENV})
    os.close(read_end)
    return write_end, guard


def guard(fd: int, pid: int, token: str, run_dir: str, lock_path: str, owner: str, poll_s: float = 0.5) -> None:
    """The guard's loop: wait for the child to end (then go) or the starter to die (then stop the tree)."""
    seen: set[int] = set()
    starter_gone = False
    while alive(pid):
        ready, _, _ = select.select([fd], [], [], poll_s)
        if ready and os.read(fd, 1) == b"":  # end of file: the starting process closed it, or died
            starter_gone = alive(pid)  # it closes its end only after the child has ended
            break
        try:
            seen.update(c.pid for c in psutil.Process(pid).children(recursive=True))
        except psutil.Error:
            pass
    if starter_gone:
        stop_tree(pid, token, seen, grace=2.0, first=signal.SIGTERM)
        if run_dir and Path(run_dir).is_dir():
            note_stopped(Path(run_dir), f"{owner} that started it stopped")
    else:  # the child ended by itself: its re-parented leftovers (if any) go with it
        left = tree(None, token)
        if left:
            stop_tree(None, token, left, grace=2.0, first=signal.SIGTERM)
    if lock_path:
        TrainingLock(Path(lock_path)).release(token)


def note_stopped(run_dir: Path, why: str) -> None:
    """Say in a run folder why its tree was stopped from outside (its guard, or stop() from elsewhere)."""
    (Path(run_dir) / STOPPED_FILE).write_text(json.dumps({"why": why, "at": _now()}))


def stopped_note(run_dir: Path) -> str:
    """What `note_stopped` wrote there, or ''."""
    try:
        return json.loads((Path(run_dir) / STOPPED_FILE).read_text()).get("why", "")
    except (OSError, ValueError):
        return ""


# ---- one training per machine ----------------------------------------------------------------------------
class Busy(RuntimeError):
    """A training of this course is already running on this machine."""


class TrainingLock:
    """A file that names the live training (its run folder, its swift pid and guard token, who started it).

    Claimed with an exclusive create, so two starters can never both win. A lock whose processes are all
    gone (a crash, a power cut) is stale: the next claim takes it over and says so.
    """

    def __init__(self, path: Path | None = None):
        default = Path(tempfile.gettempdir()) / f"ftlab-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
        self.path = Path(path) if path else Path(os.environ.get(LOCK_DIR_ENV) or default) / "training.lock"
        self.token = ""

    def holder(self) -> dict | None:
        """What the lock file says, or None when there is none (or it is unreadable: a claim half-written)."""
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return None

    @staticmethod
    def is_live(info: dict) -> bool:
        return alive(info.get("pid")) or (not info.get("pid") and _same_process(info.get("owner"), info.get("owner_started")))

    def claim(self, what: str) -> str | None:
        """Take the lock for a training (`what`: the run folder it will use) or raise Busy naming the live one.

        Returns a note when a stale lock was taken over, else None.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.token = uuid.uuid4().hex
        me = psutil.Process()
        info = {"run": what, "owner": me.pid, "owner_started": me.create_time(), "by": owner_words(),
                "since": _now(), "token": self.token, "pid": None}
        note = None
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                held = self.holder()
                if held is None and time.time() - _mtime(self.path) < 5:
                    time.sleep(0.2)  # another claim is writing its file right now
                    continue
                if held is not None and self.is_live(held):
                    raise Busy(busy_message(held)) from None
                stale = self.path.with_name(f"{self.path.name}.stale-{me.pid}")
                os.replace(self.path, stale)  # atomic: only one claimant moves a given stale file
                stale.unlink(missing_ok=True)
                note = (f"Note: the training lock of {held.get('run', '?') if held else '?'} was left by a process "
                        "that is gone (it crashed or was killed); taken over." if held else None)
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(info, f)
            return note
        raise Busy(f"Could not take the training lock {self.path}. Fix: delete that file if no training is running.")

    def update(self, **fields) -> None:
        """Add the live process (swift's pid, the guard token) once it has started."""
        held = self.holder()
        if held and held.get("token") == self.token:
            held.update(fields)
            tmp = self.path.with_name(self.path.name + f".tmp-{os.getpid()}")
            tmp.write_text(json.dumps(held))
            os.replace(tmp, self.path)

    def release(self, token: str | None = None) -> None:
        """Remove the lock if it is still ours (a token from claim, or the child's guard token)."""
        token = token or self.token
        held = self.holder()
        if held and token and token in (held.get("token"), held.get("guard")):
            self.path.unlink(missing_ok=True)


def busy_message(held: dict) -> str:
    run = held.get("run", "?")
    pid = held.get("pid") or held.get("owner")
    return (f"Another training of this course is running on this machine: {run} (started {held.get('since', '?')} "
            f"by {held.get('by', 'a process')}, pid {pid}). Nothing was started: a second training at once would "
            "run out of GPU memory, or halve the speed of both on a CPU. Fix: wait for it to end "
            f"(`runs()` marks it live; `Run.load(\"{run}\").wait()` waits), or stop it: `stop(\"{run}\")` in a "
            f"notebook, `python -m helpers stop {run}` in a terminal.")


def _same_process(pid, started) -> bool:
    try:
        return bool(pid) and abs(psutil.Process(pid).create_time() - float(started or 0)) < 1
    except (psutil.Error, ValueError):
        return False


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _process(pid: int):
    try:
        return psutil.Process(pid)
    except psutil.Error:
        return None


def _signal(proc, sig) -> None:
    try:
        proc.send_signal(sig)
    except psutil.Error:
        pass


def _signal_group(pgid: int, sig) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def run(argv: list[str], log_path: Path, env: dict | None = None) -> int:
    """Start `argv`, wait for it (Ctrl-C stops its whole tree), return its exit code."""
    return Child(argv, log_path, env).wait()


if __name__ == "__main__" and sys.argv[1:2] == ["guard"]:
    fd_, pid_, token_, run_dir_, lock_, owner_ = sys.argv[2:8]
    guard(int(fd_), int(pid_), token_, run_dir_, lock_, owner_)
