"""Items over the API: researcher-only listing and the atomic bulk create with errors by index and field."""
from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from annotation.models import Item
from annotation.services import create_item, create_project

pytestmark = pytest.mark.django_db


def _entry(prompt: str = "Why?", **extra) -> dict:
    return {"prompt": prompt, "responses": [{"id": "a", "text": "Because."}, {"id": "b", "text": "No idea."}], **extra}


@pytest.fixture
def researcher(owner) -> APIClient:
    client = APIClient()
    client.force_authenticate(owner)
    return client


@pytest.fixture
def url(project) -> str:
    return f"/api/v1/projects/{project.public_id}/items/"


def test_bulk_create_stores_items_with_responses_in_order(researcher, url, project):
    batch = [
        _entry("First?", external_id="x-1", context=[{"role": "system", "content": "Be brief."}],
               metadata={"topic": "tax"}),
        {"prompt": "Second?", "responses": [{"id": "r2", "text": "B", "source": "model-b"},
                                             {"id": "r1", "text": "A", "source": "model-a"},
                                             {"id": "r3", "text": "C"}]},
    ]
    response = researcher.post(url, batch, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["created"] == 2
    first = project.items.get(external_id="x-1")
    assert first.context == [{"role": "system", "content": "Be brief."}] and first.metadata == {"topic": "tax"}
    second = project.items.get(prompt="Second?")
    assert second.external_id.startswith("auto-")
    assert [(r.response_id, r.source) for r in second.responses.all()] == [
        ("r2", "model-b"), ("r1", "model-a"), ("r3", "")
    ]
    assert [i["external_id"] for i in response.json()["items"]] == ["x-1", second.external_id]


@pytest.mark.parametrize(
    "bad,field,words",
    [
        ({"responses": _entry()["responses"]}, "prompt", "required"),
        (_entry(responses=[{"id": "a", "text": "only one"}]), "responses", "at least 2"),
        (_entry(responses=[{"id": "a", "text": "A"}, {"text": "B"}]), "responses[1].id", "required"),
        (_entry(responses=[{"id": "a", "text": "A"}, {"id": "a", "text": "B"}]), "responses", "used twice"),
        (_entry(responses=[{"id": "a", "text": "A"}, {"id": "b", "text": "B", "label": "x"}]), "responses[1].label",
         "unknown field"),
        (_entry(context=[{"role": "robot", "content": "hi"}]), "context[0].role", "not a chat role"),
        (_entry(metadata=["not", "a", "dict"]), "metadata", "dictionary"),
        ({"promt": "typo", "responses": _entry()["responses"]}, "promt", "unknown field"),
        ("just a string", "", "expected an object"),
    ],
)
def test_one_bad_entry_is_400_naming_index_and_field_and_creates_nothing(researcher, url, bad, field, words):
    response = researcher.post(url, [_entry("ok 0"), bad, _entry("ok 2")], format="json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert [(e["index"], e["field"]) for e in errors] == [(1, field)]
    assert words in errors[0]["message"]
    assert "entry 1" in response.json()["detail"] and "nothing was created" in response.json()["detail"]
    assert Item.objects.filter(prompt__startswith="ok").count() == 0


def test_every_bad_entry_is_reported(researcher, url):
    response = researcher.post(url, [{"prompt": "x"}, _entry(), {"responses": []}], format="json")
    assert response.status_code == 400
    assert sorted({e["index"] for e in response.json()["errors"]}) == [0, 2]


def test_duplicate_external_ids_are_reported(researcher, url, project):
    response = researcher.post(
        url, [_entry(external_id="item-1"), _entry(external_id="new"), _entry(external_id="new")], format="json"
    )
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert [(e["index"], e["field"]) for e in errors] == [(0, "external_id"), (2, "external_id")]
    assert "already exists" in errors[0]["message"]
    assert "repeats entry 1" in errors[1]["message"]
    assert project.items.count() == 3


def test_resending_a_batch_without_ids_reports_duplicates(researcher, url, project):
    batch = [_entry("Same?"), _entry("Other?")]
    assert researcher.post(url, batch, format="json").status_code == 201
    again = researcher.post(url, batch, format="json")
    assert again.status_code == 400
    assert {e["index"] for e in again.json()["errors"]} == {0, 1}
    assert project.items.count() == 5


def test_same_external_id_in_another_project_is_fine(researcher, url, owner):
    other = create_project(owner=owner, name="Other")
    create_item(project=other, external_id="shared", prompt="?", responses=_entry()["responses"])
    assert researcher.post(url, [_entry(external_id="shared")], format="json").status_code == 201


@pytest.mark.parametrize("body", [{"prompt": "not a list"}, [], "text"])
def test_body_must_be_a_non_empty_list(researcher, url, body, project):
    response = researcher.post(url, body, format="json")
    assert response.status_code == 400
    assert "non-empty JSON list" in str(response.json())
    assert project.items.count() == 3


def test_list_shows_responses_with_sources_in_bounded_queries(researcher, url, project, django_assert_max_num_queries):
    for n in range(10):
        create_item(project=project, external_id=f"more-{n}", prompt="?", responses=_entry()["responses"])
    with django_assert_max_num_queries(6):
        response = researcher.get(url)
    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 13
    first = body["results"][0]
    assert first["external_id"] == "item-0"
    assert first["responses"][0] == {"id": "r1", "text": "Answer 1 to 0", "source": "demo"}


def test_item_of_another_project_is_404_through_this_project(researcher, url, owner):
    other = create_project(owner=owner, name="Other")
    foreign = create_item(project=other, external_id="f", prompt="?", responses=_entry()["responses"])
    assert researcher.get(f"{url}{foreign.pk}/").status_code == 404
    assert researcher.get(f"/api/v1/projects/{other.public_id}/items/{foreign.pk}/").status_code == 200
