from __future__ import annotations

import re
from pathlib import Path

import pytest

from synthetic.judging.listwise import example_ranking, listwise_conversation
from synthetic.judging.pairwise import pair_conversation
from synthetic.judging.prompts import (
    PromptTemplateError,
    available_versions,
    load_template,
    parse_template,
)
from synthetic.judging.types import JudgeItem, JudgeOptions, Method, ResponseText

ITEM = JudgeItem(
    "i1",
    "How do I boil an egg? Use {braces} and $dollars freely.",
    (
        ResponseText("r1", "Boil it for 8 minutes."),
        ResponseText("r2", "Put it in water at $100 {C}."),
        ResponseText("r3", "Eggs cannot be boiled."),
    ),
)
PERSONA = "You are a 70-year-old retired chef from Lyon."


def test_shipped_templates_are_versioned_files() -> None:
    assert {"listwise_v1", "listwise_v2", "pairwise_v1", "pairwise_v2", "pointwise_v1"} <= set(available_versions())
    assert JudgeOptions().version == "listwise_v2"
    assert JudgeOptions(method=Method.PAIRWISE_LOGPROB).version == "pairwise_v2"
    assert JudgeOptions(method=Method.POINTWISE).version == "pointwise_v1"


@pytest.mark.parametrize(
    ("version", "prefix"), [("listwise_v2", "Ranking: "), ("pairwise_v2", "Answer:"), ("pointwise_v1", "Rating: ")]
)
def test_current_templates_open_the_answer_and_old_ones_do_not(version: str, prefix: str) -> None:
    template = load_template(version)
    assert template.answer_prefix(reasoning=False) == [{"role": "assistant", "content": prefix}]
    # With reasoning the model writes first; the answer cue comes after its text.
    assert template.answer_prefix(reasoning=True) == []
    assert load_template(version.replace("_v2", "_v1")).has("answer_prefix") is (version == "pointwise_v1")


# Any ranking of single-letter labels ("C > B > A", "B = A", "A>B").
COPYABLE_RANKING = re.compile(r"\b[A-Z]\s*[>=]\s*[A-Z]\b")


@pytest.mark.parametrize(
    "options",
    [
        JudgeOptions(),
        JudgeOptions(allow_ties=True),
        JudgeOptions(reasoning=True),
        JudgeOptions(reasoning=True, allow_ties=True),
    ],
)
@pytest.mark.parametrize("k", [2, 3, 4, 6])
def test_default_listwise_prompt_has_no_ranking_to_copy(options: JudgeOptions, k: int) -> None:
    item = JudgeItem("i", "Which?", tuple(ResponseText(f"r{j}", f"text {j}") for j in range(k)))
    order = [r.id for r in item.responses]
    text = listwise_conversation(load_template(options.version), item, order, PERSONA, options)[0][
        "content"
    ]
    assert COPYABLE_RANKING.search(text) is None, text
    # v1 (kept readable for old runs) is exactly what copied: its example is a ranking.
    old = listwise_conversation(load_template("listwise_v1"), item, order, PERSONA, options)
    assert COPYABLE_RANKING.search(old[0]["content"]) is not None


def test_listwise_prompt_shows_responses_in_shown_order_with_persona_last() -> None:
    (message,) = listwise_conversation(
        load_template("listwise_v1"), ITEM, ["r3", "r1", "r2"], PERSONA, JudgeOptions()
    )
    text = message["content"]
    assert message["role"] == "user"
    assert text.index("[Response A]\nEggs cannot") < text.index("[Response B]\nBoil it")
    assert text.index("[Response B]") < text.index("[Response C]\nPut it in water at $100 {C}.")
    assert "{braces} and $dollars" in text
    assert text.rstrip().endswith(PERSONA)
    # Shared text first: two personas' prompts differ only after the persona header.
    other = listwise_conversation(
        load_template("listwise_v1"),
        ITEM,
        ["r3", "r1", "r2"],
        "You are someone else.",
        JudgeOptions(),
    )[0]["content"]
    common = text.index("[The person you are]")
    assert text[:common] == other[:common]


@pytest.mark.parametrize(
    ("options", "expected", "absent"),
    [
        (JudgeOptions(), 'separated by ">", for example: C > B > A', '"="'),
        (JudgeOptions(allow_ties=True), 'or by "=" where', "Final ranking"),
        (JudgeOptions(reasoning=True), 'write "Final ranking:"', '"="'),
        (JudgeOptions(reasoning=True, allow_ties=True), '(or "=" for equally good)', "Reply with"),
    ],
)
def test_listwise_answer_format_follows_options(
    options: JudgeOptions, expected: str, absent: str
) -> None:
    text = listwise_conversation(
        load_template("listwise_v1"), ITEM, ["r1", "r2", "r3"], PERSONA, options
    )[0]["content"]
    assert expected in text
    assert absent not in text


def test_pairwise_prompt_puts_first_as_a_and_persona_last() -> None:
    options = JudgeOptions(method=Method.PAIRWISE_LOGPROB)
    text = pair_conversation(load_template("pairwise_v1"), ITEM, "r2", "r1", PERSONA, options)[0][
        "content"
    ]
    assert text.index("[Response A]\nPut it in water") < text.index("[Response B]\nBoil it")
    assert "single letter: A or B" in text
    assert text.rstrip().endswith(PERSONA)


@pytest.mark.parametrize(
    ("k", "ties", "example"),
    [(2, False, "B > A"), (3, True, "C > B = A"), (4, False, "D > C > B > A")],
)
def test_example_ranking(k: int, ties: bool, example: str) -> None:
    assert example_ranking(tuple("ABCD"[:k]), ties) == example


def test_template_errors_are_explicit(tmp_path: Path) -> None:
    with pytest.raises(PromptTemplateError, match="no prompt template"):
        load_template("listwise_v99")
    with pytest.raises(PromptTemplateError, match="invalid prompt version"):
        load_template("../etc/passwd")
    template = parse_template("t", "# comment\n=== user ===\nHello $name\n")
    assert template.render("user", name="x") == "Hello x"
    with pytest.raises(PromptTemplateError, match=r"needs \$name"):
        template.render("user")
    with pytest.raises(PromptTemplateError, match="before the first section"):
        parse_template("t", "stray text\n=== user ===\n")
