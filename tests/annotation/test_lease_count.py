"""Item.lease_count: the count of `leased` assignments the next-item walk relies on.

It must equal the assignments table after every way a lease starts or ends (lease, submit, late
submit, skip, expiry by the janitor, an annotator's own lapsed lease, removal from the project),
and on PostgreSQL the next-item statement must visit the same few rows whether 50 or 200
annotators hold leases on the items at the front of the queue.
"""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.db import connection
from django.db.models import Count, Q
from django.utils import timezone

from annotation import loop_sql as sql
from annotation.models import Assignment, Item, Membership, Project
from annotation.services import (
    add_member,
    create_project,
    expire_leases,
    next_assignment,
    remove_member,
    skip_assignment,
    submit_ranking,
)

pytestmark = pytest.mark.django_db


def assert_counts_exact(project: Project) -> None:
    items = Item.objects.filter(project=project).annotate(
        leased=Count("assignments", filter=Q(assignments__status=Assignment.Status.LEASED)))
    assert {i.pk: i.lease_count for i in items} == {i.pk: i.leased for i in items}


def test_every_way_a_lease_starts_or_ends_keeps_the_count_exact(project, annotator, annotator2, django_user_model):
    third = django_user_model.objects.create_user("carol")
    add_member(project=project, user=third, role=Membership.Role.ANNOTATOR)
    mine = next_assignment(project=project, user=annotator)
    theirs = next_assignment(project=project, user=annotator2)
    carols = next_assignment(project=project, user=third)
    assert_counts_exact(project)
    assert sum(Item.objects.filter(project=project).values_list("lease_count", flat=True)) == 3

    submit_ranking(user=annotator, assignment=mine, order=[[r] for r in mine.shown_order])
    skip_assignment(assignment=theirs, user=annotator2)
    assert_counts_exact(project)

    # A lease that ran out: the janitor closes it; a late submit on it then changes no count.
    Assignment.objects.filter(pk=carols.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert expire_leases() == 1
    assert_counts_exact(project)
    carols.refresh_from_db()
    submit_ranking(user=third, assignment=carols, order=[[r] for r in carols.shown_order])
    assert_counts_exact(project)

    # The annotator's own lapsed lease is closed when they ask again, and its item comes back first.
    lapsing = next_assignment(project=project, user=annotator)
    Assignment.objects.filter(pk=lapsing.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    again = next_assignment(project=project, user=annotator)
    assert again.item_id == lapsing.item_id
    assert_counts_exact(project)

    remove_member(project=project, user=annotator)
    assert_counts_exact(project)
    assert not Item.objects.filter(project=project, lease_count__gt=0).exists()


def test_a_drifted_count_heals_when_the_item_is_needed(project, annotator):
    """An item whose count says it is full but has room (a lease deleted behind the loop's back)
    is still found once nothing else is left, and its count is made exact."""
    Item.objects.filter(project=project).update(lease_count=project.overlap_target)
    lease = next_assignment(project=project, user=annotator)
    assert lease is not None
    assert Item.objects.get(pk=lease.item_id).lease_count == 1


@pytest.mark.postgres
@pytest.mark.parametrize("annotators", [50, 200])
def test_the_next_item_walk_does_not_grow_with_annotators_holding_leases(django_user_model, annotators):
    if connection.vendor != "postgresql":
        pytest.skip("row locks and the plan checked are PostgreSQL's (this runs in CI's PostgreSQL pass)")
    owner = django_user_model.objects.create_user("plan-owner")
    project = create_project(owner=owner, name="plan", overlap_target=3, status=Project.Status.ACTIVE)
    items = Item.objects.bulk_create(Item(project=project, external_id=f"i{n}", prompt="p") for n in range(2000))
    users = django_user_model.objects.bulk_create(django_user_model(username=f"u{n}") for n in range(annotators + 1))
    for user in users:
        add_member(project=project, user=user, role=Membership.Role.ANNOTATOR)
    from annotation.models import Rater

    raters = {r.user_id: r for r in Rater.objects.filter(user__in=users)}
    # Every annotator but the last holds a lease on the front items, target-many per item.
    expires = timezone.now() + timedelta(hours=1)
    Assignment.objects.bulk_create(
        Assignment(item=items[n // 3], rater=raters[u.pk], shown_order=[], expires_at=expires)
        for n, u in enumerate(users[:-1]))
    Item.objects.filter(pk__in=[i.pk for i in items[: (annotators + 2) // 3]]).update(lease_count=3)
    last = raters[users[-1].pk]
    statement, params = sql.next_candidate(project.pk, 3, last.pk, timezone.now(), [])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, params)
        plan = cursor.fetchone()[0]
    plan = json.loads(plan) if isinstance(plan, str) else plan
    scans = [node for node in _nodes(plan[0]["Plan"]) if node.get("Relation Name") == Item._meta.db_table]
    assert scans and all(node.get("Index Name") == "item_next_open" for node in scans), scans
    assert sum(node["Actual Rows"] * node.get("Actual Loops", 1) for node in scans) <= 2, scans


def _nodes(node: dict):
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)
