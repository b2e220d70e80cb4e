"""No request reaches a user as a server error: known cases first, then schemathesis over the
whole OpenAPI schema with real object ids (PostgreSQL pass of CI):

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/rlchf DB_SERVER_SIDE_BINDING=1 \
        .venv/bin/python -m pytest tests/annotation/test_api_no_server_errors.py
"""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from config.pagination import MAX_PAGE_SIZE

pytestmark = pytest.mark.django_db

HUGE = "9" * 30  # beyond 64 bits


@pytest.mark.parametrize(
    "query",
    [f"limit={HUGE}", f"limit={2**63}", f"limit={2**63 - 1}", f"offset={HUGE}", f"limit=10&offset={2**63 - 1}",
     f"limit={HUGE}&offset={HUGE}", "limit=-1", "offset=-5", "limit=abc", "limit=0"],
)
def test_paging_parameters_of_any_size_are_never_a_server_error(project, owner, query):
    client = APIClient()
    client.force_authenticate(owner)
    for url in ("/api/v1/projects/", "/api/v1/rankings/", f"/api/v1/projects/{project.public_id}/items/"):
        response = client.get(f"{url}?{query}")
        assert response.status_code == 200, (url, query, response.status_code)


def test_a_limit_beyond_the_ceiling_gives_the_largest_page(project, owner):
    from rest_framework.request import Request
    from rest_framework.test import APIRequestFactory

    from config.pagination import BoundedLimitOffsetPagination

    request = Request(APIRequestFactory().get(f"/api/v1/rankings/?limit={HUGE}"))
    assert BoundedLimitOffsetPagination().get_limit(request) == MAX_PAGE_SIZE
    client = APIClient()
    client.force_authenticate(owner)
    body = client.get(f"/api/v1/projects/{project.public_id}/items/?limit={HUGE}").json()
    assert body["count"] == 3 and len(body["results"]) == 3


ODD_BODIES = [[1, 2], "x", 5, None, True, {"username": ["a"]}, {"ranking": {"a": 1}}, {"name": "x" * 10_000},
              {"items": "x"}, {"items": [None]}]


@pytest.mark.parametrize("body", ODD_BODIES, ids=[type(b).__name__ + str(i) for i, b in enumerate(ODD_BODIES)])
def test_a_json_body_of_any_shape_is_never_a_server_error(project, owner, annotator, body):
    """Bodies the schema does not describe (DELETE's, top-level lists and scalars) included."""
    from django.contrib.auth.models import Permission

    from annotation.services import next_assignment

    owner.user_permissions.add(Permission.objects.get(codename="add_project", content_type__app_label="annotation"))
    lease = next_assignment(project=project, user=annotator)
    p = f"/api/v1/projects/{project.public_id}"
    calls = [(owner, m, url) for url in ("/api/v1/projects/", f"{p}/", f"{p}/members/", f"{p}/items/", f"{p}/import/",
                                         f"{p}/next/", "/api/v1/profile/")
             for m in ("post", "put", "patch", "delete")]
    calls += [(annotator, "post", f"/api/v1/assignments/{lease.public_id}/{verb}/") for verb in ("submit", "skip")]
    errors = []
    for user, method, url in calls:
        client = APIClient()
        client.force_authenticate(user)
        response = getattr(client, method)(url, body, format="json")
        if response.status_code >= 500:
            errors.append(f"{method.upper()} {url} {body!r:.60} -> {response.status_code}")
    assert not errors, "\n".join(errors)


@pytest.mark.parametrize(
    "raw",
    ["[" * 100_000,
     '[{"prompt": "p", "responses": [{"id": "a", "text": "A"}, {"id": "b", "text": "B"}], "metadata": {"x": 1e999}}]',
     '{"items": [{"prompt": "p", "responses": ["a", "b"], "metadata": {"\\ud800": 1}}]}'],
    ids=["nested-too-deeply", "infinity", "surrogate-key"],
)
def test_json_no_database_stores_is_a_400(project, owner, raw):
    client = APIClient()
    client.force_authenticate(owner)
    for url in (f"/api/v1/projects/{project.public_id}/items/", f"/api/v1/projects/{project.public_id}/import/",
                "/api/v1/profile/", "/api/v1/projects/"):
        response = client.post(url, raw, content_type="application/json")
        assert 400 <= response.status_code < 500, (url, response.status_code)
    assert project.items.count() == 3


# ---------------------------------------------------------------- schemathesis over the whole schema

# Bounded: every operation gets this many generated requests (about 60 operations).
FUZZ_EXAMPLES = 15


@pytest.fixture
def fuzz_world(project, owner, annotator, annotator2, tmp_path):
    """Real objects for the path parameters, and tokens: the owner (a researcher with the
    add_project permission) and an annotator holding a lease and a ranking of their own; a
    registered model, a training run, an experiment, an evaluation run with results and a blind
    comparison in the owner's project (rows only: nothing is trained or scored)."""
    from django.contrib.auth.models import Permission
    from rest_framework.authtoken.models import Token

    from annotation.services import next_assignment, submit_ranking

    owner.user_permissions.add(Permission.objects.get(codename="add_project", content_type__app_label="annotation"))
    ranking = submit_ranking(user=annotator2, assignment=next_assignment(project=project, user=annotator2),
                             order=[["r1"], ["r2"], ["r3"], ["r4"]])
    lease = next_assignment(project=project, user=annotator)
    return {
        "project": str(project.public_id), "item": project.items.order_by("pk").first().pk,
        "assignment": str(lease.public_id), "ranking": ranking.pk,
        "owner": Token.objects.create(user=owner).key, "annotator": Token.objects.create(user=annotator).key,
        **_training_and_evaluation(project, owner, tmp_path),
    }


