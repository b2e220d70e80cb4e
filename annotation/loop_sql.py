"""The annotation loop's statements, as (sql, params) pairs.

One ranking is one submit plus one lease, so these few statements run hundreds of times a second.
They are written out once here and executed by two callers: `annotation.services` through
Django's connection (SQLite or PostgreSQL), and `annotation.fast_submit` through an asyncio
psycopg pool (PostgreSQL). Composing and compiling the equivalent ORM querysets cost more CPU than
the database spent running them (benchmarks/load_annotators.py).

The SQL is portable; row locks are added where the database has them (PostgreSQL), and SQLite
serialises writers itself. Placeholders are `%s` for both executors.
"""
from __future__ import annotations

import functools
import uuid
from datetime import datetime
from typing import Any

from django.db import connection

from annotation.models import Assignment, Item, Membership, Project, Ranking, Rater, Response

Statement = tuple[str, list[Any]]


# A process talks to one database, so names, clauses and adapters are looked up once: reaching
# Django's per-thread connection object on every statement was a visible share of the fast path.


@functools.cache
def table(model: type) -> str:
    return connection.ops.quote_name(model._meta.db_table)


@functools.cache
def _native() -> tuple[bool, bool]:
    """(datetimes, uuids) passed to the driver as they are (PostgreSQL), not as text (SQLite)."""
    return connection.vendor == "postgresql", connection.features.has_native_uuid_field


def db_time(moment: datetime) -> Any:
    return moment if _native()[0] else connection.ops.adapt_datetimefield_value(moment)


def db_uuid(value: uuid.UUID) -> Any:
    return value if _native()[1] else Ranking._meta.get_field("submission_id").get_db_prep_value(value, connection)


@functools.cache
def lock_clause(*, of: str = "", skip_locked: bool = False) -> str:
    """`FOR UPDATE [OF <alias>] [SKIP LOCKED]` where the database has row locks, else nothing."""
    features = connection.features
    if not features.has_select_for_update:
        return ""
    skip = skip_locked and features.has_select_for_update_skip_locked
    return " " + connection.ops.for_update_sql(skip_locked=skip, of=(of,) if of and features.has_select_for_update_of else ())


# ---------------------------------------------------------------- leasing


def held_leases(project_id: int, rater_id: int, now: datetime) -> Statement:
    """The rater's `leased` assignments in the project, live ones first: rows of (item_id, live)."""
    sql = (
        f"SELECT a.item_id, a.expires_at > %s AS live FROM {table(Assignment)} a JOIN {table(Item)} i ON i.id = a.item_id"
        " WHERE a.rater_id = %s AND a.status = %s AND i.project_id = %s ORDER BY live DESC, a.id"
    )
    return sql, [db_time(now), rater_id, Assignment.Status.LEASED, project_id]


def _candidate(project_id: int, rater_id: int, passed: list[int], where: str, where_params: list[Any],
               order: str) -> Statement:
    """The first item of the project, in `order`, that passes `where`, that this rater has neither
    ranked nor skipped and that no other request holds locked; locked. Columns: id, external_id,
    prompt, context, ranking_count."""
    assignment = table(Assignment)
    not_passed = f" AND i.id NOT IN ({', '.join(['%s'] * len(passed))})" if passed else ""
    sql = (
        f"SELECT i.id, i.external_id, i.prompt, i.context, i.ranking_count FROM {table(Item)} i"
        f" WHERE i.project_id = %s AND {where}"
        f" AND NOT EXISTS (SELECT 1 FROM {assignment} s WHERE s.item_id = i.id AND s.rater_id = %s AND s.status = %s)"
        f" AND NOT EXISTS (SELECT 1 FROM {table(Ranking)} r WHERE r.item_id = i.id AND r.rater_id = %s)"
        f"{not_passed} ORDER BY {order} LIMIT 1{lock_clause(of='i', skip_locked=True)}"
    )
    return sql, [project_id, *where_params, rater_id, Assignment.Status.SKIPPED, rater_id, *passed]


def next_candidate(project_id: int, target: int, rater_id: int, now: datetime, passed: list[int]) -> Statement:
    """The first item whose rankings plus leases are below target, fewest first. Walks the
    item_next_open index, (project, ranking_count + lease_count, id), from its start: items that
    are fully leased are outside the range, so the walk's length does not grow with the number of
    annotators holding leases. (Leases that ran out still count here: see lapsed_candidate.)"""
    return _candidate(project_id, rater_id, passed, "i.ranking_count + i.lease_count < %s", [target],
                      "i.ranking_count + i.lease_count, i.id")


