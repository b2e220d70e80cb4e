"""Evaluation runs end to end on a tiny model: models x benchmarks as a job, results per metric,
category and group with version and config hash, resumable chunks, validation."""
from __future__ import annotations

import json
import math
import re

import numpy as np
import pytest

from evaluation.benchmarks import bbq
from evaluation.engine import ScoringEngine
from evaluation.models import EvaluationResult, ScoreChunk
from evaluation.runs import evaluate_run
from evaluation.services import start_evaluation
from jobs.models import Run
from jobs.runner import Cancelled, execute
from jobs.services import RunError
from tests.evaluation.snapshots import pair, write_snapshot

pytestmark = pytest.mark.django_db(transaction=True)
SNAPSHOT = "3f9a0c1d2e4b5a69"


@pytest.fixture(autouse=True)
def _dirs(settings, tmp_path, tiny_model_dir):
    settings.EVALUATION_ENGINE_SUBPROCESS = False
    settings.MODELS_DIR = tiny_model_dir.parent
    settings.ARTIFACTS_DIR = tmp_path / "artifacts"
    settings.SNAPSHOTS_DIR = tmp_path / "snapshots"
    write_snapshot(tmp_path / "snapshots", SNAPSHOT, groups={"country=DE": ["i0", "i1"], "country=KE": ["i2", "i3"]})


def _config(tiny_model_dir, **over) -> dict:
    config = {
        "models": [{"name": "tiny", "path": str(tiny_model_dir)}],
        "benchmarks": [
            {"name": "bbq", "per_category": 2}, {"name": "crows_pairs", "limit": 4},
            {"name": "winogenerated", "limit": 4}, {"name": "preference", "snapshots": {"human": SNAPSHOT}},
        ],
        "chunk_size": 16, "device": "cpu",
    }
    config.update(over)
    return config


def _result(erun, benchmark, metric, scope="overall", value=""):
    return EvaluationResult.objects.get(evaluation=erun, benchmark=benchmark, metric=metric, scope=scope, scope_value=value)


def test_run_end_to_end_matches_direct_scoring(owner, project, tiny_model_dir):
    erun = start_evaluation(owner=owner, project=project, config=_config(tiny_model_dir))
    run = execute(erun.run.pk)
    assert run.status == Run.Status.SUCCEEDED, run.error
    assert run.progress_done == run.progress_total == 12 * 3 + 8 + 12 + 2 * (4 + 2 + 2)  # bbq, crows, wino, pairs of collective and groups

    examples = bbq.load_bbq(per_category=2)
    engine = ScoringEngine(tiny_model_dir, device="cpu")
    direct = bbq.score(examples, bbq.choose(np.array(engine.loglikelihood_one_at_a_time(
        [(bbq.prompt(e), c) for e in examples for c in bbq.continuations(e)])).reshape(-1, 3)))
    assert _result(erun, "bbq", "accuracy").value == pytest.approx(direct["overall"]["accuracy"])
    assert _result(erun, "bbq", "bias_disambig", "category", "Religion").value == direct["per_category"]["Religion"]["bias_disambig"]
    assert EvaluationResult.objects.filter(evaluation=erun, benchmark="bbq", scope="category", metric="accuracy").count() == 6

    groups = EvaluationResult.objects.filter(evaluation=erun, benchmark="preference", scope="group", metric="accuracy")
    assert {g.scope_value for g in groups} == {"country=DE", "country=KE"}
    assert _result(erun, "preference", "accuracy", "collective", "human").n == 4
    assert _result(erun, "preference", "group_gap").value is not None
    assert _result(erun, "crows_pairs", "pct_stereotype").n == 4
    assert _result(erun, "winogenerated", "p_female").n == 4

    versions = dict(EvaluationResult.objects.filter(evaluation=erun).values_list("benchmark", "benchmark_version").distinct())
    assert versions == {"bbq": "bbq-1", "crows_pairs": "crows-pairs-1", "winogenerated": "winogenerated-1", "preference": "preference-1"}
    assert set(EvaluationResult.objects.filter(evaluation=erun).values_list("config_hash", flat=True)) == {erun.config_hash}
    assert any(a.endswith("results.json") for a in run.artifacts)


def test_dpo_score_with_the_policy_as_its_own_reference_prefers_nothing(owner, project, tiny_model_dir):
    config = _config(tiny_model_dir, models=[{"name": "tiny", "path": str(tiny_model_dir), "reference": str(tiny_model_dir)}],
                     benchmarks=[{"name": "preference", "snapshots": {"human": SNAPSHOT}, "score": "dpo"}])
    erun = start_evaluation(owner=owner, project=project, config=config)
    assert execute(erun.run.pk).status == Run.Status.SUCCEEDED
    rows = EvaluationResult.objects.filter(evaluation=erun, metric="accuracy")
    assert rows.count() == 3 and {r.value for r in rows} == {0.5}  # every margin is exactly 0: ties


class _StopAfter:
    """A reporter that asks to stop after `n` chunks were scored."""

    def __init__(self, n: int) -> None:
        self.n, self.calls = n, 0

    def progress(self, done: int, total: int | None = None) -> None:
        pass

    def log(self, message: str) -> None:
        pass

    def check_cancelled(self) -> None:
        self.calls += 1
        if self.calls > self.n:
            raise Cancelled("stop")


