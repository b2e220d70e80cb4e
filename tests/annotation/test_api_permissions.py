"""Permission matrix of the REST API: every endpoint x (owner-researcher, annotator, outsider, anonymous).

The rule (annotation/permissions.py): anonymous 401; outsiders 404 on anything inside a project;
annotators 403 on researcher-only actions of their own project; other raters' assignments and
rankings 404 for everyone but their researchers (rankings) or themselves (assignments). Creating a
project needs `annotation.add_project` (the owner here holds it, as researchers do; annotators and
outsiders do not), as on the HTML page. Every endpoint that creates something is in the matrix.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from rest_framework.test import APIClient

from annotation.models import AnnotatorProfile, Assignment, Item, Membership, Project, Ranking
from annotation.services import next_assignment, submit_ranking

pytestmark = pytest.mark.django_db

ORDER = [["r1"], ["r2"], ["r3"], ["r4"]]


@dataclass
class World:
    project: Any
    assignment: Any  # the annotator's live lease
    other_ranking: Ranking  # annotator2's ranking
    item: Item


@pytest.fixture
def world(project, owner, annotator, annotator2, outsider) -> World:
    owner.user_permissions.add(Permission.objects.get(codename="add_project", content_type__app_label="annotation"))
    other = next_assignment(project=project, user=annotator2)
    ranking = submit_ranking(user=annotator2, assignment=other, order=ORDER)
    assignment = next_assignment(project=project, user=annotator)
    return World(project=project, assignment=assignment, other_ranking=ranking, item=project.items.first())


def _urls(w: World) -> dict[str, str]:
    p = w.project.public_id
    return {
        "projects": "/api/v1/projects/",
        "project": f"/api/v1/projects/{p}/",
        "members": f"/api/v1/projects/{p}/members/",
        "progress": f"/api/v1/projects/{p}/progress/",
        "next": f"/api/v1/projects/{p}/next/",
        "items": f"/api/v1/projects/{p}/items/",
        "item": f"/api/v1/projects/{p}/items/{w.item.pk}/",
        "assignment": f"/api/v1/assignments/{w.assignment.public_id}/",
        "submit": f"/api/v1/assignments/{w.assignment.public_id}/submit/",
        "skip": f"/api/v1/assignments/{w.assignment.public_id}/skip/",
        "rankings": "/api/v1/rankings/",
        "ranking": f"/api/v1/rankings/{w.other_ranking.pk}/",
        "profile": "/api/v1/profile/",
        "import": f"/api/v1/projects/{p}/import/",
        "export": f"/api/v1/projects/{p}/export/",
    }


NEW_ITEM = [{"prompt": "New?", "responses": [{"id": "a", "text": "A"}, {"id": "b", "text": "B"}]}]
IMPORTED = {"items": [{"id": "imported-1", "prompt": "Imported?", "responses": ["yes", "no"]}]}

# (method, url key, body) -> expected status for owner, annotator, outsider, anonymous.
MATRIX: list[tuple[str, str, Any, tuple[int, int, int, int]]] = [
    ("get", "projects", None, (200, 200, 200, 401)),
    ("post", "projects", {"name": "Mine"}, (201, 403, 403, 401)),
    ("get", "project", None, (200, 200, 404, 401)),
    ("patch", "project", {"name": "Renamed"}, (200, 403, 404, 401)),
    ("put", "project", {"name": "Renamed", "status": "active"}, (200, 403, 404, 401)),
    ("get", "members", None, (200, 403, 404, 401)),
    ("post", "members", {"username": "mallory", "role": "annotator"}, (200, 403, 404, 401)),
    ("delete", "members", {"username": "bob"}, (204, 403, 404, 401)),
    ("get", "progress", None, (200, 403, 404, 401)),
    ("post", "next", None, (200, 200, 404, 401)),
    ("get", "items", None, (200, 403, 404, 401)),
    ("post", "items", NEW_ITEM, (201, 403, 404, 401)),
    ("get", "item", None, (200, 403, 404, 401)),
    ("get", "assignment", None, (404, 200, 404, 401)),
    ("post", "submit", {"ranking": ORDER}, (404, 201, 404, 401)),
    ("post", "skip", None, (404, 200, 404, 401)),
    ("get", "rankings", None, (200, 200, 200, 401)),
    ("get", "ranking", None, (200, 404, 404, 401)),
    ("get", "profile", None, (200, 200, 200, 401)),
    ("put", "profile", {"consented_fields": ["country"], "country": "NZ"}, (200, 200, 200, 401)),
    ("post", "import", IMPORTED, (201, 403, 404, 401)),
    ("get", "export", None, (200, 403, 404, 401)),
]
ROLES = ("owner", "annotator", "outsider", "anonymous")


@pytest.mark.parametrize("role_index,role", list(enumerate(ROLES)))
@pytest.mark.parametrize("method,key,body,expected", MATRIX, ids=[f"{m}-{k}" for m, k, _, _ in MATRIX])
def test_permission_matrix(request, world, method, key, body, expected, role_index, role):
    client = APIClient()
    if role != "anonymous":
        client.force_authenticate(request.getfixturevalue(role))
    response = getattr(client, method)(_urls(world)[key], body, format="json")
    assert response.status_code == expected[role_index], response.content


def test_outsider_cannot_tell_a_hidden_project_from_a_missing_one(world, outsider):
    client = APIClient()
    client.force_authenticate(outsider)
    hidden = client.get(f"/api/v1/projects/{world.project.public_id}/")
    missing = client.get(f"/api/v1/projects/{uuid.uuid4()}/")
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json() == missing.json()


def test_refused_requests_change_nothing(world, annotator, outsider):
    annie, mallory, anonymous = APIClient(), APIClient(), APIClient()
    annie.force_authenticate(annotator)
    mallory.force_authenticate(outsider)
    urls = _urls(world)
    for client in (annie, mallory, anonymous):
        client.post(urls["projects"], {"name": "Hijacked"}, format="json")
        client.post(urls["import"], IMPORTED, format="json")
    annie.patch(urls["project"], {"name": "Hijacked"}, format="json")
    annie.post(urls["members"], {"username": "mallory", "role": "researcher"}, format="json")
    annie.post(urls["items"], NEW_ITEM, format="json")
    mallory.post(urls["submit"], {"ranking": ORDER}, format="json")
    mallory.post(urls["skip"])
    mallory.post(urls["next"])
    anonymous.put(urls["profile"], {"consented_fields": ["country"], "country": "NZ"}, format="json")
    world.project.refresh_from_db()
    assert world.project.name == "Demo"
    assert list(Project.objects.values_list("name", flat=True)) == ["Demo"]
    assert not Membership.objects.filter(user=outsider).exists()
    assert world.project.items.count() == 3
    assert Ranking.objects.count() == 1
    assert not AnnotatorProfile.objects.exists()
    assert not Assignment.objects.filter(rater__user=outsider).exists()
    world.assignment.refresh_from_db()
    assert world.assignment.status == "leased"


def test_anonymous_is_told_to_authenticate_with_a_token(world):
    response = APIClient().get("/api/v1/projects/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


@pytest.mark.parametrize(
    "method,key",
    [
        ("delete", "project"),
        ("get", "submit"),
        ("get", "skip"),
        ("get", "next"),
        ("post", "rankings"),
        ("put", "ranking"),
        ("delete", "profile"),
        ("patch", "items"),
        ("delete", "item"),
        ("put", "progress"),
    ],
)
def test_wrong_methods_are_405(world, owner, method, key):
    client = APIClient()
    client.force_authenticate(owner)
    assert getattr(client, method)(_urls(world)[key]).status_code == 405


def test_the_add_project_permission_alone_opens_no_one_elses_project(world, annotator):
    """A user allowed to create projects is a researcher of their own projects only."""
    annotator.user_permissions.add(Permission.objects.get(codename="add_project", content_type__app_label="annotation"))
    client = APIClient()
    client.force_authenticate(annotator)
    assert client.post("/api/v1/projects/", {"name": "Annie's"}, format="json").status_code == 201
    urls = _urls(world)
    assert client.post(urls["items"], NEW_ITEM, format="json").status_code == 403
    assert client.post(urls["import"], IMPORTED, format="json").status_code == 403


def test_refused_project_creation_says_which_permission_is_missing(world, annotator):
    client = APIClient()
    client.force_authenticate(annotator)
    response = client.post("/api/v1/projects/", {"name": "Mine"}, format="json")
    assert response.status_code == 403
    assert "annotation.add_project" in response.json()["detail"]
