"""Projects, members and progress over the API, and the two ways to authenticate."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotation.models import Assignment, Membership, Project
from annotation.services import add_member, create_project, next_assignment, submit_ranking

pytestmark = pytest.mark.django_db

ORDER = [["r1"], ["r2"], ["r3"], ["r4"]]
RESEARCHER_FIELDS = {"owner", "overlap_target", "synthetic_target", "demographics_export", "lease_seconds", "created_at", "updated_at"}


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def test_annotator_sees_only_what_they_need_and_their_own_progress(project, annotator):
    submit_ranking(user=annotator, assignment=next_assignment(project=project, user=annotator), order=ORDER)
    body = _client(annotator).get(f"/api/v1/projects/{project.public_id}/").json()
    assert body["name"] == "Demo" and body["guidelines"] == "Rank **helpfulness**."
    assert body["guidelines_html"] == "<p>Rank <strong>helpfulness</strong>.</p>"
    assert body["status"] == "active" and body["role"] == "annotator"
    assert body["my_progress"] == {"done": 1, "remaining": 2, "skipped": 0}
    assert not RESEARCHER_FIELDS & set(body)


def test_researcher_sees_configuration(project, owner):
    body = _client(owner).get(f"/api/v1/projects/{project.public_id}/").json()
    assert body["role"] == "researcher" and body["owner"] == "owner" and body["overlap_target"] == 2
    assert set(body) >= RESEARCHER_FIELDS


def test_list_holds_each_of_my_projects_once_in_bounded_queries(owner, annotator, django_assert_max_num_queries):
    for n in range(8):
        p = create_project(owner=owner, name=f"P{n}")
        add_member(project=p, user=annotator, role=Membership.Role.ANNOTATOR)
    create_project(owner=annotator, name="Annie's own")
    with django_assert_max_num_queries(3):
        body = _client(annotator).get("/api/v1/projects/").json()
    assert body["count"] == 9
    roles = {p["name"]: p["role"] for p in body["results"]}
    assert roles["Annie's own"] == "researcher" and roles["P0"] == "annotator"


def test_outsider_lists_nothing(project, outsider):
    assert _client(outsider).get("/api/v1/projects/").json()["count"] == 0


@pytest.fixture
def creator(annotator):
    """A user with the `annotation.add_project` permission (researchers have it)."""
    annotator.user_permissions.add(Permission.objects.get(codename="add_project", content_type__app_label="annotation"))
    return annotator


def test_create_makes_the_creator_owner_and_researcher(creator):
    annotator = creator
    response = _client(annotator).post(
        "/api/v1/projects/", {"name": "Mine", "overlap_target": 5, "allow_ties": False}, format="json"
    )
    assert response.status_code == 201
    project = Project.objects.get(public_id=response.json()["id"])
    assert project.owner == annotator and project.overlap_target == 5 and not project.allow_ties
    assert Membership.objects.get(project=project, user=annotator).role == Membership.Role.RESEARCHER
    assert response.json()["role"] == "researcher"


@pytest.mark.parametrize(
    "body,field",
    [({}, "name"), ({"name": "x", "overlap_target": 0}, "overlap_target"), ({"name": "x", "status": "paused"}, "status"),
     ({"name": "x", "owner": 1}, "owner"), ({"name": "x", "lease_seconds": 5}, "lease_seconds")],
)
def test_create_rejects_bad_fields_by_name(creator, body, field):
    response = _client(creator).post("/api/v1/projects/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()
    assert not Project.objects.exists()


def test_researcher_updates_settings(project, owner):
    response = _client(owner).patch(
        f"/api/v1/projects/{project.public_id}/", {"allow_partial": True, "rationale": "required"}, format="json"
    )
    assert response.status_code == 200
    project.refresh_from_db()
    assert project.allow_partial and project.rationale == "required" and project.name == "Demo"


def test_members_add_change_and_remove(project, owner, annotator, outsider):
    client = _client(owner)
    url = f"/api/v1/projects/{project.public_id}/members/"
    assert client.post(url, {"username": "mallory"}, format="json").json()["role"] == "annotator"
    assert client.post(url, {"username": "mallory", "role": "researcher"}, format="json").status_code == 200
    assert Membership.objects.get(project=project, user=outsider).role == "researcher"
    listed = client.get(url).json()
    assert [(m["username"], m["role"]) for m in listed] == [
        ("annie", "annotator"), ("bob", "annotator"), ("mallory", "researcher"), ("owner", "researcher")
    ]
    lease = next_assignment(project=project, user=annotator)
    assert client.delete(url, {"username": "annie"}, format="json").status_code == 204
    assert not Membership.objects.filter(project=project, user=annotator).exists()
    lease.refresh_from_db()
    assert lease.status == Assignment.Status.EXPIRED  # the item returns to the pool at once


@pytest.mark.parametrize(
    "method,body,words",
    [("post", {"username": "nobody"}, "no active user"), ("post", {"username": "owner", "role": "annotator"}, "owner"),
     ("post", {"username": "annie", "role": "boss"}, "valid choice"), ("delete", {"username": "owner"}, "owns"),
     ("delete", {"username": "mallory"}, "not a member"), ("delete", {}, "may not be blank")],
)
def test_member_errors_name_the_problem_and_change_nothing(project, owner, method, body, words):
    before = list(Membership.objects.order_by("pk").values_list("user__username", "role"))
    response = getattr(_client(owner), method)(f"/api/v1/projects/{project.public_id}/members/", body, format="json")
    assert response.status_code == 400
    assert words in str(response.json())
    assert list(Membership.objects.order_by("pk").values_list("user__username", "role")) == before


def test_progress(project, owner, annotator):
    submit_ranking(user=annotator, assignment=next_assignment(project=project, user=annotator), order=ORDER)
    body = _client(owner).get(f"/api/v1/projects/{project.public_id}/progress/").json()
    assert body == {"items": 3, "rankings": 1, "target": 6, "complete_items": 0, "synthetic": 0}


def test_token_from_password_then_token_authentication(project, annotator):
    client = APIClient()
    bad = client.post("/api/v1/auth/token/", {"username": "annie", "password": "wrong"}, format="json")
    assert bad.status_code == 400
    token = client.post("/api/v1/auth/token/", {"username": "annie", "password": "annie-pass-123"}, format="json")
    assert token.json()["token"] == Token.objects.get(user=annotator).key
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.json()['token']}")
    assert client.get("/api/v1/projects/").json()["count"] == 1
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert client.get("/api/v1/projects/").status_code == 401


def test_session_authentication_needs_csrf_for_writes(project, annotator):
    client = APIClient(enforce_csrf_checks=True)
    client.login(username="annie", password="annie-pass-123")
    assert client.get("/api/v1/projects/").json()["count"] == 1
    assert client.post(f"/api/v1/projects/{project.public_id}/next/").status_code == 403  # no CSRF token
