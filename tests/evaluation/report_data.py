"""A finished evaluation run with hand-written results, shared by the view and browser tests."""
from __future__ import annotations

import json
from pathlib import Path

from evaluation.models import EvaluationResult, EvaluationRun
from jobs.models import Run


def make_report_run(researcher, project, tmp_path: Path) -> EvaluationRun:
    """A finished evaluation run of two models with results stored by hand (no engine)."""
    model_dir = tmp_path / "dpo-human"
    model_dir.mkdir()
    (model_dir / "lineage.json").write_text(json.dumps({
        "model": "dpo-human", "base": "smollm2", "recipe": "dpo", "objective": "sigmoid",
        "snapshot": "3f9a0c1d2e4b5a69", "config_hash": "abc123def4567890", "code_version": "x", "created_at": "2026-12-01"}))
    run = Run.objects.create(kind="evaluation", owner=researcher, project=project, status=Run.Status.SUCCEEDED, config={
        "models": [{"name": "base", "path": str(tmp_path / "base")}, {"name": "dpo-human", "path": str(model_dir)}],
        "benchmarks": [{"name": "bbq"}, {"name": "preference", "snapshots": {"human": "3f9a0c1d2e4b5a69"}}]})
    erun = EvaluationRun.objects.create(run=run, project=project, config_hash="feedfacecafebeef")
    rows = [("base", "bbq", "accuracy", "overall", "", 0.41, 0.38, 0.44), ("dpo-human", "bbq", "accuracy", "overall", "", 0.47, 0.44, 0.5),
            ("base", "bbq", "bias_ambig", "category", "Age", 0.12, None, None),
            ("base", "preference", "accuracy", "group", "country=DE", 0.6, 0.5, 0.7),
            ("base", "preference", "accuracy", "group", "country=KE", 0.4, 0.3, 0.5),
            ("dpo-human", "preference", "accuracy", "group", "country=DE", 0.7, 0.6, 0.8),
            ("dpo-human", "preference", "accuracy", "group", "country=KE", 0.65, 0.55, 0.75)]
    for model, bench, metric, scope, value, v, lo, hi in rows:
        EvaluationResult.objects.create(
            evaluation=erun, model_name=model, model_path="", benchmark=bench, benchmark_version=f"{bench}-1",
            config_hash=erun.config_hash, metric=metric, scope=scope, scope_value=value, value=v, ci_low=lo, ci_high=hi, n=10)
    return erun
