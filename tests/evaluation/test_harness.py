"""The lm-evaluation-harness bridge: lm-eval's tasks as an evaluation run's benchmark, its numbers
stored beside ours. The shipped local task runs offline on a tiny model, and its accuracy equals
the one computed independently with our own engine on the same choices."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from evaluation import harness
from evaluation.models import EvaluationResult
from evaluation.services import start_evaluation
from jobs.models import Run
from jobs.runner import execute
from jobs.services import RunError
from tests.jobs.conftest import _migrated_sqlite_template, shared_db  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)
REPO = Path(__file__).resolve().parents[2]
CAPITALS = REPO / "data" / "lm-eval" / "rlchf_capitals" / "capitals.jsonl"


@pytest.fixture(autouse=True)
def _dirs(settings, tmp_path, tiny_model_dir):
    settings.EVALUATION_ENGINE_SUBPROCESS = False
    settings.MODELS_DIR = tiny_model_dir.parent
    settings.ARTIFACTS_DIR = tmp_path / "artifacts"
    settings.VAR_DIR = tmp_path / "var"


def _config(model_dir: Path, **bench) -> dict:
    return {"models": [{"name": "tiny", "path": str(model_dir)}],
            "benchmarks": [{"name": "lm_eval", "tasks": ["rlchf_capitals"], **bench}], "device": "cpu"}


def _expected(engine) -> dict[str, float]:
    """lm-eval's acc and acc_norm on the capitals task, computed our way: each choice scored as
    " <choice>" after "Question: ...\\nAnswer:", the highest log-likelihood (per byte for
    acc_norm) picked."""
    docs = [json.loads(line) for line in CAPITALS.read_text().splitlines() if line.strip()]
    requests = [(f"Question: {d['question']}\nAnswer:", f" {c}") for d in docs for c in d["choices"]]
    scores = engine.loglikelihood_one_at_a_time(requests)
    acc, acc_norm, at = [], [], 0
    for d in docs:
        ll = np.array(scores[at:at + len(d["choices"])])
        at += len(d["choices"])
        lengths = np.array([len(f" {c}".encode()) for c in d["choices"]])
        acc.append(int(np.argmax(ll)) == d["answer"])
        acc_norm.append(int(np.argmax(ll / lengths)) == d["answer"])
    return {"acc": float(np.mean(acc)), "acc_norm": float(np.mean(acc_norm)), "n": len(docs)}


def _results(erun) -> dict[str, EvaluationResult]:
    return {r.metric: r for r in EvaluationResult.objects.filter(evaluation=erun, source="lm-eval")}


# ---------------------------------------------------------------- results, pure


def test_metric_rows_turn_lm_eval_results_into_ours() -> None:
    output = {
        "results": {"taskA": {"alias": "taskA", "acc,none": 0.5, "acc_stderr,none": 0.1, "acc_norm,none": 0.75,
                              "acc_norm_stderr,none": "N/A", "exact_match,strict": 1.0, "exact_match_stderr,strict": 0.0}},
        "n-samples": {"taskA": {"original": 10, "effective": 4}},
    }
    rows = {r["metric"]: r for r in harness.metric_rows(output)}
    assert set(rows) == {"acc", "acc_norm", "exact_match (strict)"}
    assert rows["acc"] == {"metric": "acc", "scope": "category", "scope_value": "taskA", "value": 0.5,
                           "ci_low": pytest.approx(0.5 - 0.196), "ci_high": pytest.approx(0.5 + 0.196), "n": 4}
    assert rows["acc_norm"]["ci_low"] is None and rows["acc_norm"]["value"] == 0.75
    assert rows["exact_match (strict)"]["ci_low"] == rows["exact_match (strict)"]["ci_high"] == 1.0


def test_intervals_of_shares_stay_within_0_and_1_and_others_do_not() -> None:
    output = {"results": {"t": {"acc,none": 0.95, "acc_stderr,none": 0.1, "perplexity,none": 3.0, "perplexity_stderr,none": 2.0}}}
    rows = {r["metric"]: r for r in harness.metric_rows(output)}
    assert (rows["acc"]["ci_low"], rows["acc"]["ci_high"]) == (pytest.approx(0.754), 1.0)
    assert (rows["perplexity"]["ci_low"], rows["perplexity"]["ci_high"]) == (pytest.approx(3.0 - 3.92), pytest.approx(3.0 + 3.92))


def test_metric_rows_keep_no_nan() -> None:
    output = {"results": {"t": {"acc,none": math.nan, "acc_stderr,none": math.nan, "f1,none": 0.5, "f1_stderr,none": math.nan}}}
    rows = {r["metric"]: r for r in harness.metric_rows(output)}
    assert rows["acc"]["value"] is None and rows["acc"]["ci_low"] is None
    assert rows["f1"]["value"] == 0.5 and rows["f1"]["ci_high"] is None


# ---------------------------------------------------------------- validation


def test_a_built_in_task_name_is_accepted_without_its_data(owner, project, tiny_model_dir):
    erun = start_evaluation(owner=owner, project=project, config=_config(tiny_model_dir, tasks=["hellaswag", "rlchf_capitals"], limit=2))
    assert erun.run.config["benchmarks"][0] == {"name": "lm_eval", "tasks": ["hellaswag", "rlchf_capitals"], "limit": 2}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tasks": ["no_such_task_xyz"]}, "benchmarks[0].tasks: lm-evaluation-harness has no task, group or tag named 'no_such_task_xyz'"),
        ({"tasks": []}, "benchmarks[0].tasks must list"),
        ({"tasks": "rlchf_capitals"}, "benchmarks[0].tasks must list"),
        ({"include_path": "/etc"}, "benchmarks[0].include_path: '/etc' is outside the allowed directories"),
        ({"include_path": "data/../config"}, "benchmarks[0].include_path: 'data/../config' is outside"),
        ({"include_path": "data/lm-eval/rlchf_capitals/capitals.jsonl"}, "is not a directory of lm-eval task YAMLs"),
        ({"limit": 0}, "benchmarks[0].limit must be an integer of at least 1"),
        ({"num_fewshot": -1}, "benchmarks[0].num_fewshot must be an integer of at least 0"),
        ({"batch_size": True}, "benchmarks[0].batch_size must be an integer"),
        ({"model_args": "trust_remote_code=True"}, "benchmarks[0]: unknown field(s) model_args"),
    ],
)
def test_bad_lm_eval_config_is_refused_naming_the_field(owner, project, tiny_model_dir, change, message):
    with pytest.raises(RunError, match=message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(").replace(")", r"\)")):
        start_evaluation(owner=owner, project=project, config=_config(tiny_model_dir, **change))
    assert not Run.objects.exists()


def test_without_lm_eval_installed_the_benchmark_is_refused(owner, project, tiny_model_dir, monkeypatch):
    monkeypatch.setattr(harness, "installed", lambda: False)
    with pytest.raises(RunError, match=r"benchmarks\[0\]: lm-evaluation-harness is not installed .*our own benchmarks can"):
        start_evaluation(owner=owner, project=project, config=_config(tiny_model_dir))
    assert not Run.objects.exists()


def _local_task(root: Path, name: str, data_files: str) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    (folder / f"{name}.yaml").write_text(
        f"task: {name}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {data_files}\ntest_split: test\n"
        "output_type: multiple_choice\ndoc_to_text: \"{{question}}\"\ndoc_to_choice: \"{{choices}}\"\n"
        "doc_to_target: answer\nmetric_list:\n  - metric: acc\nmetadata:\n  version: 2.0\n"
    )
    return folder


def test_a_local_task_cannot_read_data_outside_the_data_roots(owner, project, tiny_model_dir, settings):
    include = settings.VAR_DIR / "benchmarks" / "lm-eval"
    _local_task(include, "rlchf_sneaky", "../../../../../../../../etc/passwd")
    with pytest.raises(RunError, match=r"benchmarks\[0\]\.tasks: lm-eval task rlchf_sneaky: data_files: .* is outside the allowed directories"):
        start_evaluation(owner=owner, project=project,
                         config=_config(tiny_model_dir, tasks=["rlchf_sneaky"], include_path=str(include)))
    assert not Run.objects.exists()


# ---------------------------------------------------------------- runs


def test_the_shipped_task_on_a_tiny_model_equals_our_own_scoring(owner, project, tiny_model_dir, tiny_engine, client):
    erun = start_evaluation(owner=owner, project=project, config=_config(tiny_model_dir))
    run = execute(erun.run.pk)
    assert run.status == Run.Status.SUCCEEDED, run.error
    results = _results(erun)
    assert set(results) == {"acc", "acc_norm"}
    expected = _expected(tiny_engine)
    for metric in ("acc", "acc_norm"):
        row = results[metric]
        assert row.value == pytest.approx(expected[metric]), metric
        assert (row.benchmark, row.scope, row.scope_value, row.n) == ("lm_eval", "category", "rlchf_capitals", 6)
        assert row.benchmark_version.startswith("lm-eval 0.4.") and row.config_hash == erun.config_hash
        assert row.ci_low is not None and row.ci_low <= row.value <= row.ci_high
    assert "lm-eval task rlchf_capitals: version 1.0" in run.log

    owner.user_permissions.add(Permission.objects.get(codename="add_project"))
    client.force_login(owner)
    url = reverse("evaluation-run-report", args=[project.public_id, erun.pk])
    page = client.get(url).content.decode()
    assert "rlchf_capitals" in page and "(lm-eval)" in page and f"{expected['acc']:.3f}" in page
    markdown = client.get(url, {"format": "md"}).content.decode()
    assert "| lm_eval (lm-eval 0.4." in markdown and "rlchf_capitals" in markdown


def test_a_local_task_from_the_include_path_with_its_limit(owner, project, tiny_model_dir, tiny_engine, settings):
    include = settings.VAR_DIR / "benchmarks" / "lm-eval"
    folder = _local_task(include, "rlchf_local", "items.jsonl")
    (folder / "items.jsonl").write_text("".join(
        json.dumps({"question": f"Q{i}?", "choices": ["yes", "no", "maybe"], "answer": i % 3}) + "\n" for i in range(5)))
    erun = start_evaluation(owner=owner, project=project,
                            config=_config(tiny_model_dir, tasks=["rlchf_local"], include_path=str(include), limit=3))
    run = execute(erun.run.pk)
    assert run.status == Run.Status.SUCCEEDED, run.error
    acc = _results(erun)["acc"]
    assert acc.n == 3 and acc.scope_value == "rlchf_local"
    picks = [int(np.argmax(tiny_engine.loglikelihood_one_at_a_time([(f"Q{i}?", f" {c}") for c in ("yes", "no", "maybe")])))
             for i in range(3)]
    assert acc.value == pytest.approx(np.mean([p == i % 3 for i, p in enumerate(picks)]))


def test_a_built_in_task_whose_data_cannot_be_fetched_fails_with_one_line(owner, project, tiny_model_dir, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    erun = start_evaluation(owner=owner, project=project, config=_config(tiny_model_dir, tasks=["hellaswag"], limit=2))
    run = execute(erun.run.pk)
    assert run.status == Run.Status.FAILED
    cause = run.error.splitlines()[0]
    assert cause.startswith("lm-eval task hellaswag: its data could not be loaded ("), cause
    assert not EvaluationResult.objects.filter(evaluation=erun).exists()


# ---------------------------------------------------------------- the default mode: an engine child process


@pytest.fixture
def child_mode(settings, shared_db, monkeypatch, tmp_path):  # noqa: F811
    settings.EVALUATION_ENGINE_SUBPROCESS = True
    monkeypatch.setenv("DATABASE_URL", shared_db)  # the child opens the test's database
    for name, value in (("RLCHF_MODELS_DIR", settings.MODELS_DIR), ("RLCHF_ARTIFACTS_DIR", settings.ARTIFACTS_DIR),
                        ("RLCHF_VAR_DIR", settings.VAR_DIR)):
        monkeypatch.setenv(name, str(value))


def _researcher_and_project():
    from django.contrib.auth import get_user_model

    from annotation.services import create_project

    owner = get_user_model().objects.create_user("res", password="x")
    return owner, create_project(owner=owner, name="Eval", status="active")


def test_in_the_child_a_task_without_its_data_fails_the_run_with_one_line(child_mode, settings, tiny_model_dir):
    include = settings.VAR_DIR / "benchmarks" / "lm-eval"
    _local_task(include, "rlchf_missing", "nowhere.jsonl")
    owner, project = _researcher_and_project()
    erun = start_evaluation(owner=owner, project=project,
                            config=_config(tiny_model_dir, tasks=["rlchf_missing"], include_path=str(include)))
    run = execute(erun.run.pk)
    assert run.status == Run.Status.FAILED
    cause = run.error.splitlines()[0]
    assert cause.startswith("lm-eval task rlchf_missing: its data could not be loaded (") and "nowhere.jsonl" in cause, cause
    assert cause.endswith("exited with code 1)")


@pytest.mark.slow
def test_smollm2_in_the_child_equals_our_own_scoring(child_mode, settings, monkeypatch):
    from evaluation.engine import ScoringEngine
    from synthetic.model_store import prepare_default_model

    model_dir = prepare_default_model(REPO / "var" / "models" / "smollm2-135m-instruct")
    settings.MODELS_DIR = model_dir.parent
    monkeypatch.setenv("RLCHF_MODELS_DIR", str(model_dir.parent))
    owner, project = _researcher_and_project()
    erun = start_evaluation(owner=owner, project=project, config=_config(model_dir))
    run = execute(erun.run.pk)
    assert run.status == Run.Status.SUCCEEDED, run.error
    assert "evaluation_engine" in run.log
    results = _results(erun)
    expected = _expected(ScoringEngine(model_dir, device="cpu"))
    assert results["acc"].value == pytest.approx(expected["acc"]) and results["acc"].n == 6
    assert results["acc_norm"].value == pytest.approx(expected["acc_norm"])
    assert expected["acc"] > 0.25  # a real model beats chance on capitals; the tiny random one need not
