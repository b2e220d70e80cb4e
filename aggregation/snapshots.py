"""Snapshots: frozen, hashed preference datasets (ARCHITECTURE.md, "Snapshot").

`create_snapshot` resolves the pool, hashes every input with the source rankings' digest into the
snapshot id, and, unless that snapshot exists already, streams the files into a temporary
directory one chunk of items at a time, then renames it to `<VAR_DIR>/snapshots/<id>` and makes
the files read-only. If the rankings change while it writes (the digest differs afterwards), it
starts again, so the files always match the hash in the manifest. Nothing ever rewrites a
snapshot; `delete_snapshot` is the only removal.

The per-group files hold a demographic group's collective on test items only where at least
`AGGREGATE_MIN_GROUP` members of the group ranked the item, so no line shows one person's ranking.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import stat
import subprocess
import tempfile
import uuid
import zipfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import IO, Any

import numpy as np
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError

import socialchoice
from annotation.models import Project
from socialchoice.pairs import STRATEGIES

from . import snapshot_files as files
from .ballots import Ballots, iter_item_ranges, load_ballots, source_digest
from .models import Snapshot, snapshot_root
from .pools import ResolvedPool, resolve
from .services import AggregationError, check_k_limit, check_rule, pool_spec, run_rule

log = logging.getLogger(__name__)

FORMAT = 1
CODE_VERSION = "0.1.0"
CHUNK_ITEMS = 2000
ATTEMPTS = 3
DEFAULT_SPLIT = {"train": 0.8, "validation": 0.1, "test": 0.1}


@dataclass(frozen=True)
class SnapshotInputs:
    """What a researcher chooses; with the project and the pool's definition it makes the id."""

    pool: str = "all"
    rule: str = socialchoice.DEFAULT_RULE
    params: dict[str, Any] = field(default_factory=dict)
    tie_policy: str = "keep"
    tie_seed: int = 0
    pair_strategy: str = "all"
    seed: int = 0
    split: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_SPLIT))


def min_group() -> int:
    return int(getattr(settings, "AGGREGATE_MIN_GROUP", 5))


@cache
def code_version() -> str:
    """`git describe` of the checkout when there is one, else the package version."""
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty", "--tags"], cwd=settings.BASE_DIR,
                             capture_output=True, text=True, timeout=5, check=True)
        return out.stdout.strip() or CODE_VERSION
    except (OSError, subprocess.SubprocessError):
        return CODE_VERSION


def check_inputs(inputs: SnapshotInputs) -> None:
    check_rule(inputs.rule, inputs.params, inputs.tie_policy)
    if inputs.pair_strategy not in STRATEGIES:
        raise AggregationError(f"unknown pair strategy {inputs.pair_strategy!r}; known: {', '.join(STRATEGIES)}")
    split = inputs.split
    if set(split) != set(files.SPLITS) or any(not isinstance(v, int | float) or v < 0 for v in split.values()):
        raise AggregationError("split must give train, validation and test fractions >= 0")
    if abs(sum(split.values()) - 1) > 1e-9:
        raise AggregationError(f"split fractions sum to {sum(split.values()):g}, not 1")
    for name in ("seed", "tie_seed"):
        if not isinstance(getattr(inputs, name), int):
            raise AggregationError(f"{name} must be an integer")


def identity(project: Project, inputs: SnapshotInputs, resolved: ResolvedPool, source: str) -> tuple[str, dict[str, Any]]:
    """(snapshot id, the hashed inputs)."""
    hashed = {
        **asdict(inputs), "format": FORMAT, "project": str(project.public_id), "pool_name": inputs.pool,
        "pool": resolved.spec.as_dict(), "margin": "scores", "group_min_size": min_group(),
        "demographics_export": project.demographics_export,
    }
    digest = hashlib.sha256((files.canonical(hashed) + source).encode()).hexdigest()
    return digest[:16], hashed


