"""HTML pages: pools, collective rankings, snapshots; clear form errors; only researchers reach them."""
from __future__ import annotations

import io
import zipfile

import pytest
from django.urls import reverse

from aggregation.models import Pool, Snapshot
from aggregation.snapshots import SnapshotInputs, create_snapshot
from annotation.models import Membership
from annotation.services import add_member, create_project

from .factories import random_world

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(owner):
    return random_world(owner, seed=51, n_items=4)


def test_pool_pages(client, owner, world):
    client.force_login(owner)
    p = world.project.public_id
    page = client.get(reverse("aggregation-pool-list", args=[p]))
    assert page.status_code == 200 and b"built in" in page.content
    made = client.post(reverse("aggregation-pool-create", args=[p]), {
        "name": "German humans", "kinds": "humans", "human_weight": "1", "synthetic_weight": "1",
        "human_filters": "country=DE", "min_rankings": "0", "drop_cannot_judge": "on"})
    assert made.status_code == 302, made.content.decode()[:2000]
    pool = Pool.objects.get(name="German humans")
    assert pool.human_filters == {"country": ["DE"]} and pool.kinds == "humans"
    edit = client.get(reverse("aggregation-pool-edit", args=[p, pool.name]))
    assert b"country=DE" in edit.content
    listing = client.get(reverse("aggregation-pool-list", args=[p])).content.decode()
    assert "German humans" in listing
    assert "Pools" in client.get(reverse("annotation-project-detail", args=[p])).content.decode()
    client.post(reverse("aggregation-pool-delete", args=[p, pool.name]))
    assert not Pool.objects.exists()


def test_pool_form_errors_name_the_cause(client, owner, world):
    client.force_login(owner)
    url = reverse("aggregation-pool-create", args=[world.project.public_id])
    base = {"name": "x", "kinds": "both", "human_weight": "1", "synthetic_weight": "1", "min_rankings": "0"}
    bad_line = client.post(url, {**base, "human_filters": "country"})
    assert bad_line.status_code == 400 and "line 1: write field=value1,value2" in bad_line.content.decode()
    negative = client.post(url, {**base, "human_weight": "-2"})
    assert negative.status_code == 400 and "negative" in negative.content.decode()
    upload = io.BytesIO(b"field,value,share\ncountry,DE,0.5\ncountry,US,0.5\n")
    upload.name = "targets.csv"
    cell = client.post(url, {**base, "raking_file": upload})
    assert cell.status_code == 400 and "country=US has no rater" in cell.content.decode()
    csv_error = client.post(url, {**base, "raking_targets": "field,value,share\ncountry,DE,lots\n"})
    assert "line 2: share &#x27;lots&#x27; is not a number" in csv_error.content.decode()
    assert not Pool.objects.exists()


def test_collective_page(client, owner, world):
    client.force_login(owner)
    url = reverse("aggregation-collective-list", args=[world.project.public_id])
    page = client.get(url, {"rule": "borda"})
    assert page.status_code == 200 and b"i000" in page.content and b"4 ranked items" in page.content
    assert client.get(url, {"rule": "nope"}).status_code == 200  # an unknown choice falls back to the default


def test_collective_page_shows_the_rule_it_computes_and_an_empty_project_is_no_error(client, owner):
    import socialchoice

    client.force_login(owner)
    empty = create_project(owner=owner, name="nothing ranked yet")
    page = client.get(reverse("aggregation-collective-list", args=[empty.public_id]))
    assert page.status_code == 200 and b"no rankings" in page.content
    assert f'<option value="{socialchoice.DEFAULT_RULE}" selected>'.encode() in page.content


