"""Database rows -> `socialchoice` batch arrays, with no Python list per ballot.

The database expands every stored weak order into (ranking, tie group, response) rows with its own
JSON functions (`jsonb_array_elements` on PostgreSQL, `json_each` on SQLite) and joins the response
table, so Python receives plain integer columns and numpy scatters them into the tie-group index
matrix that `BatchProfile.from_rank_arrays` takes. Rows are streamed in chunks with `fetchmany` (on PostgreSQL
the ranking heads come as one row of arrays, parsed by psycopg in C).

Public interface (used by the services, snapshots and the review pages; keep it stable):

* `load_items(project, item_range=None) -> Items`: the project's items and their responses;
* `load_ballots(project, items=..., raters=..., drop_cannot_judge=...) -> Ballots`: the current
  rankings of those items as arrays, optionally only the given raters with their weights;
* `Ballots.batch()` / `Ballots.profile(i)`: the `socialchoice` profiles;
* `Ballots.take(mask)`: a subset of the rankings (same items);
* `source_digest(project)`: sha256 of the project's current rankings (ids, items, raters).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
from django.db import connection

from annotation.models import Item, Project, Ranking, Rater, Response
from socialchoice import BatchProfile, Profile

from .models import RankingCode

FETCH_ROWS = 50_000
MAX_K = 16
# Above this many uncached rankings, expanding the whole item range is cheaper than listing ids.
LISTED_IDS = 5000
CANNOT_JUDGE = Ranking.Flag.CANNOT_JUDGE.value


@dataclass(frozen=True)
class Items:
    """Items in primary-key order: ``pks int64 [n]``, their external ids, response ids per item
    (the alternatives, in response position order) and ``response_pks int64 [n, K_max]`` (-1 pad)."""

    pks: np.ndarray
    external_ids: tuple[str, ...]
    alternatives: tuple[tuple[str, ...], ...]
    response_pks: np.ndarray

    def __len__(self) -> int:
        return len(self.pks)

    @property
    def k(self) -> np.ndarray:
        return (self.response_pks >= 0).sum(axis=1).astype(np.int64)

    @property
    def k_max(self) -> int:
        return int(self.response_pks.shape[1])

    def take(self, index: np.ndarray) -> Items:
        """The items at positions ``index`` (response columns kept as they are)."""
        idx = np.asarray(index, dtype=np.int64)
        return Items(self.pks[idx], tuple(self.external_ids[i] for i in idx.tolist()),
                     tuple(self.alternatives[i] for i in idx.tolist()), self.response_pks[idx])


@dataclass(frozen=True)
class RaterWeights:
    """Raters that count and their weights: ``rater_ids int64 [n]`` sorted, ``weights float64 [n]``."""

    rater_ids: np.ndarray
    weights: np.ndarray

    def lookup(self, rater_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(whether each rater is in the pool, its weight or 0)."""
        if len(self.rater_ids) == 0:
            return np.zeros(len(rater_ids), bool), np.zeros(len(rater_ids))
        pos = np.clip(np.searchsorted(self.rater_ids, rater_ids), 0, len(self.rater_ids) - 1)
        found = self.rater_ids[pos] == rater_ids
        return found, np.where(found, self.weights[pos], 0.0)


