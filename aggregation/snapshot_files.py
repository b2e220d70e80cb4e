"""The files of a snapshot, written one chunk of items at a time (ARCHITECTURE.md's contracts).

Lines are built from JSON fragments made once per item and per response, so a pair line costs a
string join, not a `json.dumps` of the prompt. `datasets` directories are made from the JSONL
files by pyarrow's streaming JSON reader, one record batch at a time, so memory stays bounded.
Beyond the contract, pair lines carry `chosen_id` / `rejected_id` (for diffs and provenance),
baseline lines the rater's `weight`, ranking lines `response_scores` (scores aligned with
`responses`, the form the `datasets` copy keeps, since its rows need one schema).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from annotation.models import Item, Response
from socialchoice.pairs import group_pairs

from .ballots import Ballots

SPLITS = ("train", "validation", "test")


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def canonical(value: Any) -> str:
    """Canonical JSON (sorted keys, no spaces, no NaN): what snapshot ids hash."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def split_of(external_id: str, seed: int, fractions: dict[str, float]) -> str:
    """An item's split from a hash of (seed, external id): stable when other items come or go."""
    u = int(hashlib.sha256(f"{seed}:{external_id}".encode()).hexdigest()[:15], 16) / 16**15
    edge = 0.0
    for name in SPLITS:
        edge += fractions[name]
        if u < edge:
            return name
    return SPLITS[-1]


@dataclass
class Texts:
    """JSON fragments of a chunk's items: prompt messages, response messages and response objects."""

    prompt: dict[int, str]
    response_msg: dict[tuple[int, str], str]
    response_obj: dict[int, str]


def load_texts(pks: np.ndarray) -> Texts:
    if not len(pks):
        return Texts({}, {}, {})
    lo, hi = int(pks.min()), int(pks.max())
    prompt = {
        pk: dumps([*(context or []), {"role": "user", "content": text}])
        for pk, text, context in Item.objects.filter(pk__range=(lo, hi)).values_list("pk", "prompt", "context")
    }
    msg: dict[tuple[int, str], str] = {}
    objs: dict[int, list[str]] = {}
    rows = Response.objects.filter(item__pk__range=(lo, hi)).order_by("item_id", "position", "pk")
    for item_id, rid, text in rows.values_list("item_id", "response_id", "text"):
        msg[(item_id, rid)] = dumps([{"role": "assistant", "content": text}])
        objs.setdefault(item_id, []).append(dumps({"id": rid, "content": text}))
    return Texts(prompt, msg, {pk: "[" + ", ".join(v) + "]" for pk, v in objs.items()})


