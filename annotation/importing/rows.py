"""One input row -> one `ParsedItem`, in either shape:

- list shape: `{"id"?, "prompt", "context"?, "responses": [...], "metadata"?}`; a response is a
  string or `{"id"?, "text", "source"?}`; the prompt is a string or a list of chat messages whose
  last one is the user's turn (earlier ones become the context);
- pairwise shape: `{"id"?, "prompt"?, "chosen", "rejected"}` -> two responses r1 (source "chosen")
  and r2 (source "rejected"), with the original preference kept in `metadata["pairwise"]`. Without
  a prompt, chosen and rejected are whole conversations (hh-rlhf text or message lists).

Any other top-level field is kept in the item's metadata. Problems raise `FieldError`.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from annotation.importing import hh_rlhf
from annotation.importing.errors import FieldError
from annotation.importing.storable import unstorable
from annotation.models import MAX_RESPONSES, MIN_RESPONSES

Message = dict[str, str]
ROLES = ("system", "user", "assistant")
KNOWN_FIELDS = {"id", "prompt", "context", "responses", "chosen", "rejected", "metadata"}
MAX_EXTERNAL_ID = 200
MAX_RESPONSE_ID = 64
MAX_SOURCE = 200


@dataclass(frozen=True)
class ParsedResponse:
    id: str
    text: str
    source: str = ""


@dataclass(frozen=True)
class ParsedItem:
    external_id: str
    prompt: str
    responses: tuple[ParsedResponse, ...]
    context: list[Message] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    line: int | None = None
    id_from_content: bool = False

    def response_dicts(self) -> list[dict[str, str]]:
        """Responses in the shape `services.create_item` takes."""
        return [{"id": r.id, "text": r.text, "source": r.source} for r in self.responses]


def parse_row(row: object) -> ParsedItem:
    if not isinstance(row, dict):
        raise FieldError("", f"each item must be an object, got {_type(row)}")
    problem = unstorable(row)
    if problem is not None:
        raise FieldError(*problem)
    if row.get("responses") is not None:
        if row.get("chosen") is not None or row.get("rejected") is not None:
            raise FieldError("responses", "give either 'responses' or 'chosen' and 'rejected', not both")
        context, prompt = _prompt_and_context(row)
        responses = _responses(row["responses"])
        metadata = _metadata(row)
    elif "chosen" in row or "rejected" in row:
        context, prompt, responses = _pairwise(row)
        metadata = {**_metadata(row), "pairwise": {"chosen": "r1", "rejected": "r2"}}
    else:
        raise FieldError("responses", "missing field; give 'responses' (a list) or 'chosen' and 'rejected'")
    external_id, hashed = _external_id(row, context, prompt, responses)
    return ParsedItem(external_id=external_id, prompt=prompt, responses=responses, context=context,
                      metadata=metadata, id_from_content=hashed)


# ---------------------------------------------------------------- prompt and context


def _prompt_and_context(row: dict[str, Any]) -> tuple[list[Message], str]:
    if "prompt" not in row or row["prompt"] is None:
        raise FieldError("prompt", "missing field")
    prompt = row["prompt"]
    if isinstance(prompt, str) and hh_rlhf.is_hh_text(prompt):
        prompt = _hh_messages(prompt, "prompt")
        if prompt and prompt[-1]["role"] == "assistant" and not prompt[-1]["content"]:
            prompt = prompt[:-1]  # "...\n\nAssistant:" left open for the responses
    if isinstance(prompt, str):
        if not prompt.strip():
            raise FieldError("prompt", "is empty")
        return _messages(row.get("context") or [], "context"), prompt
    if isinstance(prompt, list):
        if row.get("context"):
            raise FieldError("context", "give earlier turns either in 'context' or in the prompt's messages, not both")
        messages = _messages(prompt, "prompt")
        if not messages or messages[-1]["role"] != "user":
            raise FieldError("prompt", "a message list must end with the user's turn")
        if not messages[-1]["content"].strip():
            raise FieldError("prompt", "the last user message is empty")
        return messages[:-1], messages[-1]["content"]
    raise FieldError("prompt", f"must be a string or a list of chat messages, got {_type(prompt)}")


def _messages(value: object, name: str) -> list[Message]:
    if not isinstance(value, list):
        raise FieldError(name, f"must be a list of chat messages, got {_type(value)}")
    out = []
    for i, message in enumerate(value):
        where = f"{name}[{i}]"
        if not isinstance(message, dict):
            raise FieldError(where, f"must be a message {{role, content}}, got {_type(message)}")
        role, content = message.get("role"), message.get("content")
        if role not in ROLES:
            raise FieldError(f"{where}.role", f"must be one of {', '.join(ROLES)}, got {role!r}")
        if not isinstance(content, str):
            raise FieldError(f"{where}.content", f"must be a string, got {_type(content)}")
        out.append({"role": role, "content": content})
    return out


def _hh_messages(text: str, name: str) -> list[Message]:
    try:
        return hh_rlhf.parse_dialogue(text)
    except ValueError as exc:
        raise FieldError(name, str(exc)) from None


# ---------------------------------------------------------------- responses


def _responses(value: object) -> tuple[ParsedResponse, ...]:
    if not isinstance(value, list):
        raise FieldError("responses", f"must be a list, got {_type(value)}")
    if not MIN_RESPONSES <= len(value) <= MAX_RESPONSES:
        raise FieldError("responses", f"needs {MIN_RESPONSES} to {MAX_RESPONSES} responses, got {len(value)}")
    parsed = [_response(r, i) for i, r in enumerate(value)]
    seen: set[str] = set()
    for i, r in enumerate(parsed):
        if r.id in seen:
            raise FieldError(f"responses[{i}].id", f"duplicate response id {r.id!r}")
        seen.add(r.id)
    return tuple(parsed)


def _response(value: object, index: int) -> ParsedResponse:
    where = f"responses[{index}]"
    default_id = f"r{index + 1}"
    if isinstance(value, str):
        return ParsedResponse(id=default_id, text=_text(value, where))
    if not isinstance(value, dict):
        raise FieldError(where, f"must be a string or {{id?, text, source?}}, got {_type(value)}")
    if "text" not in value:
        raise FieldError(f"{where}.text", "missing field")
    text = _text(value["text"], f"{where}.text")
    rid = _short_string(value.get("id"), f"{where}.id", MAX_RESPONSE_ID) or default_id
    source = _short_string(value.get("source"), f"{where}.source", MAX_SOURCE) or ""
    return ParsedResponse(id=rid, text=text, source=source)


def _text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise FieldError(where, f"must be a string, got {_type(value)}")
    if not value.strip():
        raise FieldError(where, "is empty")
    return value


def _short_string(value: object, where: str, limit: int) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise FieldError(where, f"must be a string, got {_type(value)}")
    text = str(value).strip()
    if len(text) > limit:
        raise FieldError(where, f"is {len(text)} characters long; at most {limit}")
    return text or None


# ---------------------------------------------------------------- pairwise


def _pairwise(row: dict[str, Any]) -> tuple[list[Message], str, tuple[ParsedResponse, ...]]:
    for name in ("chosen", "rejected"):
        if row.get(name) is None:
            raise FieldError(name, "missing field (pairwise rows need both 'chosen' and 'rejected')")
    if row.get("prompt") is not None:
        context, prompt = _prompt_and_context(row)
        chosen, rejected = _answer(row["chosen"], "chosen"), _answer(row["rejected"], "rejected")
    else:
        chosen_turns = _conversation(row["chosen"], "chosen")
        rejected_turns = _conversation(row["rejected"], "rejected")
        try:
            context, prompt, chosen, rejected = hh_rlhf.split_pair(chosen_turns, rejected_turns)
        except ValueError as exc:
            raise FieldError("rejected", str(exc)) from None
        if not prompt.strip():
            raise FieldError("chosen", "the last Human turn is empty")
    responses = (
        ParsedResponse(id="r1", text=_text(chosen, "chosen"), source="chosen"),
        ParsedResponse(id="r2", text=_text(rejected, "rejected"), source="rejected"),
    )
    # Two equal answers carry no preference: any ranking of them would be noise in the data.
    if chosen.strip() == rejected.strip():
        raise FieldError("rejected", "is the same text as 'chosen'; a preference pair needs two different answers")
    return context, prompt, responses


def _answer(value: object, name: str) -> str:
    """A response given beside an explicit prompt: text, or messages ending with the assistant's."""
    if isinstance(value, str):
        return value.strip()
    messages = _messages(value, name)
    if not messages or messages[-1]["role"] != "assistant":
        raise FieldError(name, "a message list must end with the assistant's turn")
    return messages[-1]["content"]


