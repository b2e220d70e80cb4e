"""The annotation loop over the API: next, submit (idempotent, with the next assignment), skip."""
from __future__ import annotations

import uuid

import pytest
from rest_framework.test import APIClient

from annotation.models import Assignment, Item, Project, Ranking

pytestmark = pytest.mark.django_db

ORDER = [["r1"], ["r2", "r3"], ["r4"]]


@pytest.fixture
def annie(annotator) -> APIClient:
    client = APIClient()
    client.force_authenticate(annotator)
    return client


@pytest.fixture
def bob(annotator2) -> APIClient:
    client = APIClient()
    client.force_authenticate(annotator2)
    return client


def _next(client: APIClient, project: Project) -> dict:
    response = client.post(f"/api/v1/projects/{project.public_id}/next/")
    assert response.status_code == 200, response.content
    return response.json()


def _submit(client: APIClient, assignment_id: str, **body):
    body.setdefault("ranking", ORDER)
    return client.post(f"/api/v1/assignments/{assignment_id}/submit/", body, format="json")


def test_next_shows_responses_in_shown_order_without_sources(annie, project):
    payload = _next(annie, project)
    assignment = Assignment.objects.get(public_id=payload["id"])
    item = assignment.item
    assert [r["id"] for r in payload["responses"]] == assignment.shown_order
    texts = {r.response_id: r.text for r in item.responses.all()}
    assert all(r["text"] == texts[r["id"]] and set(r) == {"id", "text"} for r in payload["responses"])
    assert payload["item"] == {"prompt": item.prompt, "context": []}
    assert payload["settings"] == {"allow_ties": True, "allow_partial": False, "rationale": "optional"}
    assert b"demo" not in annie.post(f"/api/v1/projects/{project.public_id}/next/").content  # source label


def test_next_returns_the_held_lease_then_204_when_all_is_done(annie, project):
    first = _next(annie, project)
    assert _next(annie, project)["id"] == first["id"]
    payload = first
    for _ in range(3):
        response = _submit(annie, payload["id"], submission_id=str(uuid.uuid4()))
        assert response.status_code == 201
        payload = response.json()["next"]
    assert payload is None
    assert annie.post(f"/api/v1/projects/{project.public_id}/next/").status_code == 204


def test_next_on_an_inactive_project_is_409_with_a_reason(annie, project):
    project.status = Project.Status.CLOSED
    project.save(update_fields=["status"])
    response = annie.post(f"/api/v1/projects/{project.public_id}/next/")
    assert response.status_code == 409
    assert "closed" in response.json()["detail"]


def test_submit_stores_ranking_and_embeds_the_next_assignment(annie, project, annotator):
    payload = _next(annie, project)
    response = _submit(annie, payload["id"], rationale="r1 is clearest", flags=["harmful"], seconds=4.5)
    assert response.status_code == 201
    body = response.json()
    assert body["ranking"]["ranking"] == ORDER
    assert body["ranking"]["rationale"] == "r1 is clearest"
    assert body["ranking"]["flags"] == ["harmful"]
    assert body["ranking"]["assignment"] == payload["id"]
    stored = Ranking.objects.get()
    assert stored.rater.user == annotator and stored.order == ORDER and stored.seconds == 4.5
    assert stored.shown_order == [r["id"] for r in payload["responses"]]
    assert body["next"]["id"] != payload["id"]
    assert Assignment.objects.get(public_id=body["next"]["id"]).item_id != stored.item_id


def test_repeated_submission_id_answers_200_with_the_same_ranking(annie, project):
    payload = _next(annie, project)
    sid = str(uuid.uuid4())
    first = _submit(annie, payload["id"], submission_id=sid)
    again = _submit(annie, payload["id"], submission_id=sid, ranking=[["r4"], ["r3"], ["r2"], ["r1"]])
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["ranking"] == first.json()["ranking"]
    assert again.json()["next"]["id"] == first.json()["next"]["id"]  # the lease already held, not a new one
    assert Ranking.objects.count() == 1
    assert Item.objects.get(pk=Ranking.objects.get().item_id).ranking_count == 1


