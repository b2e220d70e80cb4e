"""Resolving a pool: which raters of a project count, and with what weight.

`resolve(project, spec)` applies, in this order: rater kinds, persona panels and models,
demographic and persona filters, rater weights, quality filters (minimum rankings, distance to the
collective), then raking of the human raters' weights to target marginals. Anything that makes the
pool impossible raises `PoolError` naming the field and the cause, so `services.save_pool` stores
nothing. Quality filters come before raking so the raked margins hold for the raters who remain.

The collective that the distance filter compares raters with is Borda's (`QUALITY_RULE`): defined
for every K, no K limit, and cheap, so the filter does not depend on the rule a snapshot uses later.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from django.db.models import Subquery

from annotation.models import AnnotatorProfile, Project, Ranking, Rater
from socialchoice import aggregate_batch

from .ballots import Ballots, RaterWeights, load_ballots
from .models import Pool

ALL_POOL = "all"
QUALITY_RULE = "borda"
RAKING_MAX_ITERATIONS = 500
RAKING_TOLERANCE = 1e-8


class PoolError(ValueError):
    """An impossible pool: ``field`` names the pool field at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class PoolSpec:
    """A pool's definition as plain data (hashed into snapshot ids; the `all` pool has no row)."""

    name: str = ALL_POOL
    kinds: str = Pool.Kinds.BOTH.value
    panels: list[int] = field(default_factory=list)
    synthetic_models: list[str] = field(default_factory=list)
    human_weight: float = 1.0
    synthetic_weight: float = 1.0
    rater_weights: dict[str, float] = field(default_factory=dict)
    human_filters: dict[str, list[str]] = field(default_factory=dict)
    persona_filters: dict[str, list[str]] = field(default_factory=dict)
    min_rankings: int = 0
    max_distance: float | None = None
    drop_cannot_judge: bool = False
    raking_targets: dict[str, dict[str, float]] = field(default_factory=dict)

    @classmethod
    def from_pool(cls, pool: Pool) -> PoolSpec:
        return cls(**{f: getattr(pool, f) for f in cls.__dataclass_fields__})

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


ALL = PoolSpec()


@dataclass
class RaterInfo:
    pk: int
    key: str
    human: bool
    model: str = ""
    demographics: dict[str, str] = field(default_factory=dict)
    attributes: dict[str, str] = field(default_factory=dict)
    panels: set[int] = field(default_factory=set)


@dataclass(frozen=True)
class ResolvedPool:
    """Who counts: ``raters`` (sorted pks and weights), their keys, which are human, the Kish
    effective sample size, how many raters each step left out, and the raking record."""

    spec: PoolSpec
    raters: RaterWeights
    keys: dict[int, str]
    human: np.ndarray
    demographics: dict[int, dict[str, str]]
    effective_size: float
    left_out: dict[str, int]
    raking: dict[str, Any] | None = None

    @property
    def n_humans(self) -> int:
        return int(self.human.sum())

    @property
    def n_synthetic(self) -> int:
        return int((~self.human).sum())

    def weight_of(self) -> dict[str, float]:
        """Rater key -> weight (for the manifest)."""
        return {self.keys[int(pk)]: float(w) for pk, w in zip(self.raters.rater_ids, self.raters.weights, strict=True)}

    def summary(self) -> dict[str, Any]:
        return {
            "raters": len(self.raters.rater_ids), "humans": self.n_humans, "synthetic": self.n_synthetic,
            "effective_size": round(self.effective_size, 6), "left_out": self.left_out, "raking": self.raking,
        }


def kish(weights: np.ndarray) -> float:
    """Kish's effective sample size (sum w)^2 / sum w^2 (0 for no weight)."""
    w = np.asarray(weights, dtype=np.float64)
    sq = float((w * w).sum())
    return float(w.sum() ** 2 / sq) if sq > 0 else 0.0


