"""The function a cluster job runs (submitit pickles it by value, so the job needs no Django):
start `accelerate launch` in its own process group, stream its output to the job's log, and pass
a cancel (SIGTERM from scancel, SIGINT from submitit's local executor) on to the whole group."""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys


def run_command(argv: list[str], cwd: str, env: dict[str, str]) -> int:
    proc = subprocess.Popen(argv, cwd=cwd, env={**os.environ, **env}, stdout=subprocess.PIPE,  # noqa: S603
                            stderr=subprocess.STDOUT, text=True, errors="replace", start_new_session=True)

    def stop(signum: int, frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR2):
        signal.signal(sig, stop)
    assert proc.stdout is not None
    for line in proc.stdout:
        sys.stdout.write(line)
        sys.stdout.flush()
    code = proc.wait()
    if code != 0:
        raise RuntimeError(f"{os.path.basename(argv[0])} exited with code {code}")
    return code