def lapsed_candidate(project_id: int, target: int, rater_id: int, now: datetime, passed: list[int]) -> Statement:
    """When next_candidate finds nothing: an item below target that looks full only because some
    of its leases ran out (or its lease count drifted), counting its live leases row by row. Only
    near a project's end, when every item is ranked or leased, does this walk far."""
    where = ("i.ranking_count < %s AND i.ranking_count + i.lease_count >= %s"
             f" AND i.ranking_count + (SELECT COUNT(*) FROM {table(Assignment)} a"
             "   WHERE a.item_id = i.id AND a.status = %s AND a.expires_at > %s) < %s")
    return _candidate(project_id, rater_id, passed, where,
                      [target, target, Assignment.Status.LEASED, db_time(now), target], "i.ranking_count, i.id")


# Tried in this order: the counted walk, then the row-by-row one. The fast path's database function
# annotation_lease (migration 0005) runs the same walks and lease statements, written out in
# PL/pgSQL: a change here needs a migration that replaces it (tests/annotation/test_fast_submit.py
# pins both).
CANDIDATES = (next_candidate, lapsed_candidate)


def lease_state_and_responses(item_id: int, rater_id: int, now: datetime) -> Statement:
    """With the item row locked, authoritative: its live leases, its `leased` rows whose time ran
    out (closed before a new lease is made: close_lapsed_leases), and how many `leased` rows of
    this rater it has, beside each of its responses in order. Rows of (response_id, text, live,
    lapsed, own)."""
    sql = (
        f"SELECT x.response_id, x.text, s.live, s.lapsed, s.own FROM {table(Response)} x"
        " CROSS JOIN (SELECT COALESCE(SUM(CASE WHEN expires_at > %s THEN 1 ELSE 0 END), 0) AS live,"
        "   COALESCE(SUM(CASE WHEN expires_at > %s THEN 0 ELSE 1 END), 0) AS lapsed,"
        "   COALESCE(SUM(CASE WHEN rater_id = %s THEN 1 ELSE 0 END), 0) AS own"
        f"   FROM {table(Assignment)} WHERE item_id = %s AND status = %s) s"
        " WHERE x.item_id = %s ORDER BY x.position, x.id"
    )
    return sql, [db_time(now), db_time(now), rater_id, item_id, Assignment.Status.LEASED, item_id]


def close_lapsed_leases(item_id: int, now: datetime) -> Statement:
    """With the item locked: its leases whose time ran out are closed (recount_leases follows)."""
    sql = (f"UPDATE {table(Assignment)} SET status = %s, finished_at = %s"
           " WHERE item_id = %s AND status = %s AND expires_at <= %s")
    return sql, [Assignment.Status.EXPIRED, db_time(now), item_id, Assignment.Status.LEASED, db_time(now)]


def recount_leases(item_id: int) -> Statement:
    """With the item locked: its lease count set from its `leased` rows."""
    sql = (f"UPDATE {table(Item)} SET lease_count = (SELECT COUNT(*) FROM {table(Assignment)} a"
           " WHERE a.item_id = %s AND a.status = %s) WHERE id = %s")
    return sql, [item_id, Assignment.Status.LEASED, item_id]


def count_lease(item_id: int) -> Statement:
    """A new lease on the item (insert_lease) counts against its target."""
    return f"UPDATE {table(Item)} SET lease_count = lease_count + 1 WHERE id = %s", [item_id]


def release_lease(assignment_id: int) -> Statement:
    """Run before an assignment leaves `leased` (submitted, skipped, expired): its item counts one
    lease fewer. An assignment that is no longer `leased` (a late submit) changes nothing."""
    sql = (f"UPDATE {table(Item)} SET lease_count = lease_count - 1"
           f" WHERE id IN (SELECT item_id FROM {table(Assignment)} WHERE id = %s AND status = %s)")
    return sql, [assignment_id, Assignment.Status.LEASED]


def insert_lease(public_id: uuid.UUID, item_id: int, rater_id: int, shown_order: str, now: datetime,
                 expires_at: datetime) -> Statement:
    """`shown_order` is JSON text. Returns the new row's id."""
    sql = (
        f"INSERT INTO {table(Assignment)} (public_id, item_id, rater_id, status, shown_order, leased_at, expires_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id"
    )
    return sql, [db_uuid(public_id), item_id, rater_id, Assignment.Status.LEASED, shown_order, db_time(now),
                 db_time(expires_at)]