def test_snapshot_pages(client, owner, world):
    client.force_login(owner)
    p = world.project.public_id
    made = client.post(reverse("aggregation-snapshot-list", args=[p]), {
        "pool": "all", "rule": "borda", "pair_strategy": "all", "seed": "4", "train": "0.8", "validation": "0.1",
        "test": "0.1"})
    snap = Snapshot.objects.get()
    assert made.status_code == 302 and made["Location"] == reverse("aggregation-snapshot-detail", args=[snap.snapshot_id])
    detail = client.get(made["Location"]).content.decode()
    assert snap.snapshot_id in detail and "pairs.jsonl" in detail
    bad = client.post(reverse("aggregation-snapshot-list", args=[p]), {
        "pool": "all", "rule": "borda", "pair_strategy": "all", "seed": "4", "train": "0.5", "validation": "0.1",
        "test": "0.1"})
    assert bad.status_code == 400 and "must be 1, not 0.7" in bad.content.decode()
    other, _ = create_snapshot(project=world.project, user=owner, inputs=SnapshotInputs(rule="copeland"))
    diff = client.get(reverse("aggregation-snapshot-diff", args=[snap.snapshot_id]), {"other": other.snapshot_id})
    assert diff.status_code == 200 and b"Pairs flipped" in diff.content
    all_test, _ = create_snapshot(project=world.project, user=owner,
                                  inputs=SnapshotInputs(split={"train": 0.0, "validation": 0.0, "test": 1.0}))
    assert "no test items" not in client.get(reverse("aggregation-snapshot-detail", args=[all_test.snapshot_id])).content.decode()
    no_test, _ = create_snapshot(project=world.project, user=owner,
                                 inputs=SnapshotInputs(split={"train": 0.9, "validation": 0.1, "test": 0.0}))
    page = client.get(reverse("aggregation-snapshot-detail", args=[no_test.snapshot_id])).content.decode()
    assert "0 test items" in page and "no test items: held-out evaluation has nothing to score" in page
    archive = client.get(reverse("aggregation-snapshot-download", args=[snap.snapshot_id]))
    names = zipfile.ZipFile(io.BytesIO(b"".join(archive.streaming_content))).namelist()
    assert f"{snap.snapshot_id}/manifest.json" in names
    client.post(reverse("aggregation-snapshot-delete", args=[snap.snapshot_id]))
    assert not Snapshot.objects.filter(pk=snap.pk).exists() and not snap.path.exists()


def test_only_researchers_reach_any_page(client, owner, annotator, outsider, world, django_user_model):
    add_member(project=world.project, user=annotator, role=Membership.Role.ANNOTATOR)
    other = django_user_model.objects.create_user("other-researcher")
    create_project(owner=other, name="Other")
    p = world.project.public_id
    Pool.objects.create(project=world.project, name="mine")
    snap, _ = create_snapshot(project=world.project, user=owner, inputs=SnapshotInputs(rule="borda"))
    snap2, _ = create_snapshot(project=world.project, user=owner, inputs=SnapshotInputs(rule="borda", seed=1))
    s = snap.snapshot_id
    pages = [
        ("get", reverse("aggregation-pool-list", args=[p]), {}),
        ("get", reverse("aggregation-pool-create", args=[p]), {}),
        ("post", reverse("aggregation-pool-create", args=[p]), {"name": "new", "kinds": "both", "human_weight": "1",
                                                               "synthetic_weight": "1", "min_rankings": "0"}),
        ("get", reverse("aggregation-pool-edit", args=[p, "mine"]), {}),
        ("post", reverse("aggregation-pool-edit", args=[p, "mine"]), {"name": "mine", "kinds": "humans"}),
        ("post", reverse("aggregation-pool-delete", args=[p, "mine"]), {}),
        ("get", reverse("aggregation-collective-list", args=[p]), {}),
        ("get", reverse("aggregation-snapshot-list", args=[p]), {}),
        ("post", reverse("aggregation-snapshot-list", args=[p]), {"pool": "all", "rule": "copeland",
                                                                 "pair_strategy": "all", "seed": "0", "train": "1",
                                                                 "validation": "0", "test": "0"}),
        ("get", reverse("aggregation-snapshot-detail", args=[s]), {}),
        ("get", reverse("aggregation-snapshot-download", args=[s]), {}),
        ("get", reverse("aggregation-snapshot-diff", args=[s]), {"other": snap2.snapshot_id}),
        ("post", reverse("aggregation-snapshot-delete", args=[s]), {}),
    ]
    for user in (annotator, outsider, other):
        client.force_login(user)
        for method, url, data in pages:
            assert getattr(client, method)(url, data).status_code == 404, (user, method, url)
    client.logout()
    for method, url, data in pages:
        response = getattr(client, method)(url, data)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"], url
    assert Pool.objects.filter(name="mine").exists() and Snapshot.objects.count() == 2
    client.force_login(owner)
    assert client.put(reverse("aggregation-pool-list", args=[p])).status_code == 405
