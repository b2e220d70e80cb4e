"""Run kinds used only by the tests; the worker subprocess imports this module through
JOBS_EXTRA_HANDLER_MODULES, the test process through tests/jobs/conftest.py."""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from jobs.registry import register


def validate_count(config: dict[str, Any]) -> dict[str, Any]:
    n = config.get("n")
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"config.n must be a positive integer, got {n!r}")
    if "work_dir" not in config:
        raise ValueError("config.work_dir is missing")
    return {"n": n, "work_dir": str(config["work_dir"]), "sleep": float(config.get("sleep", 0.0))}


@register("test-count", label="Test counting", validate=validate_count)
def count(run, ctx) -> None:
    """Produces one file per unit; a resumed run skips the units whose file exists."""
    work = Path(run.config["work_dir"])
    work.mkdir(parents=True, exist_ok=True)
    n = run.config["n"]
    for i in range(n):
        ctx.check_cancelled()
        unit = work / f"unit-{i}.txt"
        if not unit.exists():
            time.sleep(run.config["sleep"])
            with open(work / "computed.log", "a") as fh:  # one line per unit actually computed
                fh.write(f"{i}\n")
            unit.write_text(str(i * i))
            ctx.log(f"computed unit {i}")
        ctx.progress(i + 1, n)
    summary = work / "summary.txt"
    summary.write_text(f"{n} units")
    ctx.artifact(summary)


@register("test-fail", label="Test failure")
def fail(run, ctx) -> None:
    ctx.log("about to fail")
    raise RuntimeError("boom: the handler failed on purpose")


@register("test-crash", label="Test child crash")
def crash(run, ctx) -> None:
    code = "import sys; print('child starting', flush=True); sys.exit(3)"
    ctx.run_subprocess([sys.executable, "-c", code])


@register("test-child-sleep", label="Test long child")
def child_sleep(run, ctx) -> None:
    code = "import time\nfor i in range(600):\n    print('tick', i, flush=True)\n    time.sleep(0.1)\n"
    ctx.run_subprocess([sys.executable, "-c", code])
