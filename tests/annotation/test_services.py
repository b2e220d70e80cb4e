from __future__ import annotations

import uuid

import pytest

from annotation.models import Assignment, Item, Ranking
from annotation.services import (
    AssignmentError,
    next_assignment,
    record_ranking,
    skip_assignment,
    submit_ranking,
)
from annotation.weak_orders import RankingError

pytestmark = pytest.mark.django_db


def test_next_assignment_leases_least_ranked_item_with_shuffled_order(project, annotator):
    assignment = next_assignment(project=project, user=annotator, seed=1)
    assert assignment.item.external_id == "item-0"
    assert sorted(assignment.shown_order) == ["r1", "r2", "r3", "r4"]
    # Asking again returns the lease already held instead of a second item.
    assert next_assignment(project=project, user=annotator).pk == assignment.pk


def test_submit_stores_ranking_with_shown_order_and_counts(project, annotator):
    assignment = next_assignment(project=project, user=annotator)
    ranking = submit_ranking(user=annotator, assignment=assignment, order=[["r2"], ["r1", "r3"], ["r4"]], seconds=3.5)
    assert ranking.order == [["r2"], ["r1", "r3"], ["r4"]]
    assert ranking.shown_order == assignment.shown_order
    assert Item.objects.get(pk=assignment.item_id).ranking_count == 1
    assignment.refresh_from_db()
    assert assignment.status == Assignment.Status.SUBMITTED
    assert next_assignment(project=project, user=annotator).item_id != assignment.item_id


def test_repeated_submit_with_same_id_is_idempotent(project, annotator):
    assignment = next_assignment(project=project, user=annotator)
    sid = uuid.uuid4()
    first = submit_ranking(user=annotator, assignment=assignment, order=[["r1"], ["r2"], ["r3"], ["r4"]], submission_id=sid)
    again = submit_ranking(user=annotator, assignment=assignment, order=[["r1"], ["r2"], ["r3"], ["r4"]], submission_id=sid)
    assert again.pk == first.pk
    assert Ranking.objects.count() == 1
    assert Item.objects.get(pk=assignment.item_id).ranking_count == 1


def test_overlap_target_stops_assignment(project, annotator, annotator2, owner):
    for user in (annotator, annotator2):
        for _ in range(3):
            a = next_assignment(project=project, user=user)
            submit_ranking(user=user, assignment=a, order=[["r1"], ["r2"], ["r3"], ["r4"]])
    assert next_assignment(project=project, user=annotator) is None
    assert next_assignment(project=project, user=owner) is None  # every item reached its target of 2


def test_invalid_ranking_changes_nothing(project, annotator):
    assignment = next_assignment(project=project, user=annotator)
    with pytest.raises(RankingError, match="not a response of this item"):
        submit_ranking(user=annotator, assignment=assignment, order=[["r1"], ["r9"]])
    with pytest.raises(RankingError, match="leaves out"):
        submit_ranking(user=annotator, assignment=assignment, order=[["r1"], ["r2"]])
    assert Ranking.objects.count() == 0
    assert Item.objects.get(pk=assignment.item_id).ranking_count == 0


def test_edit_keeps_previous_version(project, annotator):
    item = project.items.first()
    from annotation.services import rater_for_user

    rater = rater_for_user(annotator)
    record_ranking(item=item, rater=rater, order=[["r1"], ["r2"], ["r3"], ["r4"]])
    second = record_ranking(item=item, rater=rater, order=[["r4"], ["r3"], ["r2"], ["r1"]])
    assert second.version == 2
    assert list(Ranking.objects.filter(item=item).values_list("is_current", flat=True)) == [False, True]
    item.refresh_from_db()
    assert item.ranking_count == 1


def test_skip_and_foreign_assignment(project, annotator, annotator2):
    assignment = next_assignment(project=project, user=annotator)
    with pytest.raises(AssignmentError):
        skip_assignment(assignment=assignment, user=annotator2)
    skip_assignment(assignment=assignment, user=annotator)
    assert next_assignment(project=project, user=annotator).item_id != assignment.item_id


def test_outsider_cannot_get_assignment(project, outsider):
    with pytest.raises(AssignmentError, match="not a member"):
        next_assignment(project=project, user=outsider)


def test_submission_id_reused_on_another_item_is_refused(project, annotator):
    sid = uuid.uuid4()
    first = next_assignment(project=project, user=annotator)
    submit_ranking(user=annotator, assignment=first, order=[["r1"], ["r2"], ["r3"], ["r4"]], submission_id=sid)
    second = next_assignment(project=project, user=annotator)
    with pytest.raises(RankingError, match="already used"):
        submit_ranking(user=annotator, assignment=second, order=[["r1"], ["r2"], ["r3"], ["r4"]], submission_id=sid)
    assert Ranking.objects.count() == 1


def test_expired_lease_returns_item_to_pool_and_to_the_same_annotator(project, annotator):
    from datetime import timedelta

    from django.utils import timezone

    first = next_assignment(project=project, user=annotator)
    Assignment.objects.filter(pk=first.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    again = next_assignment(project=project, user=annotator)
    assert again.pk != first.pk and again.item_id == first.item_id
    first.refresh_from_db()
    assert first.status == Assignment.Status.EXPIRED
