"""The files of a snapshot, written one chunk of items at a time (ARCHITECTURE.md's contracts).

Every file is made from index arrays (which item, which responses, which rater) computed with
numpy: the JSONL lines join JSON fragments made once per item and per response, and the
`datasets` copies are Arrow record batches taken from per-chunk arrays with the same indices
(no JSON is parsed back), appended to one Arrow stream per split. Memory stays bounded by the
chunk. Beyond the contract, pair lines carry `chosen_id` / `rejected_id` (for diffs and
provenance), baseline lines the rater's `weight`, ranking lines `response_scores` (the scores
aligned with `responses`, the form the `datasets` copy keeps, since its rows need one schema).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from annotation.models import Item, Response
from socialchoice.pairs import group_pairs
from socialchoice.profiles import decode_levels

from .ballots import Ballots

SPLITS = ("train", "validation", "test")


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(", ", ": "))
_string = json.encoder.encode_basestring  # a str as a JSON string, as _ENCODER writes it


def dumps(value: Any) -> str:
    return _ENCODER.encode(value)


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


# ---------------------------------------------------------------- one chunk's texts


@dataclass
class Chunk:
    """A chunk's items with their texts as JSON fragments and as Arrow arrays. Responses are
    addressed by flat index ``item * k_max + column``."""

    ballots: Ballots
    splits: list[str]
    snapshot_id: str
    prompt_json: list[str] = field(default_factory=list)
    response_json: list[str] = field(default_factory=list)
    id_json: list[str] = field(default_factory=list)
    item_json: list[str] = field(default_factory=list)
    responses_json: list[str] = field(default_factory=list)
    arrow: dict[str, Any] = field(default_factory=dict)

    @property
    def k_max(self) -> int:
        return self.ballots.items.k_max

    def fragments(self) -> dict[str, Any]:
        """The JSON fragments as Arrow string arrays (made once per chunk)."""
        import pyarrow as pa

        if "fragments" not in self.arrow:
            self.arrow["fragments"] = {
                "prompt": pa.array(self.prompt_json, pa.string()), "response": pa.array(self.response_json, pa.string()),
                "id": pa.array(self.id_json, pa.string()), "item": pa.array(self.item_json, pa.string()),
                "split": pa.array(self.splits, pa.string()),
            }
        return self.arrow["fragments"]


def load_chunk(ballots: Ballots, splits: list[str], snapshot_id: str) -> Chunk:
    import pyarrow as pa

    chunk = Chunk(ballots, splits, snapshot_id)
    items, k_max = ballots.items, ballots.items.k_max
    pks = items.pks.tolist()
    lo, hi = min(pks), max(pks)
    prompts = {pk: [*(context or []), {"role": "user", "content": text}] for pk, text, context in
               Item.objects.filter(pk__range=(lo, hi)).values_list("pk", "prompt", "context")}
    texts = {(item_id, rid): text for item_id, rid, text in
             Response.objects.filter(item__pk__range=(lo, hi)).values_list("item_id", "response_id", "text")}
    messages: list[list[dict[str, str]] | None] = []
    ids: list[str | None] = []
    objects: list[list[dict[str, str]]] = []
    # The JSON fragments are written out around the strings' own encoding: the same text as
    # dumps() of the objects (its separators), without an encoder call per object.
    for i, pk in enumerate(pks):
        alts = items.alternatives[i]
        own = [{"id": a, "content": texts[(pk, a)]} for a in alts]
        objects.append(own)
        chunk.prompt_json.append(dumps(prompts[pk]))
        chunk.item_json.append(_string(items.external_ids[i]))
        alt_json = [_string(a) for a in alts]
        text_json = [_string(o["content"]) for o in own]
        listed = [f'{{"id": {alt_json[j]}, "content": {text_json[j]}}}' for j in range(len(alts))]
        chunk.responses_json.append(f"[{', '.join(listed)}]")
        for col in range(k_max):
            if col < len(alts):
                content = text_json[col]
                chunk.response_json.append(f'[{{"role": "assistant", "content": {content}}}]')
                chunk.id_json.append(alt_json[col])
                messages.append([{"role": "assistant", "content": own[col]["content"]}])
                ids.append(alts[col])
            else:
                chunk.response_json.append("")
                chunk.id_json.append("")
                messages.append(None)
                ids.append(None)
    chunk.arrow = {
        "prompt": pa.array([prompts[pk] for pk in pks], type=MESSAGES()),
        "message": pa.array(messages, type=MESSAGES()),
        "id": pa.array(ids, type=pa.string()),
        "item": pa.array(list(items.external_ids), type=pa.string()),
        "split": pa.array(splits, type=pa.string()),
        "responses": pa.array(objects, type=RESPONSES()),
    }
    return chunk


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


# ---------------------------------------------------------------- rows as index arrays


@dataclass
class Rows:
    """Pair rows: item (chunk row), chosen and rejected columns, and their numbers."""

    item: np.ndarray
    a: np.ndarray
    b: np.ndarray
    margin: np.ndarray
    vote_share: np.ndarray
    human_share: np.ndarray
    rater: np.ndarray | None = None  # rater pk (baseline)
    weight: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.item)


def collective_rows(ballots: Ballots, levels: np.ndarray, scores: np.ndarray, strategy: str) -> Rows:
    """Collective pairs of every item by the strategy, in `socialchoice.pairs.preference_pairs`'
    order: item, then group pair, then the ids in listed order (vectorised over items)."""
    group_pairs(1, strategy)  # an unknown strategy fails here, with the known ones named
    sup, total, human = support(ballots)
    k = ballots.items.k_max
    valid = np.arange(k)[None, :] < ballots.items.k[:, None]
    lv = np.where(valid & (levels >= 0), levels, -1)
    la, lb = lv[:, :, None], lv[:, None, :]
    top = lv.max(axis=1)[:, None, None]
    both = (la >= 0) & (lb >= 0)
    chosen = {
        "all": la < lb,
        "best_vs_rest": (la == 0) & (lb > 0),
        "best_vs_worst": (la == 0) & (lb == top) & (top > 0),
        "adjacent": lb == la + 1,
    }[strategy] & both
    it, a, b = np.nonzero(chosen)
    order = np.lexsort((b, a, lv[it, b], lv[it, a], it))
    it, a, b = it[order], a[order], b[order]
    total = np.where(total > 0, total, 1.0)  # items nobody ranked here (a group's chunk) give no pair
    return Rows(it, a, b, scores[it, a] - scores[it, b], sup[it, a, b] / total[it], (human / total)[it])


def baseline_rows(ballots: Ballots) -> Rows:
    """Every rater's own strict pairs (no aggregation). `margin` is the rater's tie-group gap
    scaled to [0, 1] (1 = first against last), `vote_share` 1 (the rater's own vote)."""
    k_max = ballots.items.k_max
    g = ballots.group_indices.astype(np.int64)
    g = np.where(g < 0, k_max, g)
    valid = np.arange(k_max)[None, :] < ballots.items.k[ballots.item_index][:, None]
    strict = (g[:, :, None] < g[:, None, :]) & valid[:, :, None] & valid[:, None, :]
    strict &= (ballots.weights > 0)[:, None, None]
    rows, a, b = np.nonzero(strict)
    last = np.maximum(np.where(valid, g, -1).max(axis=1), 1)
    margin = np.minimum((g[rows, b] - g[rows, a]) / last[rows], 1.0)
    return Rows(ballots.item_index[rows], a, b, margin, np.ones(len(rows)), ballots.human[rows].astype(np.float64),
                ballots.rater_ids[rows], ballots.weights[rows])


# ---------------------------------------------------------------- JSONL lines


def _text(values: np.ndarray) -> Any:
    """Numbers as JSON text: an Arrow string array, or one Python string when all are equal."""
    import pyarrow as pa
    import pyarrow.compute as pc

    constant = len(values) > 1 and values[0] == values[0] and bool((values == values[0]).all())
    text = pc.cast(pa.array(values[:1] if constant else values, pa.float64()), pa.string())
    return text[0].as_py() if constant else text  # a constant column (never NaN) joins as a scalar


def _distinct(keys: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct values of ``keys`` in ``[0, size)``, each key's position among them)."""
    if size > 4 * len(keys) + (1 << 16):
        return np.unique(keys, return_inverse=True)
    seen = np.zeros(size, dtype=bool)
    seen[keys] = True
    return np.flatnonzero(seen), (np.cumsum(seen) - 1)[keys]


def pair_lines(chunk: Chunk, rows: Rows, keys: dict[int, str] | None = None,
               group: dict[str, str] | None = None) -> Any:
    """Pair lines (JSONL, each ending in a newline) as an Arrow string array, joined element-wise
    by Arrow from the chunk's JSON fragments. What an (item, chosen, rejected) triple fixes is
    joined once per distinct triple (the baseline repeats each for every rater)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not len(rows):
        return pa.array([], pa.string())
    k, frag = chunk.k_max, chunk.fragments()
    triples, at = _distinct((rows.item * k + rows.a) * k + rows.b, len(chunk.ballots.items) * k * k)
    items, fa = pa.array(triples // (k * k)), pa.array(triples // k)
    fb = pa.array(triples // (k * k) * k + triples % k)
    head = pc.binary_join_element_wise(
        '{"prompt": ', frag["prompt"].take(items), ', "chosen": ', frag["response"].take(fa),
        ', "rejected": ', frag["response"].take(fb), ', "margin": ', "")
    tail = pc.binary_join_element_wise(
        ', "chosen_id": ', frag["id"].take(fa), ', "rejected_id": ', frag["id"].take(fb),
        ', "item": ', frag["item"].take(items), ', "split": "', frag["split"].take(items),
        f'", "snapshot": "{chunk.snapshot_id}"', "")
    at_rows = pa.array(at)
    parts: list[Any] = [
        head.take(at_rows), _text(rows.margin), ', "vote_share": ', _text(rows.vote_share),
        ', "human_share": ', _text(rows.human_share), tail.take(at_rows),
    ]
    if rows.rater is not None and rows.weight is not None and keys is not None:
        rater_ids = np.array(sorted(keys), dtype=np.int64)
        names = pa.array([dumps(keys[int(r)]) for r in rater_ids], pa.string())
        parts += [', "rater": ', names.take(pa.array(np.searchsorted(rater_ids, rows.rater))),
                  ', "weight": ', _text(rows.weight)]
    if group is not None:
        parts.append(f', "group": {dumps(group)}')
    parts.append("}\n")
    return pc.binary_join_element_wise(*parts, "")


def ranking_lines(chunk: Chunk, levels: np.ndarray, scores: np.ndarray) -> Any:
    """Ranking lines (JSONL) as an Arrow string array, one per item."""
    import pyarrow as pa

    items = chunk.ballots.items
    out = []
    for i in range(len(items)):
        alts = items.alternatives[i]
        sc = scores[i, : len(alts)].tolist()
        out.append(
            f'{{"prompt": {chunk.prompt_json[i]}, "responses": {chunk.responses_json[i]}, '
            f'"ranking": {dumps(decode_levels(alts, levels[i, : len(alts)]))}, '
            f'"scores": {dumps(dict(zip(alts, sc, strict=True)))}, "response_scores": {dumps(sc)}, '
            f'"item": {chunk.item_json[i]}, "split": "{chunk.splits[i]}", "snapshot": "{chunk.snapshot_id}"}}\n'
        )
    return pa.array(out, pa.string())


def write_lines(handle: IO[bytes], lines: Any) -> int:
    """Write the lines of an Arrow string array (each ends with its newline, and JSON has no other
    raw newline) straight from its data buffer; the number of lines written."""
    if not len(lines):
        return 0
    start = lines.offset
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int32)[start : start + len(lines) + 1]
    handle.write(memoryview(lines.buffers()[2])[offsets[0] : offsets[-1]])
    return len(lines)


# ---------------------------------------------------------------- Arrow batches and datasets directories


def MESSAGES() -> Any:  # noqa: N802 - a type constructor, named like pyarrow's
    import pyarrow as pa

    return pa.list_(pa.struct([("role", pa.string()), ("content", pa.string())]))


def RESPONSES() -> Any:  # noqa: N802
    import pyarrow as pa

    return pa.list_(pa.struct([("id", pa.string()), ("content", pa.string())]))


def schema_for(kind: str, group_field: str | None = None) -> Any:
    import pyarrow as pa

    pair = [("prompt", MESSAGES()), ("chosen", MESSAGES()), ("rejected", MESSAGES()), ("margin", pa.float64()),
            ("vote_share", pa.float64()), ("human_share", pa.float64()), ("chosen_id", pa.string()),
            ("rejected_id", pa.string()), ("item", pa.string()), ("split", pa.string()), ("snapshot", pa.string())]
    if kind == "pairs":
        return pa.schema(pair)
    if kind == "baseline":
        return pa.schema([*pair, ("rater", pa.string()), ("weight", pa.float64())])
    if kind == "group":
        return pa.schema([*pair, ("group", pa.struct([(group_field or "group", pa.string())]))])
    return pa.schema([("prompt", MESSAGES()), ("responses", RESPONSES()), ("ranking", pa.list_(pa.list_(pa.string()))),
                      ("response_scores", pa.list_(pa.float64())), ("item", pa.string()), ("split", pa.string()),
                      ("snapshot", pa.string())])


def pair_batch(chunk: Chunk, rows: Rows, schema: Any, keys: dict[int, str] | None = None,
               group: dict[str, str] | None = None) -> Any:
    import pyarrow as pa

    k = chunk.k_max
    fa, fb = pa.array(rows.item * k + rows.a), pa.array(rows.item * k + rows.b)
    items = pa.array(rows.item)
    n = len(rows)
    columns = [
        chunk.arrow["prompt"].take(items), chunk.arrow["message"].take(fa), chunk.arrow["message"].take(fb),
        pa.array(rows.margin, pa.float64()), pa.array(rows.vote_share, pa.float64()),
        pa.array(rows.human_share, pa.float64()), chunk.arrow["id"].take(fa), chunk.arrow["id"].take(fb),
        chunk.arrow["item"].take(items), chunk.arrow["split"].take(items),
        pa.array([chunk.snapshot_id], pa.string()).take(pa.array(np.zeros(n, dtype=np.int64))),
    ]
    if rows.rater is not None and rows.weight is not None and keys is not None:
        rater_ids = np.array(sorted(keys), dtype=np.int64)
        names = pa.array([keys[int(r)] for r in rater_ids], pa.string())
        columns += [names.take(pa.array(np.searchsorted(rater_ids, rows.rater))), pa.array(rows.weight, pa.float64())]
    if group is not None:
        (fld, value), = group.items()
        columns.append(pa.StructArray.from_arrays([pa.array([value] * n, pa.string())], names=[fld]))
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def ranking_batch(chunk: Chunk, levels: np.ndarray, scores: np.ndarray, schema: Any) -> Any:
    import pyarrow as pa

    items = chunk.ballots.items
    orders = [decode_levels(a, levels[i, : len(a)]) for i, a in enumerate(items.alternatives)]
    sc = [scores[i, : len(a)].tolist() for i, a in enumerate(items.alternatives)]
    n = len(items)
    return pa.RecordBatch.from_arrays([
        chunk.arrow["prompt"], chunk.arrow["responses"], pa.array(orders, pa.list_(pa.list_(pa.string()))),
        pa.array(sc, pa.list_(pa.float64())), chunk.arrow["item"], chunk.arrow["split"],
        pa.array([chunk.snapshot_id] * n, pa.string()),
    ], schema=schema)


class DatasetSink:
    """A `datasets` DatasetDict directory written as it goes: the metadata from saving an empty
    DatasetDict of the schema, then each split's Arrow stream appended batch by batch."""

    def __init__(self, out: Path, schema: Any, splits: tuple[str, ...], fingerprint: str) -> None:
        import pyarrow as pa
        from datasets import Dataset, DatasetDict, disable_progress_bars

        disable_progress_bars()
        empty = pa.Table.from_batches([], schema)
        # The fingerprint names the content (the snapshot id), not a temporary path, so a rewrite
        # gives byte-identical metadata; one shard per split, even an empty one.
        DatasetDict({s: Dataset(empty, fingerprint=hashlib.sha256(f"{fingerprint}:{s}".encode()).hexdigest()[:16])
                     for s in splits}).save_to_disk(str(out), num_shards=dict.fromkeys(splits, 1))
        self.schema = schema
        self.writers = {s: pa.ipc.new_stream(str(out / s / "data-00000-of-00001.arrow"), schema) for s in splits}
        self.counts = dict.fromkeys(splits, 0)

    def write(self, batch: Any) -> None:
        import pyarrow.compute as pc

        if not batch.num_rows:
            return
        for s, writer in self.writers.items():
            part = batch.filter(pc.equal(batch.column("split"), s))
            if part.num_rows:
                writer.write_batch(part)
                self.counts[s] += part.num_rows

    def close(self) -> dict[str, int]:
        for writer in self.writers.values():
            writer.close()
        return self.counts