@dataclass(frozen=True)
class Ballots:
    """Current rankings of some items, one row per ranking (rows in ranking-id order).

    ``group_indices int16 [R, K_max]``: tie group of each response column (0 = best, -1 =
    unranked or padding); ``item_index int64 [R]``: row in ``items``; ``human bool [R]``: the
    rater is a person; ``cannot_judge bool [R]``: flagged "cannot judge".
    """

    items: Items
    ranking_ids: np.ndarray
    item_index: np.ndarray
    rater_ids: np.ndarray
    group_indices: np.ndarray
    weights: np.ndarray
    human: np.ndarray
    cannot_judge: np.ndarray

    def __len__(self) -> int:
        return len(self.ranking_ids)

    def take(self, mask: np.ndarray) -> Ballots:
        """The rankings where ``mask`` holds (a boolean mask or row indices); items unchanged."""
        return replace(
            self, ranking_ids=self.ranking_ids[mask], item_index=self.item_index[mask],
            rater_ids=self.rater_ids[mask], group_indices=self.group_indices[mask],
            weights=self.weights[mask], human=self.human[mask], cannot_judge=self.cannot_judge[mask],
        )

    def with_weights(self, weights: np.ndarray) -> Ballots:
        return replace(self, weights=np.asarray(weights, dtype=np.float64))

    def ranked_items(self) -> Ballots:
        """Only the items with at least one ranking of positive weight (re-indexed)."""
        keep = np.unique(self.item_index[self.weights > 0])
        rows = self.weights > 0
        new_index = np.full(len(self.items), -1, dtype=np.int64)
        new_index[keep] = np.arange(len(keep))
        sub = self.take(rows)
        return replace(sub, items=self.items.take(keep), item_index=new_index[sub.item_index])

    def batch(self, partial: str = "bottom", voter_groups: np.ndarray | None = None) -> BatchProfile:
        """Every item's profile as one `BatchProfile` (items without rankings get no voter)."""
        return BatchProfile.from_rank_arrays(
            self.group_indices, self.item_index, self.items.k, self.weights,
            self.items.alternatives, partial, voter_groups,  # type: ignore[arg-type]
        )

    def profile(self, item: int, partial: str = "bottom") -> Profile:
        """Item ``item``'s profile (its rankings in ranking-id order)."""
        rows = self.item_index == item
        k = int(self.items.k[item])
        return Profile.from_group_indices(
            self.items.alternatives[item], self.group_indices[rows, :k], self.weights[rows], partial  # type: ignore[arg-type]
        )


def _range_sql(item_range: tuple[int, int] | None, column: str) -> tuple[str, list[int]]:
    if item_range is None:
        return "", []
    return f" AND {column} BETWEEN %s AND %s", [int(item_range[0]), int(item_range[1])]


def _fetch_array(sql: str, params: list[object], columns: int, dtype: type = np.int64) -> np.ndarray:
    """Rows as an array, sorted by the first column."""
    chunks = []
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(FETCH_ROWS):
            chunks.append(np.array(rows, dtype=dtype).reshape(len(rows), columns))
    out = np.concatenate(chunks) if chunks else np.zeros((0, columns), dtype=dtype)
    return out[np.argsort(out[:, 0], kind="stable")]


def load_items(project: Project, item_range: tuple[int, int] | None = None) -> Items:
    """The project's items (pk order), optionally only primary keys in ``item_range`` (inclusive)."""
    items = Item.objects.filter(project=project).order_by("pk")
    responses = Response.objects.filter(item__project=project).order_by("item_id", "position", "pk")
    if item_range is not None:
        items = items.filter(pk__range=item_range)
        responses = responses.filter(item__pk__range=item_range)
    pks, external = [], []
    for pk, ext in items.values_list("pk", "external_id").iterator(chunk_size=FETCH_ROWS):
        pks.append(pk)
        external.append(ext)
    pk_arr = np.array(pks, dtype=np.int64)
    alts: list[list[str]] = [[] for _ in pks]
    rpks: list[list[int]] = [[] for _ in pks]
    index = {pk: i for i, pk in enumerate(pks)}
    for rpk, item_id, rid in responses.values_list("pk", "item_id", "response_id").iterator(chunk_size=FETCH_ROWS):
        i = index[item_id]
        alts[i].append(rid)
        rpks[i].append(rpk)
    k_max = max((len(a) for a in alts), default=1)
    matrix = np.full((len(pks), k_max), -1, dtype=np.int64)
    for i, row in enumerate(rpks):
        matrix[i, : len(row)] = row
    return Items(pk_arr, tuple(external), tuple(tuple(a) for a in alts), matrix)