def create_snapshot(*, project: Project, user: AbstractBaseUser | None, inputs: SnapshotInputs) -> tuple[Snapshot, bool]:
    """The snapshot of ``inputs`` (created, True) or the existing one with the same id (False)."""
    check_inputs(inputs)
    resolved = resolve(project, pool_spec(project, inputs.pool))
    for _ in range(ATTEMPTS):
        source = source_digest(project)
        snapshot_id, hashed = identity(project, inputs, resolved, source)
        existing = Snapshot.objects.filter(snapshot_id=snapshot_id).first()
        if existing is not None:
            return existing, False
        tmp = snapshot_root() / f".tmp-{snapshot_id}-{uuid.uuid4().hex[:8]}"
        try:
            manifest = _write(project, inputs, resolved, snapshot_id, hashed, source, tmp)
            if source_digest(project) != source:
                log.info("rankings changed while snapshot %s was written; starting again", snapshot_id)
                continue
            return _publish(project, user, inputs, snapshot_id, source, manifest, tmp)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    raise AggregationError("the rankings kept changing while the snapshot was written; try again")


def _publish(project: Project, user: AbstractBaseUser | None, inputs: SnapshotInputs, snapshot_id: str,
             source: str, manifest: dict[str, Any], tmp: Path) -> tuple[Snapshot, bool]:
    final = snapshot_root() / snapshot_id
    _read_only(tmp)
    if final.exists():  # left by a crash between rename and row, or a concurrent writer: same id, same files
        shutil.rmtree(final)
    os.rename(tmp, final)
    try:
        snap = Snapshot.objects.create(
            project=project, snapshot_id=snapshot_id, pool_name=inputs.pool, rule=inputs.rule,
            pair_strategy=inputs.pair_strategy, seed=inputs.seed, source_hash=source, manifest=manifest,
            created_by=user,
        )
    except IntegrityError:
        return Snapshot.objects.get(snapshot_id=snapshot_id), False
    return snap, True


def _read_only(root: Path) -> None:
    for path in sorted(root.rglob("*"), reverse=True):
        if path.is_file():
            path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)


def delete_snapshot(snapshot: Snapshot) -> None:
    """The only way a snapshot goes: its row and its directory."""
    path = snapshot.path
    snapshot.delete()
    if path.exists():
        for p in [path, *path.rglob("*")]:
            p.chmod(p.stat().st_mode | stat.S_IWUSR)
        shutil.rmtree(path)


# ---------------------------------------------------------------- writing


@dataclass
class _Groups:
    """Demographic groups large enough to show: (field, value) -> member rater pks, open files."""

    members: dict[tuple[str, str], np.ndarray]
    handles: dict[tuple[str, str], IO[str]] = field(default_factory=dict)
    counts: dict[tuple[str, str], int] = field(default_factory=dict)

    @staticmethod
    def file_name(fld: str, value: str) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{fld}={value}").strip("_") + ".jsonl"


def _groups(project: Project, resolved: ResolvedPool) -> _Groups:
    if project.demographics_export == Project.DemographicsExport.NONE:
        return _Groups({})
    by_group: dict[tuple[str, str], list[int]] = {}
    for pk, demo in resolved.demographics.items():
        for fld, value in demo.items():
            by_group.setdefault((fld, value), []).append(pk)
    return _Groups({g: np.array(sorted(m), dtype=np.int64) for g, m in sorted(by_group.items())
                    if len(m) >= min_group()})


