"""The aggregation API: pools, aggregate, agreement, snapshots, diff, download; and who reaches them."""
from __future__ import annotations

import io
import json
import zipfile

import pytest
from rest_framework.test import APIClient

from aggregation.models import Pool, Snapshot
from annotation.models import Membership
from annotation.services import add_member

from .factories import random_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(owner):
    return random_world(owner, seed=31, n_items=4)


def _client(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_authenticate(user)
    return client


def test_pool_crud_and_refusals(world, owner):
    api, p = _client(owner), world.project.public_id
    listed = api.get(f"/api/v1/projects/{p}/pools/").json()
    assert [x["name"] for x in listed] == ["all"] and listed[0]["summary"]["raters"] == 7
    made = api.post(f"/api/v1/projects/{p}/pools/", {"name": "humans", "kinds": "humans"}, format="json")
    assert made.status_code == 201 and made.json()["summary"]["raters"] == 4
    bad = api.post(f"/api/v1/projects/{p}/pools/", {"name": "neg", "human_weight": -1}, format="json")
    assert bad.status_code == 400 and "negative" in bad.json()["human_weight"][0]
    none = api.post(f"/api/v1/projects/{p}/pools/", {"name": "x", "human_filters": {"religion": ["a"]}}, format="json")
    assert none.status_code == 400 and "consent" in none.json()["human_filters"][0]
    assert Pool.objects.count() == 1
    changed = api.patch(f"/api/v1/projects/{p}/pools/humans/", {"human_weight": 2}, format="json")
    assert changed.status_code == 200 and changed.json()["human_weight"] == 2
    refused = api.patch(f"/api/v1/projects/{p}/pools/humans/", {"kinds": "synthetic", "human_weight": -3},
                        format="json")
    assert refused.status_code == 400 and Pool.objects.get().kinds == "humans"
    assert api.delete(f"/api/v1/projects/{p}/pools/all/").status_code == 400
    assert api.delete(f"/api/v1/projects/{p}/pools/humans/").status_code == 204


def test_aggregate_and_agreement(world, owner):
    api, p = _client(owner), world.project.public_id
    got = api.get(f"/api/v1/projects/{p}/aggregate/", {"rule": "borda", "limit": 2})
    assert got.status_code == 200, got.content
    body = got.json()
    assert body["count"] == 4 and len(body["results"]) == 2 and body["results"][0]["item"] == "i000"
    bt = api.get(f"/api/v1/projects/{p}/aggregate/", {"rule": "bradley_terry", "params": json.dumps({"reg": 0.5})})
    assert bt.status_code == 200
    assert api.get(f"/api/v1/projects/{p}/aggregate/", {"rule": "nope"}).status_code == 400
    # Rule parameters that are not an object, or that the rule refuses, are 400s that say so (the
    # schema fuzzer found `params=true` answered 500).
    for params in ("true", "[1]", json.dumps({"reg": -1}), json.dumps({"no_such_parameter": 1})):
        bad = api.get(f"/api/v1/projects/{p}/aggregate/", {"rule": "bradley_terry", "params": params})
        assert bad.status_code == 400 and ("params" in bad.json() or "parameters" in bad.content.decode()), params
    assert api.get(f"/api/v1/projects/{p}/aggregate/", {"pool": "missing"}).json()["pool"][0].startswith("no pool")
    agreement = api.get(f"/api/v1/projects/{p}/agreement/").json()
    assert set(agreement) == {"pool", "all", "humans", "synthetic"} and agreement["all"]["items"] == 4


def test_snapshot_endpoints(world, owner):
    api, p = _client(owner), world.project.public_id
    made = api.post(f"/api/v1/projects/{p}/snapshots/", {"rule": "borda", "seed": 1}, format="json")
    assert made.status_code == 201, made.content
    sid = made.json()["snapshot_id"]
    assert api.post(f"/api/v1/projects/{p}/snapshots/", {"rule": "borda", "seed": 1}, format="json").status_code == 200
    other = api.post(f"/api/v1/projects/{p}/snapshots/", {"rule": "copeland", "seed": 1}, format="json").json()
    assert [s["snapshot_id"] for s in api.get(f"/api/v1/projects/{p}/snapshots/").json()] == [other["snapshot_id"], sid]
    detail = api.get(f"/api/v1/snapshots/{sid}/").json()
    assert detail["manifest"]["snapshot"] == sid
    archive = api.get(f"/api/v1/snapshots/{sid}/download/")
    assert archive.status_code == 200 and archive["Content-Type"] == "application/zip"
    names = zipfile.ZipFile(io.BytesIO(b"".join(archive.streaming_content))).namelist()
    assert f"{sid}/pairs.jsonl" in names and f"{sid}/manifest.json" in names
    diff = api.get(f"/api/v1/snapshots/{sid}/diff/{other['snapshot_id']}/").json()
    assert {"items_added", "pairs_flipped", "margins_changed"} <= set(diff)
    bad = api.post(f"/api/v1/projects/{p}/snapshots/", {"rule": "borda", "split": {"train": 1.0}}, format="json")
    assert bad.status_code == 400
    assert api.delete(f"/api/v1/snapshots/{sid}/").status_code == 204
    assert not Snapshot.objects.filter(snapshot_id=sid).exists()


def test_permission_matrix(world, owner, annotator, outsider, django_user_model):
    add_member(project=world.project, user=annotator, role=Membership.Role.ANNOTATOR)
    # A researcher of another project reaches nothing here either.
    other = django_user_model.objects.create_user("other-researcher")
    from annotation.services import create_project

    create_project(owner=other, name="Other")
    p = world.project.public_id
    api = _client(owner)
    Pool.objects.create(project=world.project, name="mine")
    sid = api.post(f"/api/v1/projects/{p}/snapshots/", {"rule": "borda"}, format="json").json()["snapshot_id"]
    sid2 = api.post(f"/api/v1/projects/{p}/snapshots/", {"rule": "borda", "seed": 2}, format="json").json()["snapshot_id"]
    calls = [
        ("get", f"/api/v1/projects/{p}/pools/", None),
        ("post", f"/api/v1/projects/{p}/pools/", {"name": "new"}),
        ("get", f"/api/v1/projects/{p}/pools/mine/", None),
        ("patch", f"/api/v1/projects/{p}/pools/mine/", {"human_weight": 3}),
        ("put", f"/api/v1/projects/{p}/pools/mine/", {"name": "mine"}),
        ("delete", f"/api/v1/projects/{p}/pools/mine/", None),
        ("get", f"/api/v1/projects/{p}/aggregate/", None),
        ("get", f"/api/v1/projects/{p}/agreement/", None),
        ("get", f"/api/v1/projects/{p}/snapshots/", None),
        ("post", f"/api/v1/projects/{p}/snapshots/", {"rule": "copeland"}),
        ("get", f"/api/v1/snapshots/{sid}/", None),
        ("get", f"/api/v1/snapshots/{sid}/download/", None),
        ("get", f"/api/v1/snapshots/{sid}/diff/{sid2}/", None),
        ("delete", f"/api/v1/snapshots/{sid}/", None),
    ]
    for user, expected in ((annotator, 404), (outsider, 404), (other, 404), (None, 401)):
        client = _client(user)
        for method, url, data in calls:
            response = getattr(client, method)(url, data, format="json")
            assert response.status_code == expected, (user, method, url, response.status_code)
    assert Pool.objects.filter(project=world.project).count() == 1
    assert Snapshot.objects.count() == 2


def test_schema_lists_the_endpoints(owner):
    schema = _client(owner).get("/api/v1/schema/", {"format": "json"})
    assert schema.status_code == 200
    paths = json.loads(schema.content)["paths"]
    for path in ("/api/v1/projects/{public_id}/pools/", "/api/v1/projects/{public_id}/aggregate/",
                 "/api/v1/snapshots/{snapshot_id}/diff/{other_id}/", "/api/v1/snapshots/{snapshot_id}/download/"):
        assert path in paths, path
