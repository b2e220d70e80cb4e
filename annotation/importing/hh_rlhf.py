"""Anthropic hh-rlhf dialogue text: "\\n\\nHuman: ...\\n\\nAssistant: ..." turned into chat messages.

In hh-rlhf a row is `{chosen, rejected}`: two whole conversations that share every turn but the
last Assistant one. The shared prefix is the conversation; its last Human turn is the item's
prompt, the earlier turns its context, and the two final Assistant turns are the responses.
"""
from __future__ import annotations

import re

Message = dict[str, str]

_TURN = re.compile(r"\n\n(Human|Assistant):")
_ROLES = {"Human": "user", "Assistant": "assistant"}


def is_hh_text(text: object) -> bool:
    return isinstance(text, str) and text.lstrip(" ").startswith("\n\nHuman:")


def parse_dialogue(text: str) -> list[Message]:
    """Split hh text into messages; raises ValueError when it is not Human/Assistant dialogue."""
    parts = _TURN.split(text.lstrip(" "))
    if parts[0].strip() or len(parts) < 3:
        raise ValueError('is not "\\n\\nHuman: ... \\n\\nAssistant: ..." dialogue text')
    return [{"role": _ROLES[role], "content": body.strip()} for role, body in zip(parts[1::2], parts[2::2], strict=True)]


def split_pair(chosen: list[Message], rejected: list[Message]) -> tuple[list[Message], str, str, str]:
    """(context, prompt, chosen text, rejected text) of two conversations differing in the last turn."""
    shared = 0
    for a, b in zip(chosen, rejected, strict=False):
        if a != b:
            break
        shared += 1
    if shared == len(chosen) and shared == len(rejected):
        raise ValueError("chosen and rejected are the same conversation")
    tail_c, tail_r = chosen[shared:], rejected[shared:]
    if len(tail_c) != 1 or len(tail_r) != 1 or tail_c[0]["role"] != "assistant" or tail_r[0]["role"] != "assistant":
        raise ValueError(f"chosen and rejected differ before their final Assistant turn (at turn {shared + 1})")
    if not shared or chosen[shared - 1]["role"] != "user":
        raise ValueError("the shared conversation must end with a Human turn")
    prompt = chosen[shared - 1]["content"]
    return chosen[: shared - 1], prompt, tail_c[0]["content"], tail_r[0]["content"]
