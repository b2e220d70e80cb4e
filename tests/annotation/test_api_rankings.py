"""Rankings over the API: researchers see their projects' current rankings, annotators only their own."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from annotation.models import AnnotatorProfile, Membership, Ranking
from annotation.services import (
    add_member,
    create_item,
    create_project,
    next_assignment,
    rater_for_user,
    record_ranking,
    submit_ranking,
    synthetic_rater,
)

pytestmark = pytest.mark.django_db

ORDER = [["r1"], ["r2"], ["r3"], ["r4"]]
PERSONA = {"id": "p1", "description": "A retired teacher", "attributes": {"age": 67}}


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def rankings(project, annotator, annotator2) -> dict[str, Ranking]:
    out = {}
    for name, user in (("annie", annotator), ("bob", annotator2)):
        out[name] = submit_ranking(user=user, assignment=next_assignment(project=project, user=user), order=ORDER)
    robot = synthetic_rater(persona=PERSONA, model="fake:tiny")
    out["robot"] = record_ranking(item=project.items.last(), rater=robot, order=[["r4"], ["r3"], ["r2"], ["r1"]])
    return out


def _ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {r["id"] for r in response.json()["results"]}


def test_researcher_sees_every_current_ranking_of_their_projects(owner, rankings):
    body = _client(owner).get("/api/v1/rankings/").json()
    assert {r["id"] for r in body["results"]} == {r.pk for r in rankings.values()}
    robot = next(r for r in body["results"] if r["id"] == rankings["robot"].pk)
    assert robot["rater"]["kind"] == "synthetic" and robot["rater"]["persona"] == PERSONA
    assert robot["ranking"] == [["r4"], ["r3"], ["r2"], ["r1"]]


def test_annotator_sees_only_their_own_rankings(annotator, annotator2, rankings):
    body = _client(annotator).get("/api/v1/rankings/").json()
    assert [r["id"] for r in body["results"]] == [rankings["annie"].pk]
    assert body["results"][0]["rater"]["id"] == rater_for_user(annotator).pk
    assert _client(annotator).get(f"/api/v1/rankings/{rankings['bob'].pk}/").status_code == 404
    assert _client(annotator2).get(f"/api/v1/rankings/{rankings['annie'].pk}/").status_code == 404


def test_rankings_never_carry_demographics(owner, annotator, rankings):
    AnnotatorProfile.objects.create(user=annotator, country="Iceland", consented_fields=["country"])
    assert b"Iceland" not in _client(owner).get("/api/v1/rankings/").content


def test_researcher_of_one_project_does_not_see_another(owner, outsider, annotator, rankings):
    theirs = create_project(owner=outsider, name="Theirs", status="active")
    add_member(project=theirs, user=annotator, role=Membership.Role.ANNOTATOR)
    item = create_item(project=theirs, external_id="t", prompt="?",
                       responses=[{"id": "r1", "text": "a"}, {"id": "r2", "text": "b"}])
    hidden = record_ranking(item=item, rater=rater_for_user(annotator), order=[["r1"], ["r2"]])
    assert hidden.pk not in _ids(_client(owner).get("/api/v1/rankings/"))
    assert _client(owner).get(f"/api/v1/rankings/{hidden.pk}/").status_code == 404
    assert _ids(_client(outsider).get("/api/v1/rankings/")) == {hidden.pk}
    assert hidden.pk in _ids(_client(annotator).get("/api/v1/rankings/"))  # their own, in either project


def test_only_current_versions_are_listed(owner, annotator, project, rankings):
    newer = record_ranking(item=rankings["annie"].item, rater=rater_for_user(annotator), order=[["r2"], ["r1"], ["r3"], ["r4"]])
    listed = _ids(_client(owner).get("/api/v1/rankings/"))
    assert newer.pk in listed and rankings["annie"].pk not in listed


def test_filters(owner, project, rankings):
    client = _client(owner)
    assert _ids(client.get("/api/v1/rankings/", {"rater_kind": "synthetic"})) == {rankings["robot"].pk}
    assert _ids(client.get("/api/v1/rankings/", {"rater_kind": "human"})) == {rankings["annie"].pk, rankings["bob"].pk}
    other = create_project(owner=owner, name="Empty")
    assert _ids(client.get("/api/v1/rankings/", {"project": str(other.public_id)})) == set()
    assert len(_ids(client.get("/api/v1/rankings/", {"project": str(project.public_id)}))) == 3
    Ranking.objects.filter(pk=rankings["bob"].pk).update(created_at=timezone.now() - timedelta(days=10))
    week_ago = (timezone.now() - timedelta(days=7)).date().isoformat()
    assert rankings["bob"].pk not in _ids(client.get("/api/v1/rankings/", {"since": week_ago}))
    assert _ids(client.get("/api/v1/rankings/", {"until": week_ago})) == {rankings["bob"].pk}
    assert len(_ids(client.get("/api/v1/rankings/", {"since": timezone.now().isoformat()}))) == 0


@pytest.mark.parametrize(
    "params,field", [({"rater_kind": "robot"}, "rater_kind"), ({"since": "last week"}, "since"),
                     ({"until": "2026-13-01"}, "until"), ({"project": "42"}, "project")]
)
def test_bad_filters_are_400_naming_the_parameter(owner, rankings, params, field):
    response = _client(owner).get("/api/v1/rankings/", params)
    assert response.status_code == 400
    assert field in response.json()


def test_list_queries_do_not_grow_with_rankings(owner, project, rankings, django_assert_max_num_queries):
    for n in range(20):
        rater = synthetic_rater(persona={**PERSONA, "id": f"p{n + 2}"}, model="fake:tiny")
        record_ranking(item=project.items.first(), rater=rater, order=ORDER)
    with django_assert_max_num_queries(4):
        response = _client(owner).get("/api/v1/rankings/")
    assert response.json()["count"] == 23
