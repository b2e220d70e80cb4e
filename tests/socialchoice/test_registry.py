"""The registry and describe(): every rule documents its facts for the UI."""

from __future__ import annotations

from socialchoice import DEFAULT_RULE, REGISTRY, describe

EXPECTED = {
    "borda", "copeland", "kemeny", "schulze", "ranked_pairs", "minimax", "split_cycle",
    "plurality", "instant_runoff", "mean_rank", "bradley_terry", "plackett_luce", "egalitarian",
}


def test_every_issue_rule_is_registered() -> None:
    assert set(REGISTRY) == EXPECTED
    assert DEFAULT_RULE in REGISTRY


def test_describe_gives_every_fact_for_every_rule() -> None:
    rows = describe()
    assert [r["name"] for r in rows] == sorted(EXPECTED)
    for row in rows:
        assert row["title"]
        for key in ("definition", "ties", "complexity", "axioms", "reference"):
            assert len(row[key]) > 10, (row["name"], key)  # type: ignore[literal-required]
        assert "clone" in row["axioms"].lower(), row["name"]
        assert "pick the first" not in row["ties"].lower()


def test_clone_independence_flags() -> None:
    flags = {r["name"]: r["clone_independent"] for r in describe()}
    assert {n for n, f in flags.items() if f} == {"schulze", "ranked_pairs", "split_cycle"}
