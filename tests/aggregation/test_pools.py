"""Pool validation: every refusal names its cause and saves nothing; raking against a hand-computed case."""
from __future__ import annotations

import math

import numpy as np
import pytest

from aggregation.models import Pool
from aggregation.pools import ALL, PoolError, kish, parse_targets_csv, rake, resolve
from aggregation.services import pool_spec, save_pool

from .factories import World, add_human, add_persona, make_project, rank_all

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(owner) -> World:
    project, items = make_project(owner, n_items=4)
    w = World(project, owner, items)
    w.humans = [
        add_human(project, "af", {"age_band": "A", "gender": "f", "country": "DE"}),
        add_human(project, "am", {"age_band": "A", "gender": "m", "country": "DE"}),
        add_human(project, "bf", {"age_band": "B", "gender": "f", "country": "FR"}),
        add_human(project, "bm1", {"age_band": "B", "gender": "m", "country": "FR"}),
        add_human(project, "bm2", {"age_band": "B", "gender": "m", "country": "FR", "religion": "none"},
                  consented=["age_band", "gender", "country"]),
    ]
    w.synthetic = [add_persona("left1", {"political_leaning": "left"}),
                   add_persona("right1", {"political_leaning": "right"})]
    rank_all(w, w.humans + w.synthetic, seed=5)
    return w


def _refused(world, field, needle, **data):
    with pytest.raises(PoolError) as err:
        save_pool(project=world.project, user=world.owner, data={"name": "p", **data})
    assert err.value.field == field
    assert needle in err.value.message
    assert not Pool.objects.exists()
    return err.value


def test_all_pool_counts_every_rater_equally(world):
    resolved = resolve(world.project, ALL)
    assert len(resolved.raters.rater_ids) == 7
    assert set(resolved.raters.weights.tolist()) == {1.0}
    assert resolved.effective_size == pytest.approx(7)
    assert pool_spec(world.project, "all") == ALL


def test_filters_kinds_and_weights(world):
    pool = save_pool(project=world.project, user=world.owner, data={
        "name": "young DE humans + left personas", "kinds": "both", "human_filters": {"age_band": ["A"]},
        "persona_filters": {"political_leaning": ["left"]}, "synthetic_weight": 0.5,
        "rater_weights": {world.humans[0].key: 3.0}})
    got = dict(zip(pool.resolved.keys.values(), pool.resolved.raters.weights.tolist(), strict=True))
    assert got == {world.humans[0].key: 3.0, world.humans[1].key: 1.0, world.synthetic[0].key: 0.5}
    assert pool.resolved.effective_size == pytest.approx(4.5**2 / (9 + 1 + 0.25))
    humans = resolve(world.project, pool_spec(world.project, pool.name).__class__(kinds="humans"))
    assert humans.n_synthetic == 0 and humans.n_humans == 5


def test_refusals_name_the_cause(world):
    _refused(world, "raters", "no rater", kinds="humans", human_filters={"country": ["US"]})
    _refused(world, "human_weight", "negative", human_weight=-1)
    _refused(world, "rater_weights", "negative", rater_weights={world.humans[0].key: -0.5})
    _refused(world, "rater_weights", "not a rater", rater_weights={"user:999999": 1.0})
    # bm2 holds a religion value but never consented to share it; nobody else has one.
    _refused(world, "human_filters", "'religion' is not a demographic field", human_filters={"religion": ["none"]})
    _refused(world, "persona_filters", "'sex' is not an attribute", persona_filters={"sex": ["f"]})
    _refused(world, "raking_targets", "target cell age_band=C has no rater",
             raking_targets={"age_band": {"A": 0.4, "B": 0.3, "C": 0.3}})
    _refused(world, "raking_targets", "sum to 0.9", raking_targets={"age_band": {"A": 0.5, "B": 0.4}})
    _refused(world, "raking_targets", "not a demographic field", raking_targets={"religion": {"none": 1.0}})
    _refused(world, "name", "built-in", name="all")
    _refused(world, "max_distance", "[0, 1]", max_distance=2.0)