def _ranking_sql(project: Project, item_range: tuple[int, int] | None, codes: bool = False) -> tuple[str, list[object]]:
    r, i, rt = Ranking._meta.db_table, Item._meta.db_table, Rater._meta.db_table
    if connection.vendor == "postgresql":
        flag = "(r.flags @> %s::jsonb)"
        flag_params: list[object] = [f'["{CANNOT_JUDGE}"]']
    else:
        flag = "EXISTS (SELECT 1 FROM json_each(r.flags) f WHERE f.value = %s)"
        flag_params = [CANNOT_JUDGE]
    where, params = _range_sql(item_range, "r.item_id")
    code, join = "", ""
    if codes:
        code, join = ", c.code", f" LEFT JOIN {RankingCode._meta.db_table} c ON c.ranking_id = r.id"
    sql = (
        f"SELECT r.id, r.item_id, r.rater_id, CASE WHEN rt.kind = %s THEN 1 ELSE 0 END, "
        f"CASE WHEN {flag} THEN 1 ELSE 0 END{code} "
        f"FROM {r} r JOIN {i} i ON i.id = r.item_id JOIN {rt} rt ON rt.id = r.rater_id{join} "
        f"WHERE i.project_id = %s AND r.is_current{where}"
    )
    # No ORDER BY: numpy sorts the ids faster than the server, whose sort may spill to disk.
    return sql, [Rater.Kind.HUMAN.value, *flag_params, project.pk, *params]


def _element_sql(project: Project, item_range: tuple[int, int] | None,
                 only: np.ndarray | None = None) -> tuple[str, list[object]]:
    r, i, s = Ranking._meta.db_table, Item._meta.db_table, Response._meta.db_table
    where, params = _range_sql(item_range, "r.item_id")
    if connection.vendor == "postgresql":
        expand = (
            'CROSS JOIN LATERAL jsonb_array_elements(r."order") WITH ORDINALITY AS g(grp, idx) '
            "CROSS JOIN LATERAL jsonb_array_elements_text(g.grp) AS e(rid) "
        )
        group, rid, among = "g.idx - 1", "e.rid", " AND r.id = ANY(%s)"
    else:
        expand = ', json_each(r."order") AS g, json_each(g.value) AS e '
        group, rid, among = "g.key", "e.value", " AND r.id IN (SELECT value FROM json_each(%s))"
    extra: list[object] = []
    if only is not None:
        where += among
        listed = [int(x) for x in only]
        extra = [listed if connection.vendor == "postgresql" else json.dumps(listed)]
    sql = (
        f"SELECT r.id, {group}, s.id FROM {r} r JOIN {i} i ON i.id = r.item_id {expand}"
        f"JOIN {s} s ON s.item_id = r.item_id AND s.response_id = {rid} "
        f"WHERE i.project_id = %s AND r.is_current{where}"
    )
    return sql, [project.pk, *params, *extra]


def load_ballots(
    project: Project,
    *,
    items: Items | None = None,
    item_range: tuple[int, int] | None = None,
    raters: RaterWeights | None = None,
    drop_cannot_judge: bool = False,
) -> Ballots:
    """Current rankings of the project's items (or of ``items``, whose pk range is then used).

    ``raters``: keep only these raters' rankings, weighted by their weight (default: everyone,
    weight 1). ``drop_cannot_judge``: leave out rankings flagged "cannot judge".
    """
    if items is None:
        items = load_items(project, item_range)
    elif len(items) and item_range is None:
        item_range = (int(items.pks[0]), int(items.pks[-1]))
    head, codes = _fetch_head(project, item_range)
    ids, item_pk, rater_ids = head[:, 0], head[:, 1], head[:, 2]
    human, cannot = head[:, 3].astype(bool), head[:, 4].astype(bool)
    keep = np.isin(item_pk, items.pks)
    if raters is None:
        weights = np.ones(len(ids))
    else:
        found, weights = raters.lookup(rater_ids)
        keep &= found
    if drop_cannot_judge:
        keep &= ~cannot
    ids, item_pk, rater_ids, weights, human, cannot, codes = (
        a[keep] for a in (ids, item_pk, rater_ids, weights, human, cannot, codes)
    )
    item_index = np.searchsorted(items.pks, item_pk)
    if items.k_max > MAX_K:  # beyond the annotation app's limit: no codes, read the JSON each time
        groups = _group_matrix(project, item_range, ids, items)
        return Ballots(items, ids, item_index, rater_ids, groups, weights, human, cannot)
    groups = _decode(codes, items.k_max)
    # No code yet, or one written before the item gained responses: encode from the JSON.
    stale = _code_lengths(codes) != items.k[item_index]
    if stale.any():
        groups[stale] = _encode_missing(project, item_range, ids[stale], item_index[stale], items)
    return Ballots(items, ids, item_index, rater_ids, groups, weights, human, cannot)