# ---------------------------------------------------------------- submitting


def lock_item(item_id: int) -> Statement:
    """The item's row lock: every change to its leases and rankings happens under it."""
    return f"SELECT id FROM {table(Item)} WHERE id = %s{lock_clause()}", [item_id]


def earlier_rankings(item_id: int, rater_id: int, submission_id: uuid.UUID | None) -> Statement:
    """The rater's current ranking of the item, and any ranking stored under `submission_id`.
    Columns: id, item_id, rater_id, is_current, version, submission_id."""
    sql = (f"SELECT id, item_id, rater_id, is_current, version, submission_id FROM {table(Ranking)}"
           " WHERE (item_id = %s AND rater_id = %s AND is_current = %s)")
    params: list[Any] = [item_id, rater_id, True]
    if submission_id is not None:
        sql += " OR submission_id = %s"
        params.append(db_uuid(submission_id))
    return sql, params


def count_ranking(item_id: int, *, human: bool) -> Statement:
    """A rater's first ranking of the item: humans count against the overlap target, synthetic
    raters against the synthetic target."""
    column = "ranking_count" if human else "synthetic_count"
    return f"UPDATE {table(Item)} SET {column} = {column} + 1 WHERE id = %s", [item_id]


def retire_ranking(ranking_id: int) -> Statement:
    return f"UPDATE {table(Ranking)} SET is_current = %s WHERE id = %s", [False, ranking_id]


def mark_submitted(assignment_id: int, now: datetime) -> Statement:
    sql = f"UPDATE {table(Assignment)} SET status = %s, finished_at = %s WHERE id = %s"
    return sql, [Assignment.Status.SUBMITTED, db_time(now), assignment_id]


# ---------------------------------------------------------------- the fast submit (PostgreSQL)


# The project's columns, last in both token statements: `fast_submit` builds the Project from them.
PROJECT_COLUMNS = ("p.id, p.public_id, p.name, p.status, p.allow_ties, p.allow_partial, p.rationale,"
                   " p.overlap_target, p.lease_seconds")


def _active_token_rater() -> str:
    """FROM an active user's token and their rater (aliases t, u, r)."""
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token

    return (f" FROM {table(Token)} t JOIN {table(get_user_model())} u ON u.id = t.user_id AND u.is_active"
            f" JOIN {table(Rater)} r ON r.user_id = u.id")


def token_assignment(token: str, assignment_public_id: uuid.UUID, submission_id: uuid.UUID, now: datetime) -> Statement:
    """An active user's token, their rater and one of their assignments in a project they are a
    member of (the API's scoping). No row: the request is not ours to serve. Nothing is locked:
    submit_and_lease locks the item and reads ranked_before and other_lease again before it writes.
    Columns: rater id, kind, persona, model; the assignment's id, item_id, shown_order; the
    item's external_id; ranked_before, other_lease; then PROJECT_COLUMNS.

    ranked_before: the rater has a ranking of the item already, or one under `submission_id` (a
    retry or an edit); other_lease: they hold another live lease in the project.
    """
    sql = (
        "SELECT r.id, r.kind, r.persona, r.model, a.id, a.item_id, a.shown_order, i.external_id,"
        f" EXISTS (SELECT 1 FROM {table(Ranking)} k WHERE (k.item_id = a.item_id AND k.rater_id = r.id"
        "   AND k.is_current = %s) OR k.submission_id = %s),"
        f" EXISTS (SELECT 1 FROM {table(Assignment)} o JOIN {table(Item)} oi ON oi.id = o.item_id"
        "   WHERE o.rater_id = r.id AND o.status = %s AND o.expires_at > %s AND oi.project_id = p.id AND o.id <> a.id),"
        f" {PROJECT_COLUMNS}{_active_token_rater()}"
        f" JOIN {table(Assignment)} a ON a.rater_id = r.id"
        f" JOIN {table(Item)} i ON i.id = a.item_id"
        f" JOIN {table(Project)} p ON p.id = i.project_id"
        f" JOIN {table(Membership)} m ON m.project_id = p.id AND m.user_id = u.id"
        " WHERE t.key = %s AND a.public_id = %s"
    )
    return sql, [True, db_uuid(submission_id), Assignment.Status.LEASED, db_time(now), token,
                 db_uuid(assignment_public_id)]