def _write(project: Project, inputs: SnapshotInputs, resolved: ResolvedPool, snapshot_id: str,
           hashed: dict[str, Any], source: str, tmp: Path) -> dict[str, Any]:
    (tmp / "groups").mkdir(parents=True)
    groups = _groups(project, resolved)
    split_items: dict[str, list[str]] = {s: [] for s in files.SPLITS}
    counts = {"items": 0, "rankings": 0, "pairs": 0, "baseline_pairs": 0}
    with open(tmp / "pairs.jsonl", "w") as pairs, open(tmp / "rankings.jsonl", "w") as rankings, \
            open(tmp / "baseline_pairs.jsonl", "w") as baseline:
        for item_range in iter_item_ranges(project, CHUNK_ITEMS):
            ballots = load_ballots(project, item_range=item_range, raters=resolved.raters,
                                   drop_cannot_judge=resolved.spec.drop_cannot_judge).ranked_items()
            if not len(ballots):
                continue
            splits = [files.split_of(e, inputs.seed, inputs.split) for e in ballots.items.external_ids]
            for ext, s in zip(ballots.items.external_ids, splits, strict=True):
                split_items[s].append(ext)
            levels, scores, _ = run_rule(ballots, inputs.rule, inputs.params, inputs.tie_policy, inputs.tie_seed)
            texts = files.load_texts(ballots.items.pks)
            counts["items"] += len(ballots.items)
            counts["rankings"] += len(ballots)
            counts["pairs"] += files.write_lines(pairs, files.pair_lines(
                ballots, levels, scores, splits, texts, inputs.pair_strategy, snapshot_id))
            files.write_lines(rankings, files.ranking_lines(ballots, levels, scores, splits, texts, snapshot_id))
            counts["baseline_pairs"] += files.write_lines(baseline, files.baseline_lines(
                ballots, splits, texts, resolved.keys, snapshot_id))
            _write_groups(groups, tmp, ballots, splits, texts, inputs, snapshot_id)
    for handle in groups.handles.values():
        handle.close()
    if not counts["items"]:
        raise AggregationError("the pool has no ranking in this project: nothing to freeze")
    datasets = _datasets(tmp, groups)
    manifest = {
        "snapshot": snapshot_id, "inputs": hashed, "pool_resolved": resolved.summary(),
        "weights": resolved.weight_of(), "filters": {k: hashed["pool"][k] for k in (
            "kinds", "panels", "synthetic_models", "human_filters", "persona_filters", "min_rankings",
            "max_distance", "drop_cannot_judge")},
        "reweighting_targets": hashed["pool"]["raking_targets"], "rule": _rule_facts(inputs.rule),
        "pair_strategy": inputs.pair_strategy, "seed": inputs.seed,
        "split": {"fractions": inputs.split, "items": split_items,
                  "counts": {s: len(v) for s, v in split_items.items()}},
        "counts": counts, "groups": {_Groups.file_name(*g): {"field": g[0], "value": g[1], "pairs": n}
                                     for g, n in groups.counts.items()},
        "group_min_size": min_group(), "datasets": datasets, "source_rankings_hash": source,
        "code_version": code_version(), "created_at": datetime.now(UTC).isoformat(),
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False, sort_keys=True))
    return manifest


def _rule_facts(rule: str) -> dict[str, Any]:
    return next(dict(r) for r in socialchoice.describe() if r["name"] == rule)


def _write_groups(groups: _Groups, tmp: Path, ballots: Ballots, splits: list[str], texts: files.Texts,
                  inputs: SnapshotInputs, snapshot_id: str) -> None:
    test = np.array([s == "test" for s in splits], dtype=bool)
    if not groups.members or not test.any():
        return
    for (fld, value), members in groups.members.items():
        rows = test[ballots.item_index] & np.isin(ballots.rater_ids, members)
        per_item = np.bincount(ballots.item_index[rows], minlength=len(ballots.items))
        rows &= per_item[ballots.item_index] >= min_group()
        if not rows.any():
            continue
        sub = ballots.take(rows).ranked_items()
        check_k_limit(sub, inputs.rule, _rule_facts(inputs.rule)["max_k"])
        levels, scores, _ = run_rule(sub, inputs.rule, inputs.params, inputs.tie_policy, inputs.tie_seed)
        sub_splits = ["test"] * len(sub.items)
        lines = files.pair_lines(sub, levels, scores, sub_splits, texts, inputs.pair_strategy, snapshot_id,
                                 group={fld: value})
        key = (fld, value)
        if key not in groups.handles:
            groups.handles[key] = open(tmp / "groups" / _Groups.file_name(fld, value), "w")  # noqa: SIM115
        groups.counts[key] = groups.counts.get(key, 0) + files.write_lines(groups.handles[key], lines)