def project_raters(project: Project) -> list[RaterInfo]:
    """Every rater with a current ranking in the project, with consented demographics or persona."""
    # order_by(): without it the model's ordering joins the DISTINCT (every ranking id, sorted).
    ranked = Ranking.objects.filter(item__project=project, is_current=True).order_by()
    ranked = ranked.values("rater_id").distinct()
    raters = Rater.objects.filter(pk__in=Subquery(ranked)).select_related("user__profile").order_by("pk")
    from synthetic.models import Judgment

    panels: dict[int, set[int]] = {}
    for rater_id, panel_id in (
        Judgment.objects.filter(item__project=project).values_list("rater_id", "persona__panel_id").distinct()
    ):
        panels.setdefault(rater_id, set()).add(panel_id)
    out = []
    for r in raters:
        info = RaterInfo(r.pk, r.key, r.kind == Rater.Kind.HUMAN, r.model, panels=panels.get(r.pk, set()))
        if info.human:
            profile = getattr(r.user, "profile", None)
            info.demographics = profile.consented_values() if profile else {}
        else:
            attrs = (r.persona or {}).get("attributes") or {}
            info.attributes = {str(k): str(v) for k, v in attrs.items() if k != "twin_of"}
        out.append(info)
    return out


def consented_fields(raters: list[RaterInfo]) -> set[str]:
    return {f for r in raters if r.human for f in r.demographics}


def resolve(project: Project, spec: PoolSpec, raters: list[RaterInfo] | None = None) -> ResolvedPool:
    """The raters of ``spec`` in ``project`` with their weights, or `PoolError`."""
    raters = project_raters(project) if raters is None else raters
    left: dict[str, int] = {}
    chosen = _by_kind(spec, raters, left)
    chosen = _by_filters(spec, raters, chosen, left)
    weights = _weights(spec, raters, chosen)
    _none_left(chosen, weights, left)
    ids = np.array([r.pk for r in chosen], dtype=np.int64)
    pool = RaterWeights(ids, weights)
    if spec.min_rankings or spec.max_distance is not None:
        pool = _quality(project, spec, pool, left)
        _none_left([r for r in chosen if r.pk in set(pool.rater_ids.tolist())], pool.weights, left)
    info = {r.pk: r for r in chosen}
    raking = None
    if spec.raking_targets:
        pool, raking = _rake(spec, pool, info, consented_fields(raters), left)
    human = np.array([info[int(pk)].human for pk in pool.rater_ids], dtype=bool)
    return ResolvedPool(
        spec, pool, {int(pk): info[int(pk)].key for pk in pool.rater_ids}, human,
        {int(pk): info[int(pk)].demographics for pk in pool.rater_ids if info[int(pk)].human},
        kish(pool.weights), left, raking,
    )


def _count(left: dict[str, int], reason: str, n: int) -> None:
    if n:
        left[reason] = left.get(reason, 0) + n


def _by_kind(spec: PoolSpec, raters: list[RaterInfo], left: dict[str, int]) -> list[RaterInfo]:
    if spec.kinds not in Pool.Kinds.values:
        raise PoolError("kinds", f"unknown rater kind {spec.kinds!r}; choose one of {', '.join(Pool.Kinds.values)}")
    out = []
    for r in raters:
        if (r.human and spec.kinds == Pool.Kinds.SYNTHETIC) or (not r.human and spec.kinds == Pool.Kinds.HUMANS):
            _count(left, "rater kind", 1)
        elif not r.human and spec.panels and not (r.panels & set(spec.panels)):
            _count(left, "persona panel", 1)
        elif not r.human and spec.synthetic_models and r.model not in spec.synthetic_models:
            _count(left, "model", 1)
        else:
            out.append(r)
    return out


def _check_fields(name: str, filters: dict[str, list[str]], available: set[str], what: str) -> None:
    if not isinstance(filters, dict):
        raise PoolError(name, "must map a field to a list of allowed values")
    for key, values in filters.items():
        if key not in available:
            raise PoolError(name, f"{key!r} is not {what} (available: {', '.join(sorted(available)) or 'none'})")
        if not isinstance(values, list) or not values:
            raise PoolError(name, f"{key!r} needs a non-empty list of allowed values")


def _by_filters(spec: PoolSpec, raters: list[RaterInfo], chosen: list[RaterInfo], left: dict[str, int]) -> list[RaterInfo]:
    consented = consented_fields(raters) & set(AnnotatorProfile.FIELDS)
    _check_fields("human_filters", spec.human_filters, consented,
                  "a demographic field this project's annotators shared with consent")
    attrs = {a for r in raters if not r.human for a in r.attributes}
    _check_fields("persona_filters", spec.persona_filters, attrs, "an attribute of this project's personas")
    out = []
    for r in chosen:
        filters, values = (spec.human_filters, r.demographics) if r.human else (spec.persona_filters, r.attributes)
        miss = [f for f, allowed in filters.items() if values.get(f) not in {str(v) for v in allowed}]
        if miss:
            _count(left, f"filter on {miss[0]}", 1)
        else:
            out.append(r)
    return out


