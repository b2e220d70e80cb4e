from __future__ import annotations

import pytest

from synthetic.backends.ranking_grammar import (
    RankingParseError,
    all_rankings,
    count_rankings,
    default_labels,
    format_ranking,
    parse_json_answer,
    parse_ranking,
    ranking_json_schema,
)

ABCD = default_labels(4)


@pytest.mark.parametrize(
    ("text", "ties", "expected"),
    [
        ("B > A = C > D", True, [["B"], ["A", "C"], ["D"]]),
        ("B>A=C>D", True, [["B"], ["A", "C"], ["D"]]),
        ("  D > C > B > A\n", False, [["D"], ["C"], ["B"], ["A"]]),
        ("C = A = D = B", True, [["A", "B", "C", "D"]]),
        ("A >B> C >D", False, [["A"], ["B"], ["C"], ["D"]]),
    ],
)
def test_parse_valid_rankings(text: str, ties: bool, expected: list[list[str]]) -> None:
    assert parse_ranking(text, ABCD, ties) == expected


@pytest.mark.parametrize(
    ("text", "ties"),
    [
        ("", False),
        ("B > A = C > D", False),  # tie where ties are not allowed
        ("B > A > C", False),  # D missing
        ("B > A > A > C > D", False),  # A twice
        ("B > A > C > D > E", False),  # unknown label
        ("b > a > c > d", False),  # lower case
        ("B >> A > C > D", False),
        ("B  > A > C > D", False),  # two spaces
        ("The best is B > A > C > D", False),
        ("B, A, C, D", False),
        ("B > A > C > D >", True),
    ],
)
def test_parse_rejects_invalid(text: str, ties: bool) -> None:
    with pytest.raises(RankingParseError):
        parse_ranking(text, ABCD, ties)


@pytest.mark.parametrize(("k", "strict", "weak"), [(1, 1, 1), (2, 2, 3), (3, 6, 13), (4, 24, 75)])
def test_every_enumerated_ranking_parses_and_counts_match(k: int, strict: int, weak: int) -> None:
    labels = default_labels(k)
    for ties, expected in ((False, strict), (True, weak)):
        answers = all_rankings(labels, ties)
        assert len(answers) == len(set(answers)) == expected == count_rankings(k, ties)
        for answer in answers:
            assert format_ranking(parse_ranking(answer, labels, ties)) == answer


def test_json_answer_and_schema() -> None:
    schema = ranking_json_schema(ABCD, allow_ties=True, reasoning=True)
    assert schema["required"] == ["reasoning", "ranking"]
    assert parse_json_answer('{"reasoning": "r", "ranking": "A > B"}') == ("A > B", "r")
    with pytest.raises(RankingParseError):
        parse_json_answer("{not json")
    with pytest.raises(RankingParseError):
        parse_json_answer('{"order": "A > B"}')
