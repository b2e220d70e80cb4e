"""The run API: the run pages' rule (the owner and the project's researchers; annotators and
outsiders 404, anonymous 401), status and log tail, cancel and resume."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from annotation.models import Membership
from annotation.services import add_member
from jobs.models import Run

pytestmark = pytest.mark.django_db


@pytest.fixture
def run(owner, project):
    return Run.objects.create(kind="test-count", owner=owner, project=project, progress_done=3, progress_total=12,
                              log="computed unit 2\n", config={"n": 12})


def api(user) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


@pytest.mark.parametrize(("method", "verb"), [("get", ""), ("post", "cancel/"), ("post", "resume/")])
def test_who_reaches_a_run(run, owner, annotator, outsider, method, verb):
    url = f"/api/v1/runs/{run.public_id}/{verb}"
    for user, code in ((annotator, 404), (outsider, 404), (None, 401)):
        assert getattr(api(user), method)(url).status_code == code
    run.refresh_from_db()
    assert run.status == Run.Status.QUEUED and not run.cancel_requested
    add_member(project=run.project, user=outsider, role=Membership.Role.RESEARCHER)  # another researcher
    assert getattr(api(outsider), method)(url).status_code in (200, 409)


def test_status_log_cancel_and_resume(run, owner):
    client = api(owner)
    body = client.get(f"/api/v1/runs/{run.public_id}/").json()
    assert (body["status"], body["percent"], body["log"]) == ("queued", 25.0, "computed unit 2\n")
    assert body["project"] == str(run.project.public_id) and body["kind"] == "test-count"
    assert client.post(f"/api/v1/runs/{run.public_id}/resume/").status_code == 409
    assert client.post(f"/api/v1/runs/{run.public_id}/cancel/").json()["status"] == "cancelled"
    assert client.post(f"/api/v1/runs/{run.public_id}/cancel/").status_code == 409
    assert client.post(f"/api/v1/runs/{run.public_id}/resume/").json()["status"] == "queued"