def _weights(spec: PoolSpec, raters: list[RaterInfo], chosen: list[RaterInfo]) -> np.ndarray:
    for name in ("human_weight", "synthetic_weight"):
        value = getattr(spec, name)
        if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise PoolError(name, f"weights must be finite and not negative, not {value!r}")
    known = {r.key for r in raters}
    for key, value in spec.rater_weights.items():
        if key not in known:
            raise PoolError("rater_weights", f"{key!r} is not a rater of this project")
        if not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
            raise PoolError("rater_weights", f"weight of {key!r} must be finite and not negative, not {value!r}")
    return np.array([
        (spec.human_weight if r.human else spec.synthetic_weight) * float(spec.rater_weights.get(r.key, 1.0))
        for r in chosen
    ], dtype=np.float64)


def _none_left(chosen: list[RaterInfo], weights: np.ndarray, left: dict[str, int]) -> None:
    if not len(chosen) or not np.any(np.asarray(weights) > 0):
        why = ", ".join(f"{n} by {reason}" for reason, n in left.items()) or "the project has no rankings"
        raise PoolError("raters", f"no rater with a positive weight is left ({why})")


def _quality(project: Project, spec: PoolSpec, pool: RaterWeights, left: dict[str, int]) -> RaterWeights:
    ballots = load_ballots(project, raters=pool, drop_cannot_judge=spec.drop_cannot_judge)
    keep = np.ones(len(pool.rater_ids), dtype=bool)
    if spec.min_rankings:
        pos = np.searchsorted(pool.rater_ids, ballots.rater_ids)
        counts = np.bincount(pos, minlength=len(pool.rater_ids))
        keep &= counts >= spec.min_rankings
        _count(left, "minimum rankings", int((~keep).sum()))
    if spec.max_distance is not None:
        if not 0 <= spec.max_distance <= 1:
            raise PoolError("max_distance", f"must lie in [0, 1], not {spec.max_distance}")
        distance = mean_distances(ballots.take(np.isin(ballots.rater_ids, pool.rater_ids[keep])), pool.rater_ids)
        far = keep & (distance > spec.max_distance)
        keep &= ~far
        _count(left, "distance to the collective", int(far.sum()))
    return RaterWeights(pool.rater_ids[keep], pool.weights[keep])


def mean_distances(ballots: Ballots, rater_ids: np.ndarray, rule: str = QUALITY_RULE) -> np.ndarray:
    """Each rater's mean normalised Kendall distance to the collective of ``ballots`` (NaN: no
    ranking). A pair tied on one side only costs 1/2; padding columns never count."""
    ranked = ballots.ranked_items()
    out = np.full(len(rater_ids), np.nan)
    if not len(ranked):
        return out
    result = aggregate_batch(ranked.batch(), rule)
    k_max = ranked.items.k_max
    levels = np.full((len(ranked.items), k_max), k_max, dtype=np.int64)
    for grp, res in zip(result.batch.groups, result.outputs, strict=True):
        levels[grp.items, : grp.k] = res.levels
    g = ranked.group_indices.astype(np.int64)
    g = np.where(g < 0, k_max, g)  # unranked: one group below every ranked one
    valid = np.arange(k_max)[None, :] < ranked.items.k[ranked.item_index][:, None]
    s_rater = np.sign(g[:, :, None] - g[:, None, :])
    c = levels[ranked.item_index]
    s_coll = np.sign(c[:, :, None] - c[:, None, :])
    pair = valid[:, :, None] & valid[:, None, :]
    n_pairs = np.maximum(pair.sum(axis=(1, 2)), 1)
    dist = (np.abs(s_rater - s_coll) * pair).sum(axis=(1, 2)) / (2.0 * n_pairs)
    pos = np.searchsorted(rater_ids, ranked.rater_ids)
    sums = np.bincount(pos, weights=dist, minlength=len(rater_ids))
    counts = np.bincount(pos, minlength=len(rater_ids))
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
    return out


# ---------------------------------------------------------------- raking