def test_submission_id_of_someone_else_is_refused(annie, bob, project):
    sid = str(uuid.uuid4())
    assert _submit(bob, _next(bob, project)["id"], submission_id=sid).status_code == 201
    response = _submit(annie, _next(annie, project)["id"], submission_id=sid)
    assert response.status_code == 400
    assert "submission_id" in response.json()
    assert Ranking.objects.count() == 1


@pytest.mark.parametrize(
    "body,field,words",
    [
        ({"ranking": [["r1"], ["r9"]]}, "ranking", "not a response of this item"),
        ({"ranking": [["r1"], ["r2"]]}, "ranking", "leaves out"),
        ({"ranking": [["r1"], ["r1"], ["r2"], ["r3"], ["r4"]]}, "ranking", "more than once"),
        ({"ranking": "r1>r2"}, "ranking", "list of tie groups"),
        ({"ranking": ORDER, "flags": ["boring"]}, "flags", "unknown flag"),
        ({"ranking": ORDER, "seconds": -1}, "seconds", "greater than or equal"),
        ({"ranking": ORDER, "submission_id": "nope"}, "submission_id", "UUID"),
        ({"order": ORDER}, "order", "unknown field"),
        ({}, "ranking", "required"),
    ],
)
def test_invalid_submission_is_400_naming_the_field_and_stores_nothing(annie, project, body, field, words):
    payload = _next(annie, project)
    response = annie.post(f"/api/v1/assignments/{payload['id']}/submit/", body, format="json")
    assert response.status_code == 400
    assert words in " ".join(response.json()[field])
    assert Ranking.objects.count() == 0
    assert Assignment.objects.get(public_id=payload["id"]).status == Assignment.Status.LEASED


def test_rationale_required_by_the_project(annie, project):
    project.rationale = Project.Rationale.REQUIRED
    project.save(update_fields=["rationale"])
    payload = _next(annie, project)
    assert payload["settings"]["rationale"] == "required"
    response = _submit(annie, payload["id"], rationale="  ")
    assert response.status_code == 400
    assert "requires a rationale" in response.json()["rationale"][0]
    assert _submit(annie, payload["id"], rationale="because").status_code == 201


def test_ties_refused_where_the_project_allows_none(annie, project):
    project.allow_ties = False
    project.save(update_fields=["allow_ties"])
    payload = _next(annie, project)
    response = _submit(annie, payload["id"])
    assert response.status_code == 400
    assert "allows no ties" in response.json()["ranking"][0]


def test_skip_releases_the_item_and_answers_with_another(annie, project):
    payload = _next(annie, project)
    response = annie.post(f"/api/v1/assignments/{payload['id']}/skip/")
    assert response.status_code == 200
    body = response.json()
    assert body["skipped"] == payload["id"]
    assert Assignment.objects.get(public_id=payload["id"]).status == Assignment.Status.SKIPPED
    skipped_item = Assignment.objects.get(public_id=payload["id"]).item_id
    assert Assignment.objects.get(public_id=body["next"]["id"]).item_id != skipped_item


def test_retrieve_own_assignment_and_not_after_leaving_the_project(annie, project, annotator):
    from annotation.services import remove_member

    payload = _next(annie, project)
    assert annie.get(f"/api/v1/assignments/{payload['id']}/").json()["responses"] == payload["responses"]
    remove_member(project=project, user=annotator)
    assert annie.get(f"/api/v1/assignments/{payload['id']}/").status_code == 404
    assert _submit(annie, payload["id"]).status_code == 404


def test_submit_and_next_stay_lean(annie, project, django_assert_max_num_queries):
    payload = _next(annie, project)
    with django_assert_max_num_queries(30):
        response = _submit(annie, payload["id"], submission_id=str(uuid.uuid4()))
    assert response.status_code == 201
    with django_assert_max_num_queries(15):
        assert _next(annie, project)["id"] == response.json()["next"]["id"]
