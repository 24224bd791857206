"""Child processes (swift sft / export, downloads): started in a session of their own, stopped as a whole tree.

`swift sft` starts Python, which may start torchrun, whose workers sit in process groups of their own:
a signal to one pid leaves the rest training as orphans. So every child is started with
`start_new_session=True`, its descendants are remembered while it runs (psutil), and `stop` sends
SIGINT to all of them (swift still writes its summary line), then SIGKILL to whatever is left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import psutil

from . import paths


def alive(pid: int | None) -> bool:
    """Is the process `pid` still there (and not a zombie)?"""
    if not pid:
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


class Child:
    """One started command, its log file and every descendant seen while it ran."""

    def __init__(self, argv: list[str], log_path: Path, env: dict | None = None, cwd: Path | None = None):
        self.log_path = Path(log_path)
        with open(self.log_path, "ab") as log:
            self.popen = subprocess.Popen(argv, cwd=cwd or paths.COURSE_ROOT, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True,
                                          env={**os.environ, **(env or {})})
        self.pid = self.popen.pid
        self.seen: set[int] = set()

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def poll(self) -> int | None:
        """Return code, or None while running; remembers the descendants it has now."""
        try:
            self.seen.update(c.pid for c in psutil.Process(self.pid).children(recursive=True))
        except psutil.Error:
            pass
        return self.popen.poll()

    def stop(self, grace: float = 3.0) -> None:
        """SIGINT the whole tree (swift writes its summary), then SIGKILL what is left; wait for all of it."""
        self.poll()
        procs = [p for p in map(_process, self.seen) if p]
        _signal_group(self.pid, signal.SIGINT)
        for p in procs:
            _signal(p, signal.SIGINT)
        deadline = time.time() + grace
        while time.time() < deadline and self.popen.poll() is None:
            time.sleep(0.1)
        _signal_group(self.pid, signal.SIGKILL)
        for p in procs:
            _signal(p, signal.SIGKILL)
        self.popen.wait(timeout=5)
        psutil.wait_procs(procs, timeout=2)

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
