"""Validation of submitted rankings against the weak-order contract (pure, no Django)."""
from __future__ import annotations

from collections.abc import Sequence

WeakOrder = list[list[str]]


class RankingError(ValueError):
    """A ranking that breaks the contract; the message says what is wrong and where."""

    def __init__(self, message: str, field: str = "ranking") -> None:
        super().__init__(message)
        self.field = field


def validate_weak_order(
    order: object,
    response_ids: Sequence[str],
    *,
    allow_ties: bool,
    allow_partial: bool,
) -> tuple[WeakOrder, bool]:
    """Check `order` against an item's responses; return it normalised and whether it is partial.

    A weak order is a list of non-empty tie groups, best first, each a list of response ids. Every
    id must belong to the item and appear once. Ties need `allow_ties`; leaving responses out
    needs `allow_partial` (and at least two must still be ranked).
    """
    if not isinstance(order, list) or not order:
        raise RankingError("ranking must be a non-empty list of tie groups, best first")
    known = set(response_ids)
    seen: set[str] = set()
    normalised: WeakOrder = []
    for index, group in enumerate(order):
        normalised.append(_check_group(group, index, known, seen, allow_ties))
    missing = [rid for rid in response_ids if rid not in seen]
    if missing and not allow_partial:
        raise RankingError(f"ranking leaves out {', '.join(missing)}; this project needs every response ranked")
    if len(seen) < 2:
        raise RankingError("ranking must order at least two responses")
    return normalised, bool(missing)


def _check_group(group: object, index: int, known: set[str], seen: set[str], allow_ties: bool) -> list[str]:
    if not isinstance(group, list) or not group:
        raise RankingError(f"tie group {index + 1} must be a non-empty list of response ids")
    if len(group) > 1 and not allow_ties:
        raise RankingError(f"tie group {index + 1} ties {', '.join(map(str, group))}; this project allows no ties")
    for rid in group:
        if not isinstance(rid, str) or rid not in known:
            raise RankingError(f"tie group {index + 1} names {rid!r}, which is not a response of this item")
        if rid in seen:
            raise RankingError(f"response {rid} appears more than once")
        seen.add(rid)
    return list(group)


def validate_shown_order(shown: object, response_ids: Sequence[str]) -> list[str]:
    """The order the responses were displayed in must be a permutation of the item's ids."""
    if not isinstance(shown, list) or sorted(map(str, shown)) != sorted(response_ids) or len(shown) != len(response_ids):
        raise RankingError("shown_order must list every response id of the item exactly once", field="shown_order")
    return [str(rid) for rid in shown]