def _fetch_head(project: Project, item_range: tuple[int, int] | None) -> tuple[np.ndarray, np.ndarray]:
    """Ranking rows as ``int64 [R, 5]`` (id, item, rater, human, cannot judge) and their stored
    codes as a bytes array (b"" where none is stored yet)."""
    if connection.vendor == "postgresql":
        head, code = _fetch_head_arrays(project, item_range)
        order = np.argsort(head[:, 0], kind="stable")
        return head[order], code[order]
    heads, codes = [], []
    with connection.cursor() as cursor:
        cursor.execute(*_ranking_sql(project, item_range, codes=True))
        while rows := cursor.fetchmany(FETCH_ROWS):
            cols = list(zip(*rows, strict=True))
            heads.append(np.array(cols[:5], dtype=np.int64).T)
            codes.append(np.array([c or "" for c in cols[5]], dtype=f"S{MAX_K}"))
    if not heads:
        return np.zeros((0, 5), dtype=np.int64), np.zeros(0, dtype=f"S{MAX_K}")
    head, code = np.concatenate(heads), np.concatenate(codes)
    order = np.argsort(head[:, 0], kind="stable")
    return head[order], code[order]


def _fetch_head_arrays(project: Project, item_range: tuple[int, int] | None,
                      codes: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """PostgreSQL: the same rows as five integer arrays and one joined code string in a single row,
    which psycopg parses in C; row-by-row fetching cost more than the query itself (200,000
    rankings: 0.8 s of Python against 0.1 s). ``codes=False``: no codes (an empty array)."""
    sql, params = _ranking_sql(project, item_range, codes=codes)
    code = "string_agg(COALESCE(q.code, ''), ',')" if codes else "NULL"
    wrapped = (
        "SELECT array_agg(q.id), array_agg(q.item_id), array_agg(q.rater_id), array_agg(q.human), "
        f"array_agg(q.cannot), {code} "
        f"FROM ({sql}) AS q(id, item_id, rater_id, human, cannot{', code' if codes else ''})"
    )
    with connection.cursor() as cursor:
        cursor.execute(wrapped, params)
        ids, item_ids, rater_ids, human, cannot, joined = cursor.fetchone()
    if ids is None:
        return np.zeros((0, 5), dtype=np.int64), np.zeros(0, dtype=f"S{MAX_K}")
    head = np.empty((len(ids), 5), dtype=np.int64)
    for column, values in enumerate((ids, item_ids, rater_ids, human, cannot)):
        head[:, column] = values
    return head, np.array(joined.split(",") if codes else [], dtype=f"S{MAX_K}")


_DIGITS = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_LUT = np.full(256, -1, dtype=np.int16)
_LUT[_DIGITS] = np.arange(16, dtype=np.int16)


def _code_lengths(codes: np.ndarray) -> np.ndarray:
    return np.char.str_len(codes) if len(codes) else np.zeros(0, dtype=np.int64)


def _decode(codes: np.ndarray, k_max: int) -> np.ndarray:
    """Code strings -> tie-group indices ``int16 [R, k_max]`` (-1 = unranked or padding)."""
    raw = np.ascontiguousarray(codes, dtype=f"S{MAX_K}").view(np.uint8).reshape(len(codes), MAX_K)
    return _LUT[raw[:, :k_max]]


def _encode(groups: np.ndarray, k: np.ndarray) -> list[str]:
    chars = np.where(groups >= 0, _DIGITS[np.clip(groups, 0, 15)], ord("-"))
    chars = np.where(np.arange(groups.shape[1])[None, :] < k[:, None], chars, 0).astype(np.uint8)
    padded = np.zeros((len(groups), MAX_K), dtype=np.uint8)
    padded[:, : groups.shape[1]] = chars
    return [b.decode() for b in padded.view(f"S{MAX_K}").ravel().tolist()]


def _encode_missing(project: Project, item_range: tuple[int, int] | None, ids: np.ndarray,
                    item_index: np.ndarray, items: Items) -> np.ndarray:
    """Tie groups of the rankings ``ids`` from their JSON (expanded by the database), stored as
    codes so that later loads read them directly."""
    order = np.argsort(ids)
    sorted_ids = ids[order]
    only = sorted_ids if len(sorted_ids) <= LISTED_IDS else None
    groups = _group_matrix(project, item_range, sorted_ids, items, only)
    codes = _encode(groups, items.k[item_index[order]])
    RankingCode.objects.bulk_create(
        [RankingCode(ranking_id=r, code=c) for r, c in zip(sorted_ids.tolist(), codes, strict=True)],
        batch_size=5000, update_conflicts=True, unique_fields=["ranking"], update_fields=["code"],
    )
    return groups[np.argsort(order)]


def _group_matrix(project: Project, item_range: tuple[int, int] | None, ids: np.ndarray, items: Items,
                  only: np.ndarray | None = None) -> np.ndarray:
    """Tie-group indices of the rankings ``ids`` (sorted) from the database's JSON expansion."""
    groups = np.full((len(ids), items.k_max), -1, dtype=np.int16)
    if not len(ids):
        return groups
    flat_pks = items.response_pks.ravel()
    order = np.argsort(flat_pks)
    sorted_pks = flat_pks[order]
    sql, params = _element_sql(project, item_range, only)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(FETCH_ROWS):
            el = np.array(rows, dtype=np.int64)
            row = np.clip(np.searchsorted(ids, el[:, 0]), 0, len(ids) - 1)
            pos = np.clip(np.searchsorted(sorted_pks, el[:, 2]), 0, len(sorted_pks) - 1)
            ok = (ids[row] == el[:, 0]) & (sorted_pks[pos] == el[:, 2])
            col = order[pos] % items.k_max
            groups[row[ok], col[ok]] = el[ok, 1]
    return groups


def iter_item_ranges(project: Project, chunk_items: int) -> Iterator[tuple[int, int]]:
    """Consecutive inclusive item-pk ranges of about ``chunk_items`` items each (for streaming)."""
    pks = np.array(Item.objects.filter(project=project).order_by("pk").values_list("pk", flat=True), dtype=np.int64)
    for start in range(0, len(pks), chunk_items):
        chunk = pks[start : start + chunk_items]
        yield int(chunk[0]), int(chunk[-1])


def source_digest(project: Project) -> str:
    """sha256 over the project's current rankings (id, item, rater, kind, flag), in id order.

    A revision stores a new ranking row (a new id) and leaves the old row as it was, so the ids
    change whenever the rankings do.
    """
    if connection.vendor == "postgresql":
        rows = _fetch_head_arrays(project, None, codes=False)[0]
        rows = rows[np.argsort(rows[:, 0], kind="stable")]
    else:
        rows = _fetch_array(*_ranking_sql(project, None), columns=5)
    return hashlib.sha256(np.ascontiguousarray(rows).tobytes()).hexdigest()
