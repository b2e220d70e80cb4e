from __future__ import annotations

import random

from synthetic.backends.constrained import RankingConstraint, allowed_after
from synthetic.backends.ranking_grammar import default_labels, parse_ranking

# A toy vocabulary: single characters, space-prefixed labels and separators, junk.
VOCAB = [
    "<eos>",
    "A",
    "B",
    "C",
    "D",
    " A",
    " B",
    " C",
    " D",
    " >",
    " =",
    ">",
    "=",
    " ",
    "  ",
    "AB",
    "hello",
    " > A",
    "\n",
]
EOS = 0


def constraint(k: int, ties: bool) -> RankingConstraint:
    texts = {i: t for i, t in enumerate(VOCAB) if i != EOS}
    return RankingConstraint(texts, default_labels(k), ties, [EOS])


def walk(c: RankingConstraint, rng: random.Random) -> str:
    generated: list[int] = []
    for _ in range(50):
        token = rng.choice(allowed_after(c, generated))
        generated.append(token)
        if token == EOS:
            return c.text_of(generated)
    raise AssertionError("constraint never allowed the end")


def test_random_walks_through_the_constraint_always_end_in_valid_rankings() -> None:
    rng = random.Random(0)
    for k in (2, 3, 4):
        for ties in (False, True):
            c = constraint(k, ties)
            answers = {walk(c, rng) for _ in range(200)}
            for answer in answers:
                parse_ranking(answer, c.labels, ties)
            assert any("=" in a for a in answers) is ties


def test_allowed_tokens_follow_the_grammar() -> None:
    c = constraint(3, ties=False)
    assert EOS not in c.allowed("")
    assert VOCAB.index("AB") not in c.allowed("")  # a token writing two labels in a row
    assert VOCAB.index(" > A") in c.allowed("B")
    assert VOCAB.index(" A") not in c.allowed("A >")  # A is used
    assert VOCAB.index(" =") not in c.allowed("A")  # no ties
    assert c.allowed("A > B > C") == [EOS]
    assert allowed_after(c, [1, EOS, 2]) == [EOS]  # a finished row only pads with EOS
