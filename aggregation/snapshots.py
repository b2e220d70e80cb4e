"""Snapshots: frozen, hashed preference datasets (ARCHITECTURE.md, "Snapshot").

`create_snapshot` resolves the pool, hashes every input with the source rankings' digest into the
snapshot id, and, unless that snapshot exists already, streams the files into a temporary
directory one chunk of items at a time, then renames it to `<SNAPSHOTS_DIR>/<id>` and makes
the files read-only. If the rankings change while it writes (the digest differs afterwards), it
starts again, so the files always match the hash in the manifest. Nothing ever rewrites a
snapshot; `delete_snapshot` is the only removal.

The per-group files hold a demographic group's collective on test items only where at least
`AGGREGATE_MIN_GROUP` members of the group ranked the item, so no line shows one person's ranking.
"""
from __future__ import annotations

import functools
import hashlib
import importlib
import json
import logging
import os
import queue
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
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
from .ballots import iter_item_ranges, load_ballots, source_digest
from .models import Snapshot, snapshot_root
from .pools import ResolvedPool, resolve
from .services import AggregationError, check_rule, pool_spec, run_rule

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
    _import_datasets_early()
    resolved = resolve(project, pool_spec(project, inputs.pool))
    for _ in range(ATTEMPTS):
        source = source_digest(project)
        snapshot_id, hashed = identity(project, inputs, resolved, source)
        existing = Snapshot.objects.filter(snapshot_id=snapshot_id).first()
        if existing is not None:
            return existing, False
        tmp = snapshot_root() / f".tmp-{snapshot_id}-{uuid.uuid4().hex[:8]}"
        try:
            manifest, after = _write(project, inputs, resolved, snapshot_id, hashed, source, tmp)
            if after != source:
                log.info("rankings changed while snapshot %s was written; starting again", snapshot_id)
                continue
            return _publish(project, user, inputs, snapshot_id, source, manifest, tmp)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    raise AggregationError("the rankings kept changing while the snapshot was written; try again")


def _import_datasets_early() -> None:
    """Import `datasets` (0.6 s of CPU: pandas, huggingface_hub, ...) in a thread while the pool
    is resolved and the rankings hashed, mostly waits on the database; the first `DatasetSink`
    imports it too, which waits for this import to finish. pyarrow, which this thread uses as
    well, is imported here first so that no module is imported by two threads at once."""
    if "datasets" in sys.modules:
        return
    import pyarrow  # noqa: F401

    threading.Thread(target=importlib.import_module, args=("datasets",), name="import-datasets",
                     daemon=True).start()


def _publish(project: Project, user: AbstractBaseUser | None, inputs: SnapshotInputs, snapshot_id: str,
             source: str, manifest: dict[str, Any], tmp: Path) -> tuple[Snapshot, bool]:
    final = snapshot_root() / snapshot_id
    _read_only(tmp)
    if final.exists():
        # Renamed into place by a concurrent writer of the same id (or left by a crash before its
        # row was stored): a complete directory of the same inputs and rankings. Keep it as it is.
        manifest = json.loads((final / "manifest.json").read_text())
    else:
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
    """Demographic groups large enough to show: (field, value) -> member rater pks; their open
    JSONL files and `datasets` sinks (made when a group first has a line)."""

    members: dict[tuple[str, str], np.ndarray]
    handles: dict[tuple[str, str], IO[bytes]] = field(default_factory=dict)
    sinks: dict[tuple[str, str], files.DatasetSink] = field(default_factory=dict)
    counts: dict[tuple[str, str], int] = field(default_factory=dict)

    @staticmethod
    def stem(fld: str, value: str) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{fld}={value}").strip("_")


def _groups(project: Project, resolved: ResolvedPool) -> _Groups:
    if project.demographics_export == Project.DemographicsExport.NONE:
        return _Groups({})
    by_group: dict[tuple[str, str], list[int]] = {}
    for pk, demo in resolved.demographics.items():
        for fld, value in demo.items():
            by_group.setdefault((fld, value), []).append(pk)
    return _Groups({g: np.array(sorted(m), dtype=np.int64) for g, m in sorted(by_group.items())
                    if len(m) >= min_group()})


