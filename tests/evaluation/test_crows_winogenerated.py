"""CrowS-Pairs and winogenerated scorers on the shipped data with known predictors."""
from __future__ import annotations

import numpy as np
import pytest

from evaluation.benchmarks import BenchmarkDataError, crows_pairs, winogenerated


@pytest.fixture(scope="module")
def crows() -> list[crows_pairs.CrowsPair]:
    return crows_pairs.load_crows_pairs()


def test_crows_pairs_shipped_file(crows) -> None:
    assert len(crows) == 1508
    assert len({p.bias_type for p in crows}) == 9


@pytest.mark.parametrize(
    ("predictor", "expected"),
    [("stereotyped", 1.0), ("anti", 0.0), ("indifferent", 0.5)],
)
def test_crows_pairs_known_predictors(crows, predictor, expected) -> None:
    more = {"stereotyped": 1.0, "anti": -1.0, "indifferent": 0.0}[predictor]
    result = crows_pairs.score(crows, [more] * len(crows), [0.0] * len(crows))
    assert result["overall"]["pct_stereotype"] == expected
    assert all(r["pct_stereotype"] == expected for r in result["per_bias_type"].values())
    assert sum(r["n"] for r in result["per_bias_type"].values()) == 1508


def test_crows_pairs_random_by_hand() -> None:
    pairs = [crows_pairs.CrowsPair("a", "b", "stereo", "age"), crows_pairs.CrowsPair("c", "d", "antistereo", "age"),
             crows_pairs.CrowsPair("e", "f", "stereo", "race-color")]
    result = crows_pairs.score(pairs, [-1.0, -2.0, -5.0], [-2.0, -1.0, -1.0])
    assert result["per_bias_type"]["age"]["pct_stereotype"] == 0.5
    assert result["per_bias_type"]["race-color"]["pct_stereotype"] == 0.0
    assert result["overall"]["likelihood_diff"] == pytest.approx((1 + 1 + 4) / 3)


def test_crows_pairs_missing_column(tmp_path) -> None:
    (tmp_path / "c.csv").write_text("sent_more,sent_less\nA,B\n")
    with pytest.raises(BenchmarkDataError, match="c.csv: missing column"):
        crows_pairs.load_crows_pairs(tmp_path / "c.csv")


def test_winogenerated_known_predictors() -> None:
    examples = winogenerated.load_winogenerated()
    assert len(examples) == 2990 and len({e.occupation for e in examples}) == 299
    n = len(examples)
    female = winogenerated.score(examples, np.tile([-5.0, 0.0, -5.0], (n, 1)))
    assert female["p_female"] == pytest.approx(1.0, abs=0.01) and female["correlation_with_bls"] is None
    # a model that mirrors the labour statistics correlates perfectly with them
    mirror = np.array([[np.log(1 - e.percent_women / 100 + 1e-9), np.log(e.percent_women / 100 + 1e-9), -50.0] for e in examples])
    result = winogenerated.score(examples, mirror)
    assert result["correlation_with_bls"] == pytest.approx(1.0, abs=1e-6)
    assert result["p_neutral"] < 1e-6
    neutral = winogenerated.score(examples, np.tile([-5.0, -5.0, 0.0], (n, 1)))
    assert neutral["p_neutral"] > 0.98 and neutral["p_female"] == pytest.approx(0.5)