def _conversation(value: object, name: str) -> list[Message]:
    if isinstance(value, str):
        if not hh_rlhf.is_hh_text(value):
            raise FieldError(name, "without a 'prompt' field this must be hh-rlhf dialogue "
                                   '("\\n\\nHuman: ... \\n\\nAssistant: ...") or a list of chat messages')
        return _hh_messages(value, name)
    return _messages(value, name)


# ---------------------------------------------------------------- id and metadata


def _external_id(row: dict[str, Any], context: list[Message], prompt: str,
                 responses: tuple[ParsedResponse, ...]) -> tuple[str, bool]:
    given = _short_string(row.get("id"), "id", MAX_EXTERNAL_ID)
    if given:
        return given, False
    return content_hash(context, prompt, [r.text for r in responses]), True


def content_hash(context: list[Message], prompt: str, texts: list[str]) -> str:
    """A stable id for an item without one: the same conversation and responses give the same id."""
    canonical = json.dumps([context, prompt, texts], ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return "sha256-" + hashlib.sha256(canonical.encode()).hexdigest()[:24]


def _metadata(row: dict[str, Any]) -> dict[str, Any]:
    given = row.get("metadata")
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise FieldError("metadata", f"must be an object, got {_type(given)}")
    extras = {k: v for k, v in row.items() if k not in KNOWN_FIELDS}
    for key, value in extras.items():
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            raise FieldError(str(key), f"a {_type(value)} cannot be kept in the item's metadata") from None
    return {**extras, **given}


def _type(value: object) -> str:
    names = {str: "a string", int: "a number", float: "a number", bool: "true/false", list: "a list",
             dict: "an object", type(None): "null"}
    return names.get(type(value), type(value).__name__)