def _datasets(tmp: Path, groups: _Groups) -> dict[str, dict[str, int]]:
    out = {}
    for name, kind in (("pairs", "pairs"), ("rankings", "rankings"), ("baseline_pairs", "baseline")):
        out[name] = files.to_datasets(tmp / f"{name}.jsonl", tmp / "datasets" / name, files.schema_for(kind))
    for (fld, value) in groups.handles:
        stem = _Groups.file_name(fld, value)[: -len(".jsonl")]
        out[f"groups/{stem}"] = files.to_datasets(tmp / "groups" / f"{stem}.jsonl", tmp / "datasets" / "groups" / stem,
                                                  files.schema_for("group", fld), splits=("test",))
    return out


# ---------------------------------------------------------------- reading


def zip_snapshot(snapshot: Snapshot, target: IO[bytes]) -> None:
    """Every file of the snapshot into a zip archive under a `<snapshot id>/` folder."""
    root = snapshot.path
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                archive.write(path, f"{snapshot.snapshot_id}/{path.relative_to(root)}")


def zip_file(snapshot: Snapshot) -> IO[bytes]:
    handle = tempfile.TemporaryFile()  # noqa: SIM115 - returned to the caller, closed by the response
    zip_snapshot(snapshot, handle)
    handle.seek(0)
    return handle


def _pairs_by_item(snapshot: Snapshot) -> dict[str, dict[tuple[str, str], float]]:
    out: dict[str, dict[tuple[str, str], float]] = {}
    with open(snapshot.path / "pairs.jsonl") as handle:
        for line in handle:
            row = json.loads(line)
            out.setdefault(row["item"], {})[(row["chosen_id"], row["rejected_id"])] = row["margin"]
    with open(snapshot.path / "rankings.jsonl") as handle:
        for line in handle:
            out.setdefault(json.loads(line)["item"], {})
    return out


def diff_snapshots(a: Snapshot, b: Snapshot, limit: int = 50, tolerance: float = 1e-9) -> dict[str, Any]:
    """What changed from ``a`` to ``b``: items added or removed, pairs flipped (chosen and rejected
    swapped), pairs added or removed otherwise, margins changed (beyond ``tolerance``)."""
    pa, pb = _pairs_by_item(a), _pairs_by_item(b)
    out: dict[str, list[Any]] = {"items_added": sorted(set(pb) - set(pa)), "items_removed": sorted(set(pa) - set(pb)),
                                 "pairs_flipped": [], "pairs_added": [], "pairs_removed": [], "margins_changed": []}
    for item in sorted(set(pa) & set(pb)):
        left, right = pa[item], pb[item]
        for (c, r), m in left.items():
            if (c, r) in right:
                if abs(right[(c, r)] - m) > tolerance:
                    out["margins_changed"].append({"item": item, "chosen": c, "rejected": r, "from": m,
                                                   "to": right[(c, r)]})
            elif (r, c) in right:
                out["pairs_flipped"].append({"item": item, "was": [c, r], "now": [r, c]})
            else:
                out["pairs_removed"].append({"item": item, "chosen": c, "rejected": r})
        for (c, r) in right:
            if (c, r) not in left and (r, c) not in left:
                out["pairs_added"].append({"item": item, "chosen": c, "rejected": r})
    result: dict[str, Any] = {"from": a.snapshot_id, "to": b.snapshot_id}
    for key, values in out.items():
        result[key] = {"count": len(values), "examples": values[:limit]}
    return result
