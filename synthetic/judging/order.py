"""Seeded, reproducible response orders: the shown order of a judgment depends only on
(seed, item, persona), never on batch composition or call order, so resumed runs agree."""

from __future__ import annotations

import hashlib
import random

from synthetic.judging.types import JudgeItem


def rng_for(*parts: object) -> random.Random:
    """A `random.Random` seeded from a SHA-256 of the parts (stable across processes)."""
    key = "\x1f".join(str(p) for p in parts).encode()
    return random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))


def shown_order(
    item: JudgeItem, persona_id: str, seed: int, orders_per_item: int | None
) -> list[str]:
    """The order a judgment shows the item's responses in.

    `orders_per_item=None`: an independent shuffle per judgment. `n`: one of n rotations of a
    per-item seeded permutation, chosen per judgment (Latin-square style: with n = K each
    response is shown in each position equally often in expectation, and there are only n
    distinct prompts per item for the prefix cache).
    """
    ids = item.response_ids
    if orders_per_item is None:
        order = list(ids)
        rng_for(seed, item.id, persona_id).shuffle(order)
        return order
    base = list(ids)
    rng_for(seed, item.id).shuffle(base)
    rotation = rng_for(seed, item.id, persona_id).randrange(min(orders_per_item, len(ids)))
    return base[rotation:] + base[:rotation]


def pair_shown_first(seed: int, item_id: str, persona_id: str, a: str, b: str) -> bool:
    """Whether `a` is shown first in its pair with `b` (a seeded coin per judgment and pair)."""
    return rng_for(seed, item_id, persona_id, a, b).random() < 0.5


def permuted_orders(base: list[str], n: int, *seed_parts: object) -> list[list[str]]:
    """`n` shown orders for one judgment: evenly spaced rotations of `base` first (with n = K
    every response is shown once in every position, which cancels a pure position preference in
    the Borda combination), then seeded shuffles for n > K. n = 1 is `base` alone."""
    k = len(base)
    offsets = [j * k // n for j in range(min(n, k))] if n < k else list(range(k))
    orders = [base[o:] + base[:o] for o in offsets]
    for j in range(k, n):
        extra = list(base)
        rng_for(*seed_parts, "permutation", j).shuffle(extra)
        orders.append(extra)
    return orders
