"""Many annotators racing for assignments on PostgreSQL, with real threads and connections."""
from __future__ import annotations

import random
import threading
import uuid
from collections import Counter

import pytest
from django.db import connection, connections

from annotation.models import Assignment, Item, Membership, Project, Ranking
from annotation.services import (
    add_member,
    create_item,
    create_project,
    next_assignment,
    submit_ranking,
)

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ANNOTATORS = 16
ITEMS = 24
TARGET = 3


@pytest.fixture
def race_project(django_user_model):
    if connection.vendor != "postgresql":
        pytest.skip("row locks under real concurrency are tested on PostgreSQL (the production database)")
    owner = django_user_model.objects.create_user("race-owner")
    project = create_project(owner=owner, name="race", overlap_target=TARGET, status=Project.Status.ACTIVE)
    users = [django_user_model.objects.create_user(f"racer{n}") for n in range(ANNOTATORS)]
    for user in users:
        add_member(project=project, user=user, role=Membership.Role.ANNOTATOR)
    for n in range(ITEMS):
        create_item(project=project, external_id=f"i{n}", prompt=f"p{n}",
                    responses=[{"id": f"r{k}", "text": f"t{k}"} for k in range(4)])
    return project, users


def _load(item_id: int) -> int:
    item = Item.objects.get(pk=item_id)
    live = Assignment.objects.filter(item_id=item_id, status=Assignment.Status.LEASED).count()
    return item.ranking_count + live


def _annotate(project, user, barrier, stored: list, overloads: list, errors: list) -> None:
    rng = random.Random(user.pk)
    try:
        barrier.wait()
        while (assignment := next_assignment(project=project, user=user)) is not None:
            if _load(assignment.item_id) > TARGET:
                overloads.append(assignment.item_id)
            order = [[rid] for rid in rng.sample(assignment.shown_order, 4)]
            sid = uuid.uuid4()
            first = submit_ranking(user=user, assignment=assignment, order=order, submission_id=sid)
            if rng.random() < 0.3:  # a network retry of the same submit
                again = submit_ranking(user=user, assignment=assignment, order=order, submission_id=sid)
                assert again.pk == first.pk
            stored.append((user.pk, assignment.item_id, str(sid)))
    except Exception as exc:  # surfaced by the main thread's assertion
        errors.append(repr(exc))
    finally:
        connections.close_all()


def test_racing_annotators_never_overfill_and_never_lose_a_submission(race_project):
    project, users = race_project
    barrier = threading.Barrier(len(users))
    stored: list = []
    overloads: list = []
    errors: list = []
    threads = [threading.Thread(target=_annotate, args=(project, u, barrier, stored, overloads, errors)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert overloads == []
    rankings = Ranking.objects.filter(item__project=project)
    # Every item reached exactly its target; no more, because nobody was over-assigned.
    assert Counter(rankings.values_list("item_id", flat=True)) == {i.pk: TARGET for i in project.items.all()}
    assert all(i.ranking_count == TARGET for i in project.items.all())
    # Every submission the annotators saw succeed is stored exactly once, and nobody ranked an item twice.
    assert len(stored) == ITEMS * TARGET == rankings.count()
    assert set(rankings.values_list("submission_id", flat=True)) == {uuid.UUID(s) for _, _, s in stored}
    assert len({(r.rater_id, r.item_id) for r in rankings}) == rankings.count()