def support(ballots: Ballots) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per item: weight ranking a over b ``[n, K, K]``, total weight ``[n]``, human weight ``[n]``."""
    n, k = len(ballots.items), ballots.items.k_max
    g = ballots.group_indices.astype(np.int64)
    g = np.where(g < 0, k, g)  # unranked: one group below every ranked response
    prefers = (g[:, :, None] < g[:, None, :]).astype(np.float64) * ballots.weights[:, None, None]
    flat = (ballots.item_index[:, None, None] * k * k + np.arange(k * k).reshape(1, k, k)).ravel()
    sup = np.bincount(flat, weights=prefers.ravel(), minlength=n * k * k).reshape(n, k, k)
    total = np.bincount(ballots.item_index, weights=ballots.weights, minlength=n)
    human = np.bincount(ballots.item_index, weights=ballots.weights * ballots.human, minlength=n)
    return sup, total, human


def pair_lines(ballots: Ballots, levels: np.ndarray, scores: np.ndarray, splits: list[str], texts: Texts,
               strategy: str, snapshot_id: str, group: dict[str, str] | None = None) -> list[str]:
    """Collective pairs of every item (TRL conversational format with margin and provenance)."""
    sup, total, human = support(ballots)
    extra = f', "group": {dumps(group)}' if group is not None else ""
    out = []
    for i, item_pk in enumerate(ballots.items.pks.tolist()):
        alts = ballots.items.alternatives[i]
        lv = levels[i, : len(alts)]
        n_groups = int(lv.max()) + 1 if len(lv) else 0
        head = (f'{{"prompt": {texts.prompt[item_pk]}, ')
        tail = (f'"human_share": {_num(human[i] / total[i])}, "item": {dumps(ballots.items.external_ids[i])}, '
                f'"split": "{splits[i]}", "snapshot": "{snapshot_id}"{extra}}}')
        for gi, gj in group_pairs(n_groups, strategy):
            for a in np.flatnonzero(lv == gi).tolist():
                for b in np.flatnonzero(lv == gj).tolist():
                    out.append(
                        f'{head}"chosen": {texts.response_msg[(item_pk, alts[a])]}, '
                        f'"rejected": {texts.response_msg[(item_pk, alts[b])]}, '
                        f'"margin": {_num(scores[i, a] - scores[i, b])}, '
                        f'"vote_share": {_num(sup[i, a, b] / total[i])}, '
                        f'"chosen_id": {dumps(alts[a])}, "rejected_id": {dumps(alts[b])}, {tail}'
                    )
    return out


def ranking_lines(ballots: Ballots, levels: np.ndarray, scores: np.ndarray, splits: list[str], texts: Texts,
                  snapshot_id: str) -> list[str]:
    from socialchoice.profiles import decode_levels

    out = []
    for i, item_pk in enumerate(ballots.items.pks.tolist()):
        alts = ballots.items.alternatives[i]
        sc = [float(x) for x in scores[i, : len(alts)]]
        out.append(
            f'{{"prompt": {texts.prompt[item_pk]}, "responses": {texts.response_obj[item_pk]}, '
            f'"ranking": {dumps(decode_levels(alts, levels[i, : len(alts)]))}, '
            f'"scores": {dumps(dict(zip(alts, sc, strict=True)))}, "response_scores": {dumps(sc)}, '
            f'"item": {dumps(ballots.items.external_ids[i])}, "split": "{splits[i]}", "snapshot": "{snapshot_id}"}}'
        )
    return out


def baseline_lines(ballots: Ballots, splits: list[str], texts: Texts, keys: dict[int, str],
                   snapshot_id: str) -> list[str]:
    """Every rater's own strict pairs (no aggregation). `margin` is the rater's rank gap scaled to
    [0, 1] (1 = first against last), `vote_share` 1 (the rater's own vote)."""
    k_max = ballots.items.k_max
    g = ballots.group_indices.astype(np.int64)
    g = np.where(g < 0, k_max, g)
    valid = np.arange(k_max)[None, :] < ballots.items.k[ballots.item_index][:, None]
    strict = (g[:, :, None] < g[:, None, :]) & valid[:, :, None] & valid[:, None, :]
    strict &= (ballots.weights > 0)[:, None, None]
    rows, a_idx, b_idx = np.nonzero(strict)
    n_groups = np.where(valid, g, -1).max(axis=1)
    out = []
    key_json = {pk: dumps(key) for pk, key in keys.items()}
    for r, a, b in zip(rows.tolist(), a_idx.tolist(), b_idx.tolist(), strict=True):
        i = int(ballots.item_index[r])
        item_pk, alts = int(ballots.items.pks[i]), ballots.items.alternatives[i]
        gap = (g[r, b] - g[r, a]) / max(int(n_groups[r]), 1)
        out.append(
            f'{{"prompt": {texts.prompt[item_pk]}, "chosen": {texts.response_msg[(item_pk, alts[a])]}, '
            f'"rejected": {texts.response_msg[(item_pk, alts[b])]}, "margin": {_num(min(gap, 1.0))}, '
            f'"vote_share": 1.0, "human_share": {"1.0" if ballots.human[r] else "0.0"}, '
            f'"chosen_id": {dumps(alts[a])}, "rejected_id": {dumps(alts[b])}, '
            f'"item": {dumps(ballots.items.external_ids[i])}, "split": "{splits[i]}", '
            f'"snapshot": "{snapshot_id}", "rater": {key_json[int(ballots.rater_ids[r])]}, '
            f'"weight": {_num(ballots.weights[r])}}}'
        )
    return out


def _num(x: float) -> str:
    return repr(float(x))


def write_lines(handle: IO[str], lines: list[str]) -> int:
    if lines:
        handle.write("\n".join(lines))
        handle.write("\n")
    return len(lines)


# ---------------------------------------------------------------- datasets directories


def _schemas() -> dict[str, Any]:
    import pyarrow as pa

    message = pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))
    pair = [("prompt", message), ("chosen", message), ("rejected", message), ("margin", pa.float64()),
            ("vote_share", pa.float64()), ("human_share", pa.float64()), ("chosen_id", pa.string()),
            ("rejected_id", pa.string()), ("item", pa.string()), ("split", pa.string()), ("snapshot", pa.string())]
    ranking = [("prompt", message), ("responses", pa.list_(pa.struct([("id", pa.string()), ("content", pa.string())]))),
               ("ranking", pa.list_(pa.list_(pa.string()))), ("response_scores", pa.list_(pa.float64())),
               ("item", pa.string()), ("split", pa.string()), ("snapshot", pa.string())]
    return {"pairs": pa.schema(pair), "rankings": pa.schema(ranking),
            "baseline": pa.schema([*pair, ("rater", pa.string()), ("weight", pa.float64())]),
            "group": lambda fld: pa.schema([*pair, ("group", pa.struct([(fld, pa.string())]))])}


def schema_for(kind: str, group_field: str | None = None) -> Any:
    schemas = _schemas()
    return schemas["group"](group_field) if kind == "group" else schemas[kind]


def to_datasets(jsonl: Path, out: Path, schema: Any, splits: tuple[str, ...] = SPLITS) -> dict[str, int]:
    """``jsonl`` as a `datasets` DatasetDict directory at ``out`` (one split per value of `split`)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.json as pj
    from datasets import Dataset, DatasetDict, disable_progress_bars
    from datasets.table import MemoryMappedTable

    disable_progress_bars()

    work = out.parent / f".{out.name}.arrow"
    work.mkdir(parents=True)
    paths = {s: work / f"{s}.arrow" for s in splits}
    writers = {s: pa.ipc.new_stream(str(p), schema) for s, p in paths.items()}
    counts = dict.fromkeys(splits, 0)
    try:
        if jsonl.stat().st_size:
            reader = pj.open_json(
                str(jsonl), read_options=pj.ReadOptions(block_size=4 << 20),
                parse_options=pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore"),
            )
            for batch in reader:
                batch = pa.RecordBatch.from_arrays([batch.column(f.name) for f in schema], schema=schema)
                for s in splits:
                    part = batch.filter(pc.equal(batch.column("split"), s))
                    counts[s] += part.num_rows
                    writers[s].write_batch(part)
    finally:
        for w in writers.values():
            w.close()
    # A fingerprint from the content (not the temporary path) keeps state.json identical across
    # rewrites; one shard per split even when it is empty: `load_from_disk` cannot read none.
    size = jsonl.stat().st_size
    parts = {
        s: Dataset(MemoryMappedTable.from_file(str(p)),
                   fingerprint=hashlib.sha256(f"{out.name}:{s}:{size}:{counts[s]}".encode()).hexdigest()[:16])
        for s, p in paths.items()
    }
    DatasetDict(parts).save_to_disk(
        str(out), num_shards=dict.fromkeys(splits, 1))
    for p in paths.values():
        p.unlink()
    work.rmdir()
    return counts