@dataclass
class _Sinks:
    pairs: files.DatasetSink
    rankings: files.DatasetSink
    baseline: files.DatasetSink

    @classmethod
    def open(cls, tmp: Path, snapshot_id: str) -> _Sinks:
        def sink(name: str, kind: str) -> files.DatasetSink:
            return files.DatasetSink(tmp / "datasets" / name, files.schema_for(kind), files.SPLITS,
                                     f"{snapshot_id}:{name}")

        return cls(sink("pairs", "pairs"), sink("rankings", "rankings"), sink("baseline_pairs", "baseline"))


class _Writer:
    """Makes and writes a snapshot's texts and Arrow batches in a second thread while the next
    chunk is loaded and aggregated: file writes and most of the making (Arrow's joins, takes and
    IPC writer) release the GIL, and writing the files (about 750 MB for 10,000 items x 20 raters)
    took a third of the time. A job is a list of ``(write, make, *args)``: ``write(make(*args))``
    in order, one piece alive at a time. `submit` first waits for the previous chunk's job, so
    memory holds one chunk's output piece beside the next chunk's inputs. Leaving the ``with``
    block waits for every write and raises the first error of the thread."""

    def __init__(self) -> None:
        self._jobs: queue.Queue[list[tuple[Any, ...]] | None] = queue.Queue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="snapshot-writer", daemon=True)

    def __enter__(self) -> _Writer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._jobs.put(None)
        self._thread.join()
        if self._error is not None and exc[0] is None:
            raise self._error

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                for write, make, *args in job:
                    if self._error is None:
                        write(make(*args))
            except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
                self._error = exc
            finally:
                job = None
                self._jobs.task_done()

    def submit(self, job: list[tuple[Any, ...]]) -> None:
        """Queue a chunk's ``(write, make, *args)`` once the previous chunk's are written."""
        self._jobs.join()
        if self._error is not None:
            raise self._error
        self._jobs.put(job)


def _write(project: Project, inputs: SnapshotInputs, resolved: ResolvedPool, snapshot_id: str,
           hashed: dict[str, Any], source: str, tmp: Path) -> tuple[dict[str, Any], str]:
    """Write the files into ``tmp``: (the manifest, the rankings' digest after the last read)."""
    (tmp / "groups").mkdir(parents=True)
    groups = _groups(project, resolved)
    sinks = _Sinks.open(tmp, snapshot_id)
    split_items: dict[str, list[str]] = {s: [] for s in files.SPLITS}
    counts = {"items": 0, "rankings": 0, "pairs": 0, "baseline_pairs": 0}
    with open(tmp / "pairs.jsonl", "wb") as pairs, open(tmp / "rankings.jsonl", "wb") as rankings, \
            open(tmp / "baseline_pairs.jsonl", "wb") as baseline, _Writer() as writer:
        write_pairs, write_baseline, write_rankings = (
            functools.partial(files.write_lines, handle) for handle in (pairs, baseline, rankings))
        for item_range in iter_item_ranges(project, CHUNK_ITEMS):
            ballots = load_ballots(project, item_range=item_range, raters=resolved.raters,
                                   drop_cannot_judge=resolved.spec.drop_cannot_judge).ranked_items()
            if not len(ballots):
                continue
            splits = [files.split_of(e, inputs.seed, inputs.split) for e in ballots.items.external_ids]
            for ext, s in zip(ballots.items.external_ids, splits, strict=True):
                split_items[s].append(ext)
            levels, scores, _ = run_rule(ballots, inputs.rule, inputs.params, inputs.tie_policy, inputs.tie_seed)
            chunk = files.load_chunk(ballots, splits, snapshot_id)
            rows = files.collective_rows(ballots, levels, scores, inputs.pair_strategy)
            own = files.baseline_rows(ballots)
            counts["items"] += len(ballots.items)
            counts["rankings"] += len(ballots)
            counts["pairs"] += len(rows)
            counts["baseline_pairs"] += len(own)
            keys = resolved.keys
            writer.submit([
                (write_pairs, files.pair_lines, chunk, rows),
                (sinks.pairs.write, files.pair_batch, chunk, rows, sinks.pairs.schema),
                (write_baseline, files.pair_lines, chunk, own, keys),
                (sinks.baseline.write, files.pair_batch, chunk, own, sinks.baseline.schema, keys),
                (write_rankings, files.ranking_lines, chunk, levels, scores),
                (sinks.rankings.write, files.ranking_batch, chunk, levels, scores,
                 sinks.rankings.schema),
                *_write_groups(groups, tmp, chunk, inputs, snapshot_id),
            ])
        # Every ranking in the files has been read: hash again while the last chunk is written.
        after = source_digest(project)
    datasets = {"pairs": sinks.pairs.close(), "rankings": sinks.rankings.close(),
                "baseline_pairs": sinks.baseline.close()}
    for key, handle in groups.handles.items():
        handle.close()
        datasets[f"groups/{_Groups.stem(*key)}"] = groups.sinks[key].close()
    if not counts["items"]:
        raise AggregationError("the pool has no ranking in this project: nothing to freeze")
    manifest = {
        "snapshot": snapshot_id, "inputs": hashed, "pool_resolved": resolved.summary(),
        "weights": resolved.weight_of(), "filters": {k: hashed["pool"][k] for k in (
            "kinds", "panels", "synthetic_models", "human_filters", "persona_filters", "min_rankings",
            "max_distance", "drop_cannot_judge")},
        "reweighting_targets": hashed["pool"]["raking_targets"], "rule": _rule_facts(inputs.rule),
        "pair_strategy": inputs.pair_strategy, "seed": inputs.seed,
        "split": {"fractions": inputs.split, "items": split_items,
                  "counts": {s: len(v) for s, v in split_items.items()}},
        "counts": counts, "groups": {f"{_Groups.stem(*g)}.jsonl": {"field": g[0], "value": g[1], "pairs": n}
                                     for g, n in groups.counts.items()},
        "group_min_size": min_group(), "datasets": datasets, "source_rankings_hash": source,
        "code_version": code_version(), "created_at": datetime.now(UTC).isoformat(),
    }
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False, sort_keys=True))
    return manifest, after


