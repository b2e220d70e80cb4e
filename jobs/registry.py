"""Run kinds: each kind registers one handler, an optional config validator and its queue.

A handler is `handler(run, ctx) -> None` (`ctx` is a `jobs.runner.RunContext`); a validator is
`validate(config) -> cleaned config` raising `ValueError` with a message naming the bad field.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jobs.models import Run
    from jobs.runner import RunContext

Handler = Callable[["Run", "RunContext"], None]
Validator = Callable[[dict[str, Any]], dict[str, Any]]


class UnknownKind(LookupError):
    """No handler is registered under this kind."""


@dataclass(frozen=True)
class Kind:
    name: str
    handler: Handler
    label: str
    validate: Validator | None = None
    queue: str = "default"


_kinds: dict[str, Kind] = {}


def register(
    kind: str, *, label: str = "", validate: Validator | None = None, queue: str = "default"
) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of `kind` (once per kind)."""

    def decorator(handler: Handler) -> Handler:
        existing = _kinds.get(kind)
        if existing is not None and existing.handler is not handler:
            raise ValueError(f"run kind {kind!r} is already registered by {existing.handler.__module__}")
        _kinds[kind] = Kind(kind, handler, label or kind.replace("-", " ").capitalize(), validate, queue)
        return handler

    return decorator


def unregister(kind: str) -> None:
    _kinds.pop(kind, None)


def get_kind(kind: str) -> Kind:
    try:
        return _kinds[kind]
    except KeyError:
        known = ", ".join(sorted(_kinds)) or "none"
        raise UnknownKind(f"unknown run kind {kind!r} (registered: {known})") from None


def kinds() -> list[Kind]:
    return sorted(_kinds.values(), key=lambda k: k.name)


def label(kind: str) -> str:
    found = _kinds.get(kind)
    return found.label if found else kind