def submit_and_lease(*, item_id: int, rater_id: int, assignment_id: int, order: str,
                     shown_order: str, is_partial: bool, rationale: str, flags: str,
                     seconds: float | None, submission_id: uuid.UUID, now: datetime,
                     project_id: int, target: int, lease_id: uuid.UUID,
                     expires_at: datetime) -> Statement:
    """PostgreSQL, one statement (the function annotation_submit, migration 0005): with the item
    locked, and unless the rater has a ranking of it or one under `submission_id` by now, or holds
    another live lease in the project, insert their first ranking of the item, count it on the
    item (against the human target: only human raters hold leases) and close the lease; then lease
    the next item as lease_next does. JSON columns as JSON text. No row: nothing was written (a
    twin or a second tab got there first). Otherwise one row of (ranking id, then lease_next's
    columns, all null when nothing is left to lease)."""
    sql = ("SELECT * FROM annotation_submit(%s::bigint, %s::bigint, %s::bigint, %s::jsonb,"
           " %s::jsonb, %s::boolean, %s::text, %s::jsonb, %s::float8, %s::uuid, %s::timestamptz,"
           " %s::bigint, %s::integer, %s::uuid, %s::timestamptz)")
    return sql, [item_id, rater_id, assignment_id, order, shown_order, is_partial, rationale, flags,
                 seconds, submission_id, now, project_id, target, lease_id, expires_at]


def lease_next(*, project_id: int, target: int, rater_id: int, now: datetime, lease_id: uuid.UUID,
               expires_at: datetime) -> Statement:
    """PostgreSQL, one statement (the function annotation_lease, migration 0005): lease the
    rater's next item as services.next_assignment does once the rater is known to hold no live
    lease (the CANDIDATES walks, the overlap check on the locked item, its lapsed leases closed),
    with the responses in a random order. One row of (prompt, context, shown response ids, their
    texts), or none when nothing is left."""
    sql = ("SELECT * FROM annotation_lease(%s::bigint, %s::integer, %s::bigint, %s::timestamptz,"
           " %s::uuid, %s::timestamptz)")
    return sql, [project_id, target, rater_id, now, lease_id, expires_at]


def token_project(token: str, project_public_id: uuid.UUID, now: datetime) -> Statement:
    """An active user's token, their rater and a project they are a member of, with the live lease
    they hold in it (services.current_lease: the first by id) or nulls. No row: not ours to serve
    (also when they hold a lease that ran out: services.next_assignment closes it first).
    Columns: rater id; the lease's public_id, shown_order, expires_at, its item's prompt and
    context, the item's response ids and their texts in order; PROJECT_COLUMNS.
    """
    responses = f"FROM {table(Response)} x WHERE x.item_id = i.id ORDER BY x.position, x.id"
    sql = (
        "SELECT r.id, h.public_id, h.shown_order, h.expires_at, h.prompt, h.context, h.ids,"
        " h.texts,"
        f" {PROJECT_COLUMNS}{_active_token_rater()}"
        f" JOIN {table(Project)} p ON p.public_id = %s"
        f" JOIN {table(Membership)} m ON m.project_id = p.id AND m.user_id = u.id"
        " LEFT JOIN LATERAL (SELECT a.public_id, a.shown_order, a.expires_at, i.prompt, i.context,"
        f"   ARRAY(SELECT x.response_id {responses}) AS ids,"
        f"   ARRAY(SELECT x.text {responses}) AS texts"
        f"   FROM {table(Assignment)} a JOIN {table(Item)} i ON i.id = a.item_id"
        "   WHERE a.rater_id = r.id AND a.status = %s AND a.expires_at > %s AND i.project_id = p.id"
        "   ORDER BY a.id LIMIT 1) h ON TRUE"
        f" WHERE t.key = %s AND NOT EXISTS (SELECT 1 FROM {table(Assignment)} x JOIN {table(Item)} xi ON xi.id = x.item_id"
        "   WHERE x.rater_id = r.id AND x.status = %s AND x.expires_at <= %s AND xi.project_id = p.id)"
    )
    return sql, [db_uuid(project_public_id), Assignment.Status.LEASED, db_time(now), token, Assignment.Status.LEASED,
                 db_time(now)]