def _rule_facts(rule: str) -> dict[str, Any]:
    return next(dict(r) for r in socialchoice.describe() if r["name"] == rule)


def _write_groups(groups: _Groups, tmp: Path, chunk: files.Chunk, inputs: SnapshotInputs,
                  snapshot_id: str) -> list[tuple[Any, ...]]:
    """The chunk's group lines and batches as `_Writer` jobs (the files are opened here)."""
    ballots = chunk.ballots
    test = np.array([s == "test" for s in chunk.splits], dtype=bool)
    writes: list[tuple[Any, ...]] = []
    if not groups.members or not test.any():
        return writes
    for key, members in groups.members.items():
        rows = test[ballots.item_index] & np.isin(ballots.rater_ids, members)
        per_item = np.bincount(ballots.item_index[rows], minlength=len(ballots.items))
        rows &= per_item[ballots.item_index] >= min_group()
        if not rows.any():
            continue
        # The group's rankings over the chunk's items (indices unchanged, so the chunk's texts
        # apply); items below the threshold have no ranking here and their rows are dropped.
        sub = ballots.take(rows)
        ranked = np.unique(sub.item_index)
        levels = np.full((len(ballots.items), ballots.items.k_max), -1, dtype=np.int64)
        scores = np.zeros(levels.shape)
        levels[ranked], scores[ranked], _ = run_rule(sub.ranked_items(), inputs.rule, inputs.params,
                                                     inputs.tie_policy, inputs.tie_seed)
        pair_rows = files.collective_rows(sub, levels, scores, inputs.pair_strategy)
        keep = per_item[pair_rows.item] >= min_group()
        pair_rows = files.Rows(*(x[keep] for x in (pair_rows.item, pair_rows.a, pair_rows.b, pair_rows.margin,
                                                   pair_rows.vote_share, pair_rows.human_share)))
        group = {key[0]: key[1]}
        if key not in groups.handles:
            stem = _Groups.stem(*key)
            groups.handles[key] = open(tmp / "groups" / f"{stem}.jsonl", "wb")  # noqa: SIM115 - closed in _write
            groups.sinks[key] = files.DatasetSink(tmp / "datasets" / "groups" / stem,
                                                  files.schema_for("group", key[0]), ("test",),
                                                  f"{snapshot_id}:groups/{stem}")
        groups.counts[key] = groups.counts.get(key, 0) + len(pair_rows)
        sink = groups.sinks[key]
        writes += [
            (functools.partial(files.write_lines, groups.handles[key]),
             functools.partial(files.pair_lines, group=group), chunk, pair_rows),
            (sink.write, functools.partial(files.pair_batch, group=group), chunk, pair_rows,
             sink.schema),
        ]
    return writes


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
