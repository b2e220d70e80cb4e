"""Running a rule: one item (:func:`aggregate`) or a whole project (:func:`aggregate_batch`).

Tie policy per call:

* ``"keep"`` (default): the collective weak order keeps the rule's ties.
* ``"random"``: ties are broken by a uniformly random priority order of the alternatives drawn
  from ``numpy.random.default_rng(seed)``; when ``seed`` is None a fresh seed is drawn. Either way
  the seed and the priority order are recorded in ``Result.tie_break`` so the result can be
  reproduced. Scores are unchanged; only the order is refined.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

import numpy as np

from .batch import BatchProfile
from .checks import ids_permutation, permutation
from .orders import levels_from_scores
from .pairwise import total_weight
from .profiles import Profile, ProfileGroup, WeakOrder, decode_levels
from .rules import DEFAULT_RULE, call_rule, get_rule
from .rules.registry import RuleOutput

TiePolicy = Literal["keep", "random"]


class TieBreak(TypedDict):
    """How ties were broken: the seed and the priority order used inside tie groups."""

    policy: str
    seed: int
    priority: list[str]


@dataclass(frozen=True)
class Result:
    """A collective ranking of one item.

    ``order`` is the weak order (contract form), ``scores`` the rule's per-alternative scores
    (higher is better; see the rule's docstring), ``margins[a, b]`` the pairwise margin of
    alternative index a over b divided by the total voter weight (in [-1, 1]), ``tie_break`` the
    record of a random tie-break (None when ties were kept).
    """

    order: WeakOrder
    scores: dict[str, float]
    rule: str
    tie_break: TieBreak | None
    alternatives: tuple[str, ...]
    margins: np.ndarray | None = None
    params: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def margin(self, a: str, b: str) -> float:
        """Normalised pairwise margin of a over b (support of a minus support of b)."""
        if self.margins is None:
            raise ValueError("this result carries no margins")
        i, j = self.alternatives.index(a), self.alternatives.index(b)
        return float(self.margins[i, j])


def _resolve_params(params: dict[str, Any], alternatives: Sequence[str]) -> dict[str, Any]:
    """One item's ``tie_breaker`` (ids, or indices) checked and turned into indices."""
    tb = params.get("tie_breaker")
    if tb is None:
        return params
    if isinstance(tb, str | bytes) or any(isinstance(a, str) for a in tb):
        resolved = ids_permutation("tie_breaker", tb, alternatives)
    else:
        resolved = permutation("tie_breaker", tb, len(alternatives), exact=True)
    return {**params, "tie_breaker": resolved}


def _check_policy(tie_policy: str) -> None:
    if tie_policy not in ("keep", "random"):
        raise ValueError(f"tie_policy must be 'keep' or 'random', not {tie_policy!r}")


def break_ties(levels: np.ndarray, priority: np.ndarray) -> np.ndarray:
    """Refine ``levels [n, K]`` into linear orders: inside a group, lower ``priority`` first."""
    k = levels.shape[1]
    prio_rank = np.argsort(np.argsort(priority, axis=1), axis=1)
    return levels_from_scores(-(levels * k + prio_rank).astype(np.float64))


def _random_priority(n: int, k: int, seed: int | None) -> tuple[int, np.ndarray]:
    if seed is None:
        seed = int(np.random.SeedSequence().entropy % (2**63))  # type: ignore[operator]
    rng = np.random.default_rng(seed)
    return seed, np.argsort(rng.random((n, k)), axis=1)


def _normalised_margins(out: RuleOutput, group: ProfileGroup) -> np.ndarray | None:
    m = out.extra.get("margins")
    if m is None:
        from .pairwise import margins

        m = margins(group)
    cached: np.ndarray | None = group.__dict__.get("_normalised_margins")
    if cached is not None and m is group.__dict__.get("_margins"):
        return cached
    normalised = _divide_margins(m, group)
    if m is group.__dict__.get("_margins"):  # the group's own (cached, read-only) margins
        normalised.flags.writeable = False
        group.__dict__["_normalised_margins"] = normalised
    return normalised


def _divide_margins(m: np.ndarray, group: ProfileGroup) -> np.ndarray:
    if m.shape[0] == 1:  # one item: divide by the Python float (same quotients, fewer calls)
        return np.asarray(m / max(float(group.weights.sum(axis=1)[0]), 1e-300))
    w = np.maximum(total_weight(group), 1e-300)[:, None, None]
    return np.asarray(m / w)


def aggregate(
    profile: Profile,
    rule: str = DEFAULT_RULE,
    tie_policy: TiePolicy = "keep",
    seed: int | None = None,
    **params: Any,
) -> Result:
    """Aggregate one item's profile with the registered ``rule`` (see :func:`describe`).

    ``params`` go to the rule (e.g. ``tie_credit`` for Copeland, ``reg`` for Bradley-Terry,
    ``tie_breaker`` as a list of ids for Ranked Pairs' fixed-order variant).
    """
    _check_policy(tie_policy)
    info = get_rule(rule)
    group = profile.as_group()
    out = call_rule(info, group, _resolve_params(params, profile.alternatives))
    levels, tie_break = out.levels, None
    if tie_policy == "random":
        used, prio = _random_priority(1, profile.n_alternatives, seed)
        levels = break_ties(levels, np.argsort(prio, axis=1))
        tie_break = TieBreak(policy="random", seed=used,
                             priority=[profile.alternatives[i] for i in prio[0]])
    extra = {k: v[0].tolist() for k, v in out.extra.items() if k not in ("margins",)}
    return Result(
        order=decode_levels(profile.alternatives, levels[0]),
        scores=dict(zip(profile.alternatives, out.scores[0].tolist(), strict=True)),
        rule=rule,
        tie_break=tie_break,
        alternatives=profile.alternatives,
        margins=_normalised_margins(out, group)[0],  # type: ignore[index]
        params=dict(params),
        extra=extra,
    )


@dataclass(frozen=True)
class BatchResult:
    """Results of one rule over a :class:`BatchProfile`, kept as arrays per K-group.

    ``outputs[g]`` is the rule's :class:`RuleOutput` for ``batch.groups[g]`` (levels already
    tie-broken under the random policy). Materialise :class:`Result` objects with ``result(i)``,
    iteration or ``results()``; ``orders()`` gives just the weak orders.
    """

    batch: BatchProfile
    rule: str
    outputs: tuple[RuleOutput, ...]
    seed: int | None = None
    priority: np.ndarray | None = None

    def __len__(self) -> int:
        return self.batch.n_items

    def _locate(self, item: int) -> tuple[int, int]:
        for g, grp in enumerate(self.batch.groups):
            rows = np.flatnonzero(grp.items == item)
            if len(rows):
                return g, int(rows[0])
        raise IndexError(item)

    def result(self, item: int) -> Result:
        """Item ``item``'s :class:`Result`."""
        g, row = self._locate(item)
        out, alts = self.outputs[g], self.batch.alternatives[item]
        tie_break = None
        if self.priority is not None and self.seed is not None:
            prio = self.priority[item][self.priority[item] < len(alts)]
            tie_break = TieBreak(policy="random", seed=self.seed,
                                 priority=[alts[i] for i in prio])
        grp = self.batch.groups[g].take(np.array([row]))
        return Result(
            order=decode_levels(alts, out.levels[row]),
            scores=dict(zip(alts, out.scores[row].tolist(), strict=True)),
            rule=self.rule,
            tie_break=tie_break,
            alternatives=alts,
            margins=_normalised_margins(RuleOutput(out.scores, out.levels), grp)[0],  # type: ignore[index]
        )

    def __iter__(self) -> Iterator[Result]:
        return (self.result(i) for i in range(len(self)))

    def results(self) -> list[Result]:
        """All items' results, in item order."""
        return list(self)

    def orders(self) -> list[WeakOrder]:
        """All items' collective weak orders, in item order (no margins computed)."""
        out: list[WeakOrder] = [[] for _ in range(len(self))]
        alternatives = self.batch.alternatives
        for grp, res in zip(self.batch.groups, self.outputs, strict=True):
            if not len(grp.items):
                continue
            patterns, which = np.unique(res.levels, axis=0, return_inverse=True)
            if 4 * len(patterns) > len(grp.items):  # mostly distinct: decode row by row
                for item, row in zip(grp.items.tolist(), res.levels.tolist(), strict=True):
                    out[item] = decode_levels(alternatives[item], row)
                continue
            decoders = [_decoder(row) for row in patterns.tolist()]
            for item, p in zip(grp.items.tolist(), which.ravel().tolist(), strict=True):
                out[item] = decoders[p](alternatives[item])
        return out

    def level_matrix(self) -> np.ndarray:
        """Every item's collective order as tie-group levels ``int64 [n_items, K_max]`` (0 =
        best, -1 past the item's K; column j is ``batch.alternatives[i][j]``): the array form of
        :meth:`orders`, with no Python object per item, for writing results in bulk."""
        k_max = max((grp.k for grp in self.batch.groups), default=0)
        out = np.full((len(self), k_max), -1, dtype=np.int64)
        for grp, res in zip(self.batch.groups, self.outputs, strict=True):
            out[grp.items, : grp.k] = res.levels
        return out


def _decoder(levels: list[int]) -> Callable[[Sequence[str]], WeakOrder]:
    """A function from an item's ids to its weak order under these levels: items of a batch
    share few level patterns, so each pattern's grouping is worked out once (a linear order
    becomes one ``itemgetter``)."""
    groups = [[j for j, lv in enumerate(levels) if lv == level] for level in sorted(set(levels))
              if level >= 0]
    if groups and all(len(g) == 1 for g in groups):
        if len(groups) == 1:
            only = groups[0][0]
            return lambda alts: [[alts[only]]]
        getter = operator.itemgetter(*(g[0] for g in groups))
        return lambda alts: list(map(list, zip(getter(alts))))  # type: ignore[call-overload]
    return lambda alts: [[alts[j] for j in g] for g in groups]


def aggregate_batch(
    batch: BatchProfile,
    rule: str = DEFAULT_RULE,
    tie_policy: TiePolicy = "keep",
    seed: int | None = None,
    **params: Any,
) -> BatchResult:
    """Aggregate every item of ``batch`` with ``rule``: one vectorised call per K-group."""
    _check_policy(tie_policy)
    info = get_rule(rule)
    outputs = [call_rule(info, grp, params) for grp in batch.groups]
    used, prio = None, None
    if tie_policy == "random":
        k_max = max((grp.k for grp in batch.groups), default=1)
        used, prio = _random_priority(batch.n_items, k_max, seed)
        outputs = [_broken(out, grp, prio) for out, grp in zip(outputs, batch.groups, strict=True)]
    return BatchResult(batch, rule, tuple(outputs), used, prio)


def _broken(out: RuleOutput, grp: ProfileGroup, prio: np.ndarray) -> RuleOutput:
    own = prio[grp.items]
    own = np.stack([row[row < grp.k] for row in own]) if own.shape[1] > grp.k else own
    levels = break_ties(out.levels, np.argsort(own, axis=1))
    return RuleOutput(out.scores, levels, out.extra)