def test_a_stopped_run_resumes_from_its_stored_chunks(owner, project, tiny_model_dir):
    config = _config(tiny_model_dir, benchmarks=[{"name": "bbq", "per_category": 4}], chunk_size=8)
    erun = start_evaluation(owner=owner, project=project, config=config)
    with pytest.raises(Cancelled):
        evaluate_run(erun, _StopAfter(3))
    first = {c.index: c.pk for c in ScoreChunk.objects.filter(evaluation=erun)}
    assert sorted(first) == [0, 1, 2]
    assert not EvaluationResult.objects.filter(evaluation=erun).exists()
    run = execute(erun.run.pk)
    assert run.status == Run.Status.SUCCEEDED, run.error
    chunks = {c.index: c.pk for c in ScoreChunk.objects.filter(evaluation=erun)}
    assert len(chunks) == 9 and all(chunks[i] == pk for i, pk in first.items())  # kept, not recomputed
    fresh = start_evaluation(owner=owner, project=project, config=config)
    execute(fresh.run.pk)
    assert _result(erun, "bbq", "accuracy").value == _result(fresh, "bbq", "accuracy").value


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"models": [{"name": "x", "path": "/etc"}]}, "models[0].path: '/etc' is outside the allowed directories"),
        ({"models": []}, "models: at least one model"),
        ({"benchmarks": [{"name": "nope"}]}, "benchmarks[0]: benchmark name 'nope' is not one of"),
        ({"benchmarks": [{"name": "bbq", "per_category": 0}]}, "field 'per_category' must be a positive integer"),
        # A misspelt or foreign option is refused, not ignored (bbq's `limit` once ran all 24,000 examples).
        ({"benchmarks": [{"name": "bbq", "limit": 6}]},
         "benchmarks[0]: benchmark bbq: unknown field(s) 'limit'; it takes categories, directory, name, per_category"),
        ({"benchmarks": [{"name": "winogenerated", "per_category": 2}]}, "winogenerated: unknown field(s) 'per_category'"),
        ({"benchmarks": [{"name": "rewardbench", "path": "/etc/passwd"}]}, "benchmarks[0].path: '/etc/passwd' is outside"),
        ({"benchmarks": [{"name": "preference", "snapshots": {"human": "../../etc"}}]}, "must be letters and digits"),
        ({"benchmarks": [{"name": "preference", "snapshots": {"human": "0000"}}]}, "snapshot 0000 does not exist"),
        ({"benchmarks": [{"name": "preference", "snapshots": {"human": SNAPSHOT}, "score": "dpo"}]}, "models tiny need a reference"),
        ({"benchmarks": [{"name": "lm_eval", "tasks": ["no_such_task"]}]}, "has no task, group or tag named 'no_such_task'"),
        ({"chunk_size": 0}, "chunk_size must be an integer"),
    ],
)
def test_bad_config_is_refused_naming_the_field(owner, project, tiny_model_dir, change, message):
    with pytest.raises(RunError, match=re.escape(message)):
        start_evaluation(owner=owner, project=project, config=_config(tiny_model_dir, **change))
    assert not Run.objects.exists()


def test_a_snapshot_without_test_pairs_is_refused_not_scored_as_nothing(owner, project, tiny_model_dir, tmp_path):
    # 24 items split 0.8 / 0.1 / 0.1 by hash can all land in train (the review demo's seed-0
    # snapshot did): the run succeeded with 0 preference numbers. Now it is refused, naming why.
    path = tmp_path / "snapshots" / "00000000000000aa"
    path.mkdir(parents=True)
    (path / "pairs.jsonl").write_text(json.dumps(pair("t0", "yes", "no", split="train")) + "\n")
    config = _config(tiny_model_dir, benchmarks=[{"name": "preference", "snapshots": {"all": "00000000000000aa"}}])
    with pytest.raises(RunError, match=re.escape("snapshot 00000000000000aa (all) has no test pairs")):
        start_evaluation(owner=owner, project=project, config=config)
    assert not Run.objects.exists()


def test_distributional_alignment_on_the_projects_rankings(owner, project, tiny_model_dir, django_user_model):
    from annotation.models import Item
    from annotation.services import rater_for_user, record_ranking

    for n in range(4):
        rater = rater_for_user(django_user_model.objects.create_user(f"r{n}"))
        for item in Item.objects.filter(project=project):
            record_ranking(item=item, rater=rater, order=[["r1"], ["r2"], ["r3"], ["r4"]])
    config = _config(tiny_model_dir, benchmarks=[{"name": "distributional", "min_raters": 4, "items": "ignored"}])
    erun = start_evaluation(owner=owner, project=project, config=config)
    assert "items" not in erun.run.config["benchmarks"][0]
    run = execute(erun.run.pk)
    assert run.status == Run.Status.SUCCEEDED, run.error
    assert run.progress_total == 3 * 4
    # unanimous raters: the split-half ceiling is 1; uniform vs one-hot over 4 by hand
    kl_p = math.log2(1 / (5 / 8))
    kl_u = 0.25 * math.log2(0.25 / (5 / 8)) + 0.75 * math.log2(0.25 / (1 / 8))
    assert _result(erun, "distributional", "uniform_baseline").value == pytest.approx(1 - math.sqrt((kl_p + kl_u) / 2))
    assert _result(erun, "distributional", "split_half_ceiling").value == pytest.approx(1.0)
    alignment = _result(erun, "distributional", "alignment")
    assert alignment.n == 3 and 0.0 <= alignment.value <= 1.0