def parse_targets_csv(text: str) -> dict[str, dict[str, float]]:
    """Raking targets from CSV with the header ``field,value,share`` (one marginal cell a line)."""
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or [f.strip() for f in reader.fieldnames] != ["field", "value", "share"]:
        raise PoolError("raking_targets", "the CSV header must be: field,value,share")
    targets: dict[str, dict[str, float]] = {}
    for line, row in enumerate(reader, start=2):
        fld, value, share = (row.get("field") or "").strip(), (row.get("value") or "").strip(), row.get("share")
        try:
            number = float(share or "")
        except ValueError:
            raise PoolError("raking_targets", f"line {line}: share {share!r} is not a number") from None
        if not fld or not value:
            raise PoolError("raking_targets", f"line {line}: field and value are required")
        if value in targets.setdefault(fld, {}):
            raise PoolError("raking_targets", f"line {line}: {fld}={value} appears twice")
        targets[fld][value] = number
    return targets


def _check_targets(targets: dict[str, dict[str, float]], consented: set[str]) -> None:
    for fld, cells in targets.items():
        if fld not in consented:
            raise PoolError("raking_targets", f"{fld!r} is not a demographic field this project's annotators "
                                              "shared with consent")
        if not isinstance(cells, dict) or not cells:
            raise PoolError("raking_targets", f"{fld!r} needs {{value: share}} cells")
        for value, share in cells.items():
            if not isinstance(share, int | float) or not math.isfinite(share) or share < 0:
                raise PoolError("raking_targets", f"share of {fld}={value} must be a number >= 0, not {share!r}")
        total = sum(cells.values())
        if abs(total - 1.0) > 1e-6:
            raise PoolError("raking_targets", f"the shares of {fld!r} sum to {total:g}, not 1")


def _rake(spec: PoolSpec, pool: RaterWeights, info: dict[int, RaterInfo], consented: set[str],
          left: dict[str, int]) -> tuple[RaterWeights, dict[str, Any]]:
    targets = spec.raking_targets
    _check_targets(targets, consented)
    human = np.array([info[int(pk)].human for pk in pool.rater_ids], dtype=bool)
    keep = np.ones(len(pool.rater_ids), dtype=bool)
    for i, pk in enumerate(pool.rater_ids.tolist()):
        if human[i]:
            demo = info[pk].demographics
            miss = [f for f in targets if demo.get(f) not in targets[f]]
            if miss:
                keep[i] = False
                _count(left, f"raking: no target for its {miss[0]}", 1)
    ids, w, human = pool.rater_ids[keep], pool.weights[keep].copy(), human[keep]
    if not np.any(w[human] > 0):
        raise PoolError("raking_targets", "no human rater in the pool has a value in every target field")
    codes = {f: [info[int(pk)].demographics[f] for pk in ids[human]] for f in targets}
    raked, record = rake(w[human], codes, targets)
    w[human] = raked
    return RaterWeights(ids, w), record


def rake(weights: np.ndarray, values: dict[str, list[str]], targets: dict[str, dict[str, float]],
         max_iterations: int = RAKING_MAX_ITERATIONS, tolerance: float = RAKING_TOLERANCE,
         ) -> tuple[np.ndarray, dict[str, Any]]:
    """Iterative proportional fitting: scale ``weights`` so that, for every field, the weighted
    share of each value equals its target; the total weight is kept. ``values[field][i]`` is
    rater i's value. `PoolError` for a target cell with no rater and for no convergence."""
    w = np.asarray(weights, dtype=np.float64).copy()
    total = float(w.sum())
    coded = {}
    for fld, cells in targets.items():
        names = list(cells)
        code = np.array([names.index(v) for v in values[fld]], dtype=np.int64)
        present = np.bincount(code, weights=w > 0, minlength=len(names))
        empty = [n for n, c, t in zip(names, present, cells.values(), strict=True) if c == 0 and t > 0]
        if empty:
            raise PoolError("raking_targets", f"target cell {fld}={empty[0]} has no rater in the pool")
        coded[fld] = (code, np.array(list(cells.values())) * total)
    gap = math.inf
    for iteration in range(1, max_iterations + 1):
        for code, target in coded.values():
            sums = np.bincount(code, weights=w, minlength=len(target))
            w *= np.where(sums > 0, target / np.where(sums > 0, sums, 1), 0)[code]
        gap = max(float(np.abs(np.bincount(c, weights=w, minlength=len(t)) - t).max()) / total
                  for c, t in coded.values())
        if gap < tolerance:
            return w, {"iterations": iteration, "max_gap": gap, "fields": sorted(targets)}
    raise PoolError("raking_targets", f"raking did not converge in {max_iterations} iterations (a weighted share "
                                      f"still misses its target by {gap:.3g}); the targets cannot be met together "
                                      "by the raters in the pool")
