"""Synthetic rankings never use up the human overlap target: items count human and synthetic
rankings apart, a project may set a synthetic target of its own, and the PostgreSQL fast path
counts as the Django path does."""
from __future__ import annotations

import uuid

import pytest

from annotation.models import Item
from annotation.services import (
    annotator_progress,
    next_assignment,
    project_progress,
    rater_for_user,
    record_ranking,
    submit_ranking,
    synthetic_rater,
)
from synthetic.models import SyntheticRun
from synthetic.services import SyntheticRunError, select_items

pytestmark = pytest.mark.django_db

ORDER = [["r1"], ["r2"], ["r3"], ["r4"]]


def synthetic_rankings(project, personas: int = 3, items: tuple[str, ...] = ("item-0", "item-1", "item-2")) -> None:
    for n in range(personas):
        rater = synthetic_rater(persona={"id": f"p{n}", "description": "a persona"}, model="fake:m")
        for item in project.items.filter(external_id__in=items):
            record_ranking(item=item, rater=rater, order=ORDER)


def test_a_synthetic_run_leaves_every_item_to_the_annotators(project, annotator, annotator2):
    synthetic_rankings(project)  # three personas on every item; the human target is 2
    assert set(Item.objects.values_list("ranking_count", "synthetic_count")) == {(0, 3)}
    assert annotator_progress(project=project, user=annotator)["remaining"] == 3
    for user in (annotator, annotator2):
        for _ in range(3):
            lease = next_assignment(project=project, user=user)
            assert lease is not None
            submit_ranking(user=user, assignment=lease, order=[[r] for r in lease.shown_order])
    assert set(Item.objects.values_list("ranking_count", "synthetic_count")) == {(2, 3)}
    assert project_progress(project) == {"items": 3, "rankings": 6, "synthetic": 9, "target": 6, "complete_items": 3}


def test_a_revision_or_a_repeat_counts_once(project, annotator):
    human = rater_for_user(annotator)
    item = project.items.get(external_id="item-0")
    first = record_ranking(item=item, rater=human, order=ORDER, submission_id=uuid.uuid4())
    record_ranking(item=item, rater=human, order=ORDER, submission_id=first.submission_id)
    record_ranking(item=item, rater=human, order=[list(reversed(ORDER[0] + ORDER[1]))] + ORDER[2:])
    synthetic_rankings(project, personas=1, items=("item-0",))
    synthetic_rankings(project, personas=1, items=("item-0",))  # the same persona again: a new version
    item.refresh_from_db()
    assert (item.ranking_count, item.synthetic_count) == (1, 1)


def test_synthetic_target_leaves_items_that_reached_it_out_of_a_new_run(project):
    project.synthetic_target = 2
    project.save(update_fields=["synthetic_target"])
    synthetic_rankings(project, personas=2, items=("item-0",))
    synthetic_rankings(project, personas=1, items=("item-1",))
    chosen = select_items(project, SyntheticRun.Items.ALL)
    assert [i.external_id for i in chosen] == ["item-1", "item-2"]
    synthetic_rankings(project, personas=2, items=("item-1", "item-2"))
    with pytest.raises(SyntheticRunError, match="already has the project's 2 synthetic ranking"):
        select_items(project, SyntheticRun.Items.ALL)


def test_no_synthetic_target_means_no_limit(project):
    assert project.synthetic_target == 0
    synthetic_rankings(project, personas=5)
    assert len(select_items(project, SyntheticRun.Items.ALL)) == 3

