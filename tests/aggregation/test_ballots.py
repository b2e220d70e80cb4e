"""The loader gives the same ballots as the stored JSON, for every rater kind, flag and weight."""
from __future__ import annotations

import numpy as np
import pytest

from aggregation.ballots import RaterWeights, load_ballots, load_items, source_digest
from annotation.models import Ranking
from socialchoice import Profile

from .factories import random_world

pytestmark = pytest.mark.django_db


def _orders_of(ballots, i):
    return ballots.profile(i).weak_orders()


@pytest.mark.parametrize("seed", [1, 2])
def test_ballots_match_the_stored_weak_orders(owner, seed):
    world = random_world(owner, seed=seed, partial=True)
    ballots = load_ballots(world.project)
    assert len(ballots) == len(world.orders)
    for row, (rid, item_i, rater) in enumerate(zip(ballots.ranking_ids, ballots.item_index, ballots.rater_ids, strict=True)):
        item = ballots.items.pks[item_i]
        stored = world.orders[(int(item), int(rater))]
        alts = ballots.items.alternatives[item_i]
        k = len(alts)
        expected = Profile.from_weak_orders(alts, [stored]).ranks[0]
        got = Profile.from_group_indices(alts, ballots.group_indices[row : row + 1, :k]).ranks[0]
        np.testing.assert_array_equal(got, expected)
        assert Ranking.objects.get(pk=rid).order == stored


def test_rater_weights_filter_and_cannot_judge(owner):
    world = random_world(owner, seed=3)
    keep = sorted(r.pk for r in world.humans[:2])
    ballots = load_ballots(world.project, raters=RaterWeights(np.array(keep), np.array([2.0, 0.5])))
    assert set(ballots.rater_ids.tolist()) <= set(keep)
    assert set(ballots.weights.tolist()) <= {2.0, 0.5}
    assert ballots.human.all()
    flagged = Ranking.objects.filter(rater=world.humans[0]).first()
    flagged.flags = ["cannot_judge"]
    flagged.save()
    assert load_ballots(world.project).cannot_judge.sum() == 1
    assert flagged.pk not in load_ballots(world.project, drop_cannot_judge=True).ranking_ids


def test_item_ranges_and_digest(owner):
    world = random_world(owner, seed=4)
    items = load_items(world.project)
    lo, hi = int(items.pks[0]), int(items.pks[2])
    part = load_ballots(world.project, item_range=(lo, hi))
    assert set(part.items.pks.tolist()) == {int(p) for p in items.pks[:3]}
    before = source_digest(world.project)
    assert before == source_digest(world.project)
    Ranking.objects.filter(pk=part.ranking_ids[0]).update(is_current=False)
    assert source_digest(world.project) != before


def test_codes_are_stored_once_and_reencoded_when_the_item_grows(owner):
    from aggregation.models import RankingCode
    from annotation.models import Response

    world = random_world(owner, seed=5, n_items=3, ks=(4,))
    first = load_ballots(world.project)
    assert RankingCode.objects.count() == len(first)
    again = load_ballots(world.project)
    np.testing.assert_array_equal(again.group_indices, first.group_indices)
    item = world.items[0]
    Response.objects.create(item=item, response_id="late", text="added later", position=99)
    grown = load_ballots(world.project)
    rows = grown.item_index == 0
    assert (grown.group_indices[rows, 4] == -1).all()  # nobody ranked the new response: unranked
    np.testing.assert_array_equal(grown.group_indices[rows, :4], first.group_indices[first.item_index == 0, :4])
    codes = RankingCode.objects.filter(ranking__item=item).values_list("code", flat=True)
    assert {len(c) for c in codes} == {5} and all(c.endswith("-") for c in codes)
