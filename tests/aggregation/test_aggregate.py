"""The aggregation service equals socialchoice called directly on the same ballots, for every rule."""
from __future__ import annotations

import numpy as np
import pytest

import socialchoice
from aggregation.pools import PoolSpec
from aggregation.services import AggregationError, collective
from annotation.models import Ranking, Response

from .factories import random_world

pytestmark = pytest.mark.django_db

RULES = [r["name"] for r in socialchoice.describe()]


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_every_rule_equals_direct_socialchoice(owner, seed):
    world = random_world(owner, seed=seed, n_items=5, ks=(3, 4, 5), partial=seed == 13)
    weights = {world.humans[0].key: 2.5, world.synthetic[0].key: 0.25}
    spec = PoolSpec(synthetic_weight=0.75, rater_weights=weights)
    by_key = {r.pk: r.key for r in world.humans + world.synthetic}
    for rule in RULES:
        got = collective(world.project, pool=spec, rule=rule)
        assert len(got.ballots.items) == len(world.items)
        for i, item_pk in enumerate(got.ballots.items.pks.tolist()):
            alts = got.ballots.items.alternatives[i]
            rankings = Ranking.objects.filter(item_id=item_pk, is_current=True).order_by("pk")
            orders = [r.order for r in rankings]
            w = [(0.75 if by_key[r.rater_id].startswith("persona") else 1.0) * weights.get(by_key[r.rater_id], 1.0)
                 for r in rankings]
            direct = socialchoice.aggregate(socialchoice.Profile.from_weak_orders(alts, orders, w), rule)
            assert got.order(i) == direct.order, (rule, item_pk)
            np.testing.assert_allclose(list(got.score_map(i).values()), [direct.scores[a] for a in alts],
                                       rtol=1e-9, atol=1e-12, err_msg=rule)


def test_random_tie_policy_records_its_seed(owner):
    world = random_world(owner, seed=14, n_items=3)
    a = collective(world.project, rule="borda", tie_policy="random", seed=7)
    b = collective(world.project, rule="borda", tie_policy="random", seed=7)
    assert a.tie_seed == 7 and all(a.order(i) == b.order(i) for i in range(3))
    assert all(len(g) == 1 for i in range(3) for g in a.order(i))


def test_items_beyond_the_k_limit_are_named(owner):
    world = random_world(owner, seed=15, n_items=3, ks=(4,))
    big = world.items[1]
    Response.objects.bulk_create([Response(item=big, response_id=f"x{j}", text="x", position=10 + j) for j in range(14)])
    with pytest.raises(AggregationError, match=f"K = 16.*{big.external_id}"):
        collective(world.project, rule="kemeny")
    with pytest.raises(AggregationError, match="unknown rule 'nope'"):
        collective(world.project, rule="nope")
    with pytest.raises(AggregationError, match="tie policy"):
        collective(world.project, rule="borda", tie_policy="first")
