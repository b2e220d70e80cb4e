"""Running heavy work in a child process whose output streams into a run's log.

The child gets its own process group, so stopping it also stops what it started (`accelerate
launch` spawns one process per GPU), and on Linux it is killed when the worker dies, so a
SIGKILLed worker never leaves a GPU job running unseen.
"""
from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence

logger = logging.getLogger(__name__)

POLL_SECONDS = 0.2
TERMINATE_GRACE_SECONDS = 10


class SubprocessFailed(RuntimeError):
    """The child process exited with a non-zero code."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def run_subprocess(
    argv: Sequence[str],
    *,
    on_line: Callable[[str], None],
    should_stop: Callable[[], bool],
    cwd: str | None = None,
    env: dict[str, str] | None = None,
) -> int:
    """Run argv to completion (or until should_stop()), passing each output line to on_line."""
    child_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    proc = subprocess.Popen(  # noqa: S603 - argv is built by the handler, never a shell string
        list(argv),
        cwd=cwd,
        env=child_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
        bufsize=1,
        start_new_session=True,
        preexec_fn=_die_with_parent if sys.platform == "linux" else None,  # noqa: PLW1509
    )
    lines: queue.Queue[str | None] = queue.Queue()
    reader = threading.Thread(target=_pump, args=(proc, lines), daemon=True)
    reader.start()
    finished = False
    while not finished:
        try:
            line = lines.get(timeout=POLL_SECONDS)
        except queue.Empty:
            line = ""
        if line is None:
            finished = True
        elif line:
            on_line(line.rstrip("\n"))
        if not finished and should_stop():
            _stop(proc)
            on_line(f"stopped subprocess {proc.pid}")
            break
    reader.join(timeout=TERMINATE_GRACE_SECONDS)
    return proc.wait()


def _pump(proc: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.put(line)
    lines.put(None)


def _stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM the child's process group, then SIGKILL it if it does not leave in time."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=TERMINATE_GRACE_SECONDS)
            return
        except subprocess.TimeoutExpired:
            logger.warning("subprocess %s ignored %s", proc.pid, sig.name)
