"""Evaluation API: every route for the project's researchers who may create projects only (the
pages' rule: annotators, outsiders and researchers without the permission 404, anonymous 401,
nothing created), configs checked by the run kinds' validators (400 under `config`, nothing
stored), valid creates queued without running, cancel and resume, the report and its exports,
blind comparisons' results."""
from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from annotation.services import rater_for_user, record_ranking
from evaluation.blind import create_blind_project
from evaluation.models import BlindComparison, EvaluationResult, EvaluationRun
from evaluation.services import start_evaluation
from jobs.models import Run
from tests.evaluation.report_data import make_report_run
from training.models import Experiment, ExperimentCondition, RegisteredModel

pytestmark = pytest.mark.django_db


def api(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def eval_config(model_dir, **overrides) -> dict:
    # winogenerated: the benchmark whose data loads fastest (the validator builds the task).
    return {"models": [{"name": "tiny", "path": str(model_dir)}], "benchmarks": [{"name": "winogenerated", "limit": 2}],
            "chunk_size": 8, "device": "cpu", **overrides}


def blind_config(model_dir) -> dict:
    return {"name": "Blind 2", "models": [{"name": "a", "path": str(model_dir)}, {"name": "b", "path": str(model_dir)}],
            "limit": 2, "max_new_tokens": 4}


@pytest.fixture
def world(owner, project, tmp_path, tiny_model_dir, settings):
    """A finished run with results, a queued run, an experiment with a ready base model, a blind comparison."""
    settings.MODELS_DIR = tiny_model_dir.parent
    owner.user_permissions.add(Permission.objects.get(codename="add_project", content_type__app_label="annotation"))
    done = make_report_run(owner, project, tmp_path)
    queued = start_evaluation(owner=owner, project=project, config=eval_config(tiny_model_dir), name="queued")
    base = RegisteredModel.objects.create(owner=owner, project=project, name="tiny", kind="base",
                                          path=str(tiny_model_dir))
    experiment = Experiment.objects.create(owner=owner, project=project, name="exp", base_model=base)
    ExperimentCondition.objects.create(experiment=experiment, name="base", feedback="base", model=base)
    generations = {"alpha": [f"A{n}" for n in range(3)], "beta": [f"B{n}" for n in range(3)]}
    comparison = create_blind_project(owner=owner, source_project=project, name="Blind 1", seed=1,
                                      prompts=[{"id": f"q{n}", "prompt": f"Q{n}?"} for n in range(3)],
                                      generations=generations)
    return {"p": project.public_id, "done": done.run.public_id, "queued": queued.run.public_id,
            "experiment": experiment.public_id, "comparison": comparison.pk, "tiny": tiny_model_dir}


# (method, path, body, the researcher's status)
ROUTES = [
    ("get", "/api/v1/projects/{p}/evaluation-runs/", None, 200),
    ("post", "/api/v1/projects/{p}/evaluation-runs/", lambda w: {"name": "n", "config": eval_config(w["tiny"])}, 201),
    ("get", "/api/v1/evaluation-runs/{done}/", None, 200),
    ("get", "/api/v1/evaluation-runs/{done}/report/", None, 200),
    ("post", "/api/v1/evaluation-runs/{queued}/cancel/", None, 200),
    ("post", "/api/v1/evaluation-runs/{done}/resume/", None, 409),  # succeeded: nothing to resume
    ("get", "/api/v1/experiments/{experiment}/evaluations/", None, 200),
    ("post", "/api/v1/experiments/{experiment}/evaluations/", lambda w: {"per_category": 2}, 201),
    ("get", "/api/v1/projects/{p}/blind-comparisons/", None, 200),
    ("post", "/api/v1/projects/{p}/blind-comparisons/", lambda w: {"config": blind_config(w["tiny"])}, 202),
    ("get", "/api/v1/blind-comparisons/{comparison}/", None, 200),
    ("get", "/api/v1/blind-comparisons/{comparison}/results/", None, 200),
]
IDS = [f"{m} {p}" for m, p, _, _ in ROUTES]


def _call(world: dict, user, method: str, path: str, body):
    url = path.format(**{k: world[k] for k in ("p", "done", "queued", "experiment", "comparison")})
    return getattr(api(user), method)(url, body(world) if body else None, format="json")


def _state() -> tuple:
    return (Run.objects.count(), EvaluationRun.objects.count(), BlindComparison.objects.count(),
            tuple(Run.objects.order_by("pk").values_list("status", "cancel_requested")))


@pytest.mark.parametrize(("method", "path", "body", "expected"), ROUTES, ids=IDS)
@pytest.mark.parametrize("who", ["annotator", "outsider", "researcher_without_permission", "anonymous"])
def test_only_the_projects_researchers_reach_any_route(world, owner, annotator, outsider, method, path, body, expected,
                                                       who):
    user = {"annotator": annotator, "outsider": outsider, "researcher_without_permission": owner,
            "anonymous": None}[who]
    if who == "researcher_without_permission":
        owner.user_permissions.clear()
        owner = type(owner).objects.get(pk=owner.pk)  # a fresh permission cache
        user = owner
    before = _state()
    assert _call(world, user, method, path, body).status_code == (401 if user is None else 404)
    assert _state() == before  # nothing created, nothing cancelled


@pytest.mark.parametrize(("method", "path", "body", "expected"), ROUTES, ids=IDS)
def test_the_researcher_reaches_every_route(world, owner, method, path, body, expected):
    response = _call(world, owner, method, path, body)
    assert response.status_code == expected, response.content[:500]


# ---------------------------------------------------------------- evaluation runs


def test_create_a_run_queues_it_without_running(world, owner, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = api(owner).post(f"/api/v1/projects/{world['p']}/evaluation-runs/",
                                   {"name": "scripted", "config": eval_config(world["tiny"])}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    run = Run.objects.get(public_id=body["id"])
    assert run.kind == "evaluation" and run.status == Run.Status.QUEUED and run.task_id  # handed to the Tasks API
    assert body["name"] == "scripted" and body["benchmarks"] == ["winogenerated"] and body["results"] == []
    assert body["models"][0]["path"] == str(world["tiny"]) and body["config_hash"] == run.evaluation.config_hash


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ({"config": {"models": [{"name": "x", "path": "/etc"}], "benchmarks": [{"name": "bbq"}]}}, "config",
         "models[0].path: '/etc' is outside the allowed directories"),
        ({"config": {"models": [], "benchmarks": [{"name": "bbq"}]}}, "config", "models: at least one model"),
        ({"config": "{}"}, "config", "Expected a dictionary"),
        ({"name": "x"}, "config", "required"),
        ({"name": "x" * 201, "config": {}}, "name", "no more than 200"),
    ],
)
def test_create_a_run_refuses_with_the_field_named(world, owner, body, field, message):
    before = _state()
    response = api(owner).post(f"/api/v1/projects/{world['p']}/evaluation-runs/", body, format="json")
    assert response.status_code == 400
    assert message in " ".join(response.json()[field]), response.json()
    assert _state() == before


def test_unknown_benchmark_and_chunk_size_are_named_inside_config(world, owner):
    for config, message in ((eval_config(world["tiny"], benchmarks=[{"name": "nope"}]), "benchmarks[0]"),
                            (eval_config(world["tiny"], chunk_size=0), "chunk_size must be an integer"),
                            (eval_config(world["tiny"], chunk_size=10**30), "chunk_size must be an integer")):
        response = api(owner).post(f"/api/v1/projects/{world['p']}/evaluation-runs/", {"config": config}, format="json")
        assert response.status_code == 400 and message in response.json()["config"][0], response.json()


def test_a_path_longer_than_the_filesystem_allows_is_refused(world, owner):
    config = eval_config(world["tiny"], models=[{"name": "t", "path": str(world["tiny"].parent / ("a" * 300))}])
    before = _state()
    response = api(owner).post(f"/api/v1/projects/{world['p']}/evaluation-runs/", {"config": config}, format="json")
    assert response.status_code == 400 and "File name too long" in response.json()["config"][0]
    assert _state() == before


def test_a_number_json_cannot_carry_is_refused(world, owner):
    """1e999 parses as infinity: the BBQ seed's int() raised OverflowError, a server error."""
    config = '{"models": [{"name": "t", "path": "%s"}], "benchmarks": [{"name": "bbq", "seed": 1e999}]}'
    before = _state()
    response = api(owner).post(f"/api/v1/projects/{world['p']}/evaluation-runs/",
                               '{"config": %s}' % (config % world["tiny"]), content_type="application/json")
    assert response.status_code == 400 and "config" in response.json(), response.content
    assert _state() == before


def test_detail_has_every_result_per_metric_category_and_group(world, owner):
    body = api(owner).get(f"/api/v1/evaluation-runs/{world['done']}/").json()
    assert body["status"] == "succeeded" and len(body["results"]) == EvaluationResult.objects.count() == 7
    rows = {(r["model"], r["metric"], r["scope"], r["scope_value"]): r for r in body["results"]}
    assert rows[("base", "bias_ambig", "category", "Age")]["value"] == 0.12
    assert rows[("dpo-human", "accuracy", "group", "country=KE")]["ci_low"] == 0.55
    assert rows[("dpo-human", "accuracy", "overall", "")]["benchmark_version"] == "bbq-1"
    listed = api(owner).get(f"/api/v1/projects/{world['p']}/evaluation-runs/").json()
    assert listed["count"] == 2 and "results" not in listed["results"][0]


def test_report_as_data_and_as_the_pages_exports(world, owner):
    client, url = api(owner), f"/api/v1/evaluation-runs/{world['done']}/report/"
    data = client.get(url).json()
    assert data["config_hash"] == "feedfacecafebeef" and [c["name"] for c in data["conditions"]] == ["base", "dpo-human"]
    assert data["welfare"][0]["model"] == "dpo-human" and data["welfare"][0]["worst_group"] == "country=KE"
    assert len(data["results"]) == 7 and data["conditions"][1]["lineage"]["snapshot"] == "3f9a0c1d2e4b5a69"
    assert client.get(url, {"format": "json"}).json() == data
    rows = list(csv.DictReader(io.StringIO(client.get(url, {"format": "csv"}).content.decode())))
    assert len(rows) == 7 and {r["model"] for r in rows} == {"base", "dpo-human"}
    markdown = client.get(url, {"format": "md"})
    assert markdown["Content-Type"].startswith("text/markdown") and "| bbq (bbq-1) | accuracy |" in markdown.content.decode()
    html = client.get(url, {"format": "html"})
    assert html.status_code == 200 and "0.470" in html.content.decode() and "attachment" in html["Content-Disposition"]
    bad = client.get(url, {"format": "xlsx"})
    assert bad.status_code == 400 and "format" in bad.json()


def test_cancel_then_resume(world, owner):
    client = api(owner)
    cancelled = client.post(f"/api/v1/evaluation-runs/{world['queued']}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = client.post(f"/api/v1/evaluation-runs/{world['queued']}/cancel/")
    assert again.status_code == 409 and "already cancelled" in again.json()["detail"]
    resumed = client.post(f"/api/v1/evaluation-runs/{world['queued']}/resume/")
    assert resumed.status_code == 200 and resumed.json()["status"] == "queued"


# ---------------------------------------------------------------- experiments


def test_evaluate_an_experiment(world, owner, django_capture_on_commit_callbacks):
    url = f"/api/v1/experiments/{world['experiment']}/evaluations/"
    with django_capture_on_commit_callbacks(execute=True):
        made = api(owner).post(url, {"per_category": 3}, format="json")
    assert made.status_code == 201, made.content
    body = made.json()
    assert body["experiment"] == str(world["experiment"]) and body["status"] == "queued"
    assert body["config"]["benchmarks"] == [{"name": "bbq", "per_category": 3}]
    assert Run.objects.get(public_id=body["id"]).task_id
    listed = api(owner).get(url).json()
    assert [r["id"] for r in listed["results"]] == [body["id"]]


def test_evaluate_an_experiment_refusals(world, owner):
    url = f"/api/v1/experiments/{world['experiment']}/evaluations/"
    before = _state()
    for per_category in (0, 100_001, "many"):
        response = api(owner).post(url, {"per_category": per_category}, format="json")
        assert response.status_code == 400 and "per_category" in response.json()
    ExperimentCondition.objects.update(model=None)
    response = api(owner).post(url, {}, format="json")
    assert response.status_code == 409 and "no condition with a ready model" in response.json()["detail"]
    assert _state() == before


# ---------------------------------------------------------------- blind comparisons


def test_blind_comparison_list_detail_and_results(world, owner, annotator):
    comparison = BlindComparison.objects.get(pk=world["comparison"])
    rater = rater_for_user(annotator)
    for item in comparison.project.items.all():
        winner = next(r for r, m in comparison.assignment[item.external_id].items() if m == "alpha")
        record_ranking(item=item, rater=rater, order=[[winner], ["r2" if winner == "r1" else "r1"]])
    client = api(owner)
    listed = client.get(f"/api/v1/projects/{world['p']}/blind-comparisons/").json()
    assert listed["count"] == 1 and listed["results"][0]["ranking_project"] == str(comparison.project.public_id)
    detail = client.get(f"/api/v1/blind-comparisons/{comparison.pk}/").json()
    assert detail["model_names"] == ["alpha", "beta"] and detail["items"] == 3 and detail["name"] == "Blind 1"
    results = client.get(f"/api/v1/blind-comparisons/{comparison.pk}/results/").json()
    assert results["overall"]["rankings"] == 3 and results["overall"]["win_rate"] == {"alpha": 1.0, "beta": 0.0}
    assert results["annotators"] == 1 and results["groups"] == {}
    # The annotator ranks in the blind project, yet the comparison stays hidden from them.
    assert api(annotator).get(f"/api/v1/blind-comparisons/{comparison.pk}/results/").status_code == 404


def test_blind_comparison_create_queues_generation_or_names_the_problem(world, owner,
                                                                        django_capture_on_commit_callbacks):
    url = f"/api/v1/projects/{world['p']}/blind-comparisons/"
    before = _state()
    bad = api(owner).post(url, {"config": {"models": [{"name": "a", "path": str(world["tiny"])}]}}, format="json")
    assert bad.status_code == 400 and "at least two models" in bad.json()["config"][0]
    assert _state() == before
    with django_capture_on_commit_callbacks(execute=True):
        made = api(owner).post(url, {"config": blind_config(world["tiny"])}, format="json")
    assert made.status_code == 202
    run = Run.objects.get(public_id=made.json()["id"])
    assert run.kind == "blind-generation" and run.status == Run.Status.QUEUED and run.task_id
    assert BlindComparison.objects.count() == 1  # created when the generation succeeds


def test_a_huge_comparison_id_is_a_404(world, owner):
    assert api(owner).get(f"/api/v1/blind-comparisons/{10**30}/").status_code == 404
