"""`manage.py demo_experiment` end to end, as a user runs it: a fresh SQLite database and var
directory, the demo data, three snapshots, five conditions trained on the tiny model (real TRL,
CPU), one evaluation run, and the report's exports. Slow: about 4-5 minutes on two busy cores."""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CONDITIONS = ["base", "rlhf-baseline", "rlchf-humans", "rlchf-synthetic", "rlchf-both"]
BBQ_METRICS = {"accuracy", "accuracy_ambig", "accuracy_disambig", "bias_ambig", "bias_disambig"}

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


def manage(env: dict[str, str], *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=timeout)


@pytest.fixture
def fresh_install(tmp_path: Path) -> dict[str, str]:
    var = tmp_path / "var"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RLCHF_", "DATABASE_URL"))}
    env |= {"RLCHF_VAR_DIR": str(var), "DATABASE_URL": f"sqlite:///{var / 'db.sqlite3'}", "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1", "EVALUATION_ENGINE_SUBPROCESS": "1"}
    migrated = manage(env, "migrate", "-v0", timeout=180)
    assert migrated.returncode == 0, migrated.stderr
    return env


def test_demo_experiment_reproduces_the_loop_on_the_tiny_model(fresh_install, tmp_path):
    env = fresh_install
    bad = manage(env, "demo_experiment", "--model-dir", "/etc", "--steps", "1", timeout=300)
    assert bad.returncode != 0
    assert "demo_experiment failed at step 3/6 base model" in bad.stderr
    assert "--model-dir: '/etc' is outside the allowed directories" in bad.stderr

    report = tmp_path / "out" / "demo.html"
    done = manage(env, "demo_experiment", "--steps", "1", "--bbq-per-category", "1", "--output", str(report))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Research loop reproduced in" in done.stdout
    db = sqlite3.connect(Path(env["RLCHF_VAR_DIR"]) / "db.sqlite3")
    runs = db.execute("select kind, status from jobs_run where kind in ('training', 'evaluation')").fetchall()
    assert sorted(runs) == [("evaluation", "succeeded")] + [("training", "succeeded")] * 4
    erun_pk, project = db.execute("select e.id, p.public_id from evaluation_evaluationrun e "
                                  "join annotation_project p on p.id = e.project_id").fetchone()
    assert f"/evaluation/projects/{_uuid(project)}/runs/{erun_pk}/" in done.stdout

    exported = json.loads(report.with_suffix(".json").read_text())
    assert [c["name"] for c in exported["conditions"]] == CONDITIONS
    recipes = [c["lineage"].get("recipe") for c in exported["conditions"]]
    assert recipes == [None, "dpo", "dpo", "dpo", "dpo"]  # the base is the untrained model itself
    snapshots = {c["lineage"].get("snapshot") for c in exported["conditions"][1:]}
    assert len(snapshots) == 3  # humans (baseline and RLCHF humans), synthetic, both
    by_model: dict[str, set[tuple[str, str, str]]] = {}
    for r in exported["results"]:
        by_model.setdefault(r["model"], set()).add((r["benchmark"], r["metric"], r["scope"]))
    for name in CONDITIONS:
        got = by_model[name]
        assert {m for b, m, s in got if b == "bbq" and s == "overall"} >= BBQ_METRICS, name
        assert ("preference", "accuracy", "collective") in got and ("preference", "accuracy", "group") in got, name
        assert ("preference", "worst_group_accuracy", "overall") in got, name
    assert [w["model"] for w in sorted(exported["welfare"], key=lambda w: w["model"])] == sorted(CONDITIONS)

    html = report.read_text()
    assert "status Succeeded" in html
    assert all(name in html for name in CONDITIONS) and "Plotly" in html and '<script src="' not in html
    markdown = report.with_suffix(".md").read_text()
    assert "## Welfare view" in markdown
    assert report.with_suffix(".csv").read_text().count("\n") == len(exported["results"]) + 1


def _uuid(text: str) -> str:
    """SQLite stores UUIDs as 32 hex digits; URLs show the dashed form."""
    import uuid

    return str(uuid.UUID(text))