def test_raking_that_cannot_converge_is_refused(world, owner):
    # Only A-f and B-m people: age and gender move together, so 50/50 age and 30/70 gender conflict.
    _refused(world, "raking_targets", "did not converge", kinds="humans",
             human_filters={"country": ["DE", "FR"]},
             rater_weights={world.humans[1].key: 0.0, world.humans[2].key: 0.0},
             raking_targets={"age_band": {"A": 0.5, "B": 0.5}, "gender": {"f": 0.3, "m": 0.7}})


def test_raking_matches_the_hand_computed_fixed_point():
    # Cells AF, AM, BF, BM, BM; targets 1/2 on every margin. The raked weights are x_age * y_gender
    # with x_A = 1, x_B = 1/sqrt(2), y_F = 2.5 / (1 + x_B), y_M = 2.5 / (1 + 2 x_B) (solved by hand).
    values = {"age": ["A", "A", "B", "B", "B"], "gender": ["F", "M", "F", "M", "M"]}
    targets = {"age": {"A": 0.5, "B": 0.5}, "gender": {"F": 0.5, "M": 0.5}}
    w, record = rake(np.ones(5), values, targets)
    xb = 1 / math.sqrt(2)
    yf, ym = 2.5 / (1 + xb), 2.5 / (1 + 2 * xb)
    np.testing.assert_allclose(w, [yf, ym, xb * yf, xb * ym, xb * ym], rtol=1e-7)
    assert w.sum() == pytest.approx(5)
    assert record["iterations"] > 1
    assert kish(w) == pytest.approx(25 / float((w**2).sum()))


def test_raking_in_a_pool_keeps_the_synthetic_weights(world):
    pool = save_pool(project=world.project, user=world.owner, data={
        "name": "raked", "raking_targets": {"age_band": {"A": 0.5, "B": 0.5}, "gender": {"f": 0.5, "m": 0.5}}})
    weights = dict(zip(pool.resolved.keys.values(), pool.resolved.raters.weights.tolist(), strict=True))
    xb = 1 / math.sqrt(2)
    assert weights[world.humans[0].key] == pytest.approx(2.5 / (1 + xb), rel=1e-7)
    assert weights[world.humans[4].key] == pytest.approx(xb * 2.5 / (1 + 2 * xb), rel=1e-7)
    assert weights[world.synthetic[0].key] == 1.0
    assert pool.resolved.raking["fields"] == ["age_band", "gender"]


def test_quality_filters(owner):
    from annotation.models import Ranking

    project, items = make_project(owner, name="Quality", n_items=3)
    agree = [add_human(project, f"agree{n}", {"country": "DE"}) for n in range(3)]
    contrarian = add_human(project, "contrarian", {"country": "DE"})
    rare = add_human(project, "rare", {"country": "DE"})
    rows = []
    for item in items:
        for rater in agree:
            rows.append(Ranking(item=item, rater=rater, order=[["r0"], ["r1"], ["r2"], ["r3"]], shown_order=[]))
        rows.append(Ranking(item=item, rater=contrarian, order=[["r3"], ["r2"], ["r1"], ["r0"]], shown_order=[]))
    rows.append(Ranking(item=items[0], rater=rare, order=[["r0"], ["r1"], ["r2"], ["r3"]], shown_order=[]))
    Ranking.objects.bulk_create(rows)
    pool = save_pool(project=project, user=owner, data={"name": "careful", "max_distance": 0.5, "min_rankings": 2})
    assert set(pool.resolved.keys.values()) == {r.key for r in agree}
    assert pool.resolved.left_out == {"minimum rankings": 1, "distance to the collective": 1}
    with pytest.raises(PoolError, match="no rater"):
        resolve(project, ALL.__class__(min_rankings=99))


def test_targets_csv():
    assert parse_targets_csv("field,value,share\nage_band,A,0.5\nage_band,B,0.5\n") == {"age_band": {"A": 0.5, "B": 0.5}}
    with pytest.raises(PoolError, match="line 3: share 'x'"):
        parse_targets_csv("field,value,share\nage_band,A,0.5\nage_band,B,x\n")
    with pytest.raises(PoolError, match="header"):
        parse_targets_csv("a,b\n1,2\n")