def _training_and_evaluation(project, owner, tmp_path) -> dict:  # noqa: ANN001
    from evaluation.blind import create_blind_project
    from jobs.models import Run
    from tests.evaluation.report_data import make_report_run
    from training.models import Experiment, ExperimentCondition, RegisteredModel, TrainingRun

    model = RegisteredModel.objects.create(owner=owner, project=project, name="m", kind="base", path=str(tmp_path))
    run = Run.objects.create(kind="training", owner=owner, project=project, queue="gpu",
                             config={"recipe": "dpo", "hyperparameters": {}, "gpus": 0, "preset": ""})
    TrainingRun.objects.create(run=run, project=project, recipe="dpo", base_model=model, snapshot_id="0" * 16,
                               output_dir=str(tmp_path / "out"), config_hash="0" * 16)
    experiment = Experiment.objects.create(owner=owner, project=project, name="e", base_model=model)
    ExperimentCondition.objects.create(experiment=experiment, name="base", feedback="base", model=model)
    erun = make_report_run(owner, project, tmp_path)
    blind = create_blind_project(owner=owner, source_project=project, name="b", prompts=[{"id": "q", "prompt": "Q?"}],
                                 generations={"a": ["A"], "b": ["B"]})
    return {"model": str(model.public_id), "training_run": str(run.public_id), "experiment": str(experiment.public_id),
            "evaluation_run": str(erun.run.public_id), "comparison": blind.pk}


@pytest.fixture
def api_schema(db):
    import schemathesis
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    # The WSGI handler runs each request in the test's thread, on the test's database connection,
    # so the fixture's uncommitted objects are visible (ASGI would hop threads). As in Django's
    # test client, the start and end of a request must not close that connection.
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    try:
        yield schemathesis.openapi.from_wsgi("/api/v1/schema/", WSGIHandler())
    finally:
        for signal in (request_started, request_finished):
            signal.connect(close_old_connections)


def _path_ids(path: str, world: dict) -> tuple[dict, str]:
    """Real object ids for the path's parameters, and whose token the request carries."""
    if path.startswith("/api/v1/assignments/"):
        return {"public_id": world["assignment"]}, world["annotator"]
    run = world["evaluation_run"] if path.startswith("/api/v1/evaluation-runs/") else world["training_run"]
    ids = {"project_id": world["project"], "public_id": world["project"],
           "id": world["ranking"] if path.startswith("/api/v1/rankings/") else world["item"],
           "model_id": world["model"], "run_id": run, "experiment_id": world["experiment"],
           "comparison_id": world["comparison"]}
    return {name: value for name, value in ids.items() if "{" + name + "}" in path}, world["owner"]


def _fuzz(operation, mode, ids: dict, token: str) -> None:  # noqa: ANN001
    """Run generated requests of one operation; AssertionError on a 5xx, Unsatisfiable if none."""
    from hypothesis import HealthCheck, given, settings

    @given(case=operation.as_strategy(generation_mode=mode, path_parameters=ids or None))
    @settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def check(case) -> None:  # noqa: ANN001
        response = case.call(headers={"Authorization": f"Token {token}"})
        assert response.status_code < 500, (
            f"{case.method} {case.formatted_path} -> {response.status_code}\n{case.as_curl_command()}\n"
            f"{response.text[:1500]}"
        )

    check()


@pytest.mark.postgres
def test_no_generated_request_gets_a_server_error(api_schema, fuzz_world):
    """Every operation of /api/v1/schema/, valid and invalid inputs, real ids: no 5xx.

    Runs in CI's PostgreSQL pass (the production database, where an out-of-range value is a
    DataError); the SQLite pass skips it to keep the suite's time (about 30 s of fuzzing).
    """
    from django.db import connection
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode

    if connection.vendor != "postgresql":
        pytest.skip("the schema fuzzing runs in the PostgreSQL pass (scripts/test.sh), the production database")
    failures: list[str] = []
    unsatisfiable: list[str] = []
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 50  # the schema was read, with every operation (training and evaluation too)
    for operation in operations:
        ids, token = _path_ids(operation.path, fuzz_world)
        # Invalid inputs need something to make invalid: the path's ids are fixed, so an operation
        # with no query and no body has nothing (hypothesis would search in vain for seconds).
        modes = [GenerationMode.POSITIVE]
        if len(operation.query) or len(operation.body):
            modes.append(GenerationMode.NEGATIVE)
        for mode in modes:
            try:
                _fuzz(operation, mode, ids, token)
            except Unsatisfiable:
                unsatisfiable.append(f"{operation.label} ({mode.value})")
            except AssertionError as exc:
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)
    assert not unsatisfiable, unsatisfiable  # every operation was exercised
