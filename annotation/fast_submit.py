"""The annotation loop's two hot requests, served beside Django on PostgreSQL:
`POST /api/v1/assignments/<id>/submit/` and `POST /api/v1/projects/<id>/next/`, with a token.

A submit stores the ranking and leases the next item with one transaction on an asyncio psycopg
pool, without Django's request pipeline: that pipeline alone (ASGI handler, thread hop per
request, middleware, DRF) cost about 3-4 ms of CPU per request here, more than the target of 300
submissions a second on two cores allows (benchmarks/load_annotators.py). `next` hands back the
lease the user holds in the project or makes one (200), or says nothing is left (204).

They answer only the common case, and hand everything else to Django unchanged, with the body
read replayed: no `Authorization: Token` header, a host Django would refuse, an insecure request
where HTTPS is required, a body Django's own serializer rejects, an unknown or foreign token,
assignment or project, a project that is not active, a user without a rater yet, a retry or an
edit (an earlier ranking exists), another live lease (a second tab), a lapsed lease of the same
rater on the next item. Each of those is decided before anything is written or rolls back what
was, so Django's answer (400, 401, 404, 409, a retry's 200) is the one the client gets, and the two
paths cannot disagree about what is stored. The statements are annotation.loop_sql's, the checks
SubmitSerializer's and services', the answers RankingSerializer's and assignment_payload's.

With SQLite every request goes to Django; ANNOTATION_FAST_SUBMIT=0 turns the fast path off.
"""
from __future__ import annotations

import asyncio
import json
import logging
import random
import re
import uuid
import weakref
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.http.request import split_domain_port, validate_host
from django.utils import timezone

logger = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_UUID = r"(?P<id>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
SUBMIT_PATH = re.compile(rf"^/api/v1/assignments/{_UUID}/submit/$")
NEXT_PATH = re.compile(rf"^/api/v1/projects/{_UUID}/next/$")
MAX_BODY = 256 * 1024
# libpq takes these from OPTIONS; the rest of OPTIONS is Django's own.
_NOT_LIBPQ = {"pool", "server_side_binding", "prepare_threshold", "isolation_level", "assume_role", "cursor_factory"}


class Defer(Exception):
    """Not the fast path's request to answer: Django answers it."""


def _race_errors() -> tuple[type[BaseException], ...]:
    """Errors a racing twin request causes: a unique constraint, or a deadlock/serialisation abort."""
    try:
        from psycopg import errors
    except ImportError:  # no PostgreSQL driver: the fast path never serves
        return ()
    return (errors.UniqueViolation, errors.DeadlockDetected, errors.SerializationFailure)


_RACED = _race_errors()


class FastSubmit:
    """ASGI wrapper: serves the common submit and next itself, passes every other request to `app`."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if _enabled(scope) else ""
        submit, lease = SUBMIT_PATH.match(path), NEXT_PATH.match(path)
        token = _token(scope) if submit or lease else None
        if token is None or not _acceptable(scope, json_body=bool(submit)):
            return await self.app(scope, receive, send)
        messages, body = await _read_body(receive)
        try:
            if submit:
                status, answer, project = 201, *await self._submit(token, uuid.UUID(submit["id"]), body)
            else:
                status, answer = await self._next(token, uuid.UUID(lease["id"]))
                project = None
        except Defer:
            return await self.app(scope, _replay(messages, receive), send)
        except _RACED as error:
            # A twin of this request (the same submission, or the same rater's other tab) committed
            # between our read and our insert: the unique constraints refused the second copy and
            # nothing was written. Django answers it as the retry it is (200 with the stored one).
            logger.debug("fast path lost a race (%s); handing the request to Django", type(error).__name__)
            return await self.app(scope, _replay(messages, receive), send)
        except Exception:
            # Nothing was committed (the transaction rolled back): Django tries again, and answers.
            logger.exception("fast path failed; handing the request to Django")
            return await self.app(scope, _replay(messages, receive), send)
        await send({"type": "http.response.start", "status": status, "headers": _headers(scope, answer)})
        await send({"type": "http.response.body", "body": answer})
        if project is not None:
            _announce(project)

    async def close(self) -> None:
        for pool in list(self._pools.values()):
            await pool.close()
        self._pools.clear()

    async def _pool(self) -> Any:
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            from psycopg_pool import AsyncConnectionPool

            pool = AsyncConnectionPool(
                _conninfo(), min_size=1, max_size=max(settings.DATABASES["default"].get("OPTIONS", {})
                                                      .get("pool", {}).get("max_size", 8), 2),
                kwargs={"autocommit": False, "prepare_threshold": 5}, open=False, name="fast-submit",
                timeout=10,  # then the request goes to Django, which reports the database's trouble
            )
            self._pools[loop] = pool
            await pool.open()
        return pool

    async def _submit(self, token: str, assignment_id: uuid.UUID, body: bytes) -> tuple[bytes, Any]:
        from annotation import loop_sql as sql
        from annotation.models import Project
        from annotation.serializers import SubmitSerializer

        try:
            serializer = SubmitSerializer(data=json.loads(body))
        except (ValueError, RecursionError):  # Django's parser answers it with 400
            raise Defer from None
        if not serializer.is_valid():
            raise Defer
        data = serializer.validated_data
        pool = await self._pool()
        submission_id = data["submission_id"] or uuid.uuid4()
        now = timezone.now()
        async with pool.connection() as conn:  # commits on leaving, rolls back on an exception
            rows = await _fetch(conn, sql.token_assignment(token, assignment_id, submission_id, now))
            if not rows:
                raise Defer
            found, project = _Found(*rows[0][:_FOUND]), _project(rows[0][_FOUND:])
            if project.status != Project.Status.ACTIVE or found.ranked_before or found.other_lease:
                raise Defer  # a retry, an edit, a reused id, or a lease held in another tab
            if found.rater_kind != "human":
                raise Defer  # store_first_ranking counts against the human target (services decides otherwise)
            stored = await _store(conn, found, assignment_id, project, data, submission_id, now)
            lease = await _lease(conn, found.rater_id, project, now)
            answer = _render({"ranking": stored, "next": lease})
        return answer, project

    async def _next(self, token: str, project_id: uuid.UUID) -> tuple[int, bytes]:
        """The lease the user holds in the project, or a new one: 200 with it, or 204 when all is done."""
        from annotation import loop_sql as sql
        from annotation.api import assignment_payload
        from annotation.models import Assignment, Item, Project

        now = timezone.now()
        pool = await self._pool()
        async with pool.connection() as conn:
            rows = await _fetch(conn, sql.token_project(token, project_id, now))
            if not rows:
                raise Defer  # not a member, an unknown token, no rater yet: Django's answers
            rater_id, held_id, held_public_id, held_item_id, held_order, held_expires = rows[0][:6]
            project = _project(rows[0][6:])
            if project.status != Project.Status.ACTIVE:
                raise Defer
            if held_id is None:
                payload = await _lease(conn, rater_id, project, now)
            else:
                shown = await _fetch(conn, sql.item_with_responses(held_item_id))
                external_id, prompt, context = shown[0][:3]
                item = Item(id=held_item_id, project=project, external_id=external_id, prompt=prompt, context=context)
                held = Assignment(id=held_id, public_id=held_public_id, item=item, rater_id=rater_id,
                                  shown_order=held_order, status=Assignment.Status.LEASED, expires_at=held_expires)
                held.response_texts = {response_id: text for *_, response_id, text in shown}
                payload = assignment_payload(held, project)
        return (200, _render(payload)) if payload is not None else (204, b"")


class _Found(NamedTuple):
    """The leading columns of loop_sql.token_assignment (PROJECT_COLUMNS follow)."""

    rater_id: int
    rater_kind: str
    persona: Any
    model: str
    assignment_id: int
    item_id: int
    shown_order: list[str]
    external_id: str
    ranked_before: bool
    other_lease: bool


_FOUND = len(_Found._fields)


def _project(columns: Sequence[Any]) -> Any:
    """The Project of loop_sql.PROJECT_COLUMNS (unsaved; what the checks and answers read)."""
    from annotation.models import Project

    names = ("id", "public_id", "name", "status", "allow_ties", "allow_partial", "rationale", "overlap_target",
             "lease_seconds")
    return Project(**dict(zip(names, columns, strict=True)))


async def _store(conn: Any, found: _Found, assignment_public_id: uuid.UUID, project: Any, data: dict[str, Any],
                 submission_id: uuid.UUID, now: Any) -> dict[str, Any]:
    """Insert the rater's first ranking of the item and close the lease; its RankingSerializer form."""
    from annotation import loop_sql as sql
    from annotation.models import Assignment, Item, Ranking, Rater
    from annotation.serializers import RankingSerializer
    from annotation.services import check_ranking, effective_rationale
    from annotation.weak_orders import RankingError

    rationale = effective_rationale(project, data["rationale"])
    try:
        order, partial, shown, flags = check_ranking(project, found.shown_order, data["ranking"], found.shown_order,
                                                 data["flags"], rationale)
    except RankingError:
        raise Defer from None
    (ranking_id,), = await _fetch(conn, sql.store_first_ranking(
        item_id=found.item_id, rater_id=found.rater_id, assignment_id=found.assignment_id, order=json.dumps(order),
        shown_order=json.dumps(shown), is_partial=partial, rationale=rationale, flags=json.dumps(flags),
        seconds=data["seconds"], submission_id=submission_id, now=now))
    item = Item(id=found.item_id, project=project, external_id=found.external_id)
    rater = Rater(id=found.rater_id, kind=found.rater_kind, persona=found.persona, model=found.model)
    lease = Assignment(id=found.assignment_id, public_id=assignment_public_id)
    ranking = Ranking(
        id=ranking_id, item=item, rater=rater, assignment=lease, order=order, shown_order=shown, is_partial=partial,
        rationale=rationale, flags=flags, seconds=data["seconds"], submission_id=submission_id, version=1,
        is_current=True, created_at=now,
    )
    return RankingSerializer(ranking).data


async def _lease(conn: Any, rater_id: int, project: Any, now: Any) -> dict[str, Any] | None:
    """Lease the next item as services.next_assignment does; its assignment_payload form, or None.
    (The caller has checked that the rater holds no other live lease in the project.)"""
    from annotation import loop_sql as sql
    from annotation.api import assignment_payload
    from annotation.models import Assignment, Item
    from annotation.services import MAX_CANDIDATE_TRIES

    passed: list[int] = []
    for _ in range(MAX_CANDIDATE_TRIES):
        for candidate in sql.CANDIDATES:
            rows = await _fetch(conn, candidate(project.pk, project.overlap_target, rater_id, now, passed))
            if rows:
                break
        if not rows:
            return None
        item_id, external_id, prompt, context, ranking_count = rows[0]
        responses = await _fetch(conn, sql.lease_state_and_responses(item_id, rater_id, now))
        live, lapsed = responses[0][2:4]
        if ranking_count + live >= project.overlap_target:
            passed.append(item_id)
            continue
        if lapsed or candidate is not sql.next_candidate:  # as services._lease: make the count exact
            await _execute(conn, sql.close_lapsed_leases(item_id, now))
            await _execute(conn, sql.recount_leases(item_id))
        texts = {response_id: text for response_id, text, *_ in responses}
        ids = list(texts)
        random.SystemRandom().shuffle(ids)
        public_id, expires_at = uuid.uuid4(), now + timedelta(seconds=project.lease_seconds)
        await _fetch(conn, sql.insert_lease(public_id, item_id, rater_id, json.dumps(ids), now, expires_at))
        await _execute(conn, sql.count_lease(item_id))
        item = Item(id=item_id, project=project, external_id=external_id, prompt=prompt, context=context,
                    ranking_count=ranking_count)
        assignment = Assignment(public_id=public_id, item=item, rater_id=rater_id, shown_order=ids,
                                status=Assignment.Status.LEASED, leased_at=now, expires_at=expires_at)
        assignment.response_texts = texts
        return assignment_payload(assignment, project)
    return None


async def _fetch(conn: Any, statement: tuple[str, list[Any]]) -> list[tuple[Any, ...]]:
    cursor = await conn.execute(*statement)
    return await cursor.fetchall()


async def _execute(conn: Any, statement: tuple[str, list[Any]]) -> None:
    await conn.execute(*statement)


def _render(body: dict[str, Any]) -> bytes:
    from rest_framework.renderers import JSONRenderer

    return JSONRenderer().render(body)


def _announce(project: Any) -> None:
    """The live project page's update. Coalesced, so most calls only take a lock; a send that is
    due runs in a thread of its own (it may write to the database)."""
    from annotation import live

    live.project_progress_changed(project, in_thread=True)


# ---------------------------------------------------------------- HTTP plumbing


def _enabled(scope: Scope) -> bool:
    return (
        scope.get("type") == "http"
        and scope.get("method") == "POST"
        and getattr(settings, "ANNOTATION_FAST_SUBMIT", True)
        and settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"
    )


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return value.decode("latin-1")
    return None


def _token(scope: Scope) -> str | None:
    parts = (_header(scope, b"authorization") or "").split()
    if len(parts) == 2 and parts[0].lower() == "token" and len(parts[1]) <= 40:
        return parts[1]
    return None


def _is_secure(scope: Scope) -> bool:
    if scope.get("scheme") in ("https", "wss"):
        return True
    proxy = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if proxy:
        name, wanted = proxy
        header = name.removeprefix("HTTP_").lower().replace("_", "-").encode()
        value = _header(scope, header)
        return value is not None and value.split(",")[0].strip() == wanted
    return False


def _acceptable(scope: Scope, *, json_body: bool) -> bool:
    """What Django's own checks would let through: a JSON body of sane size (submit) or none to
    speak of (next), an allowed host, HTTPS where it is required. Anything else is Django's to
    answer (with its own error)."""
    content_type = (_header(scope, b"content-type") or "").split(";")[0].strip().lower()
    length = _header(scope, b"content-length")
    if json_body and (content_type != "application/json" or length is None or not length.isdigit()
                      or int(length) > MAX_BODY):
        return False
    if not json_body and length not in (None, "0", "2") and _header(scope, b"transfer-encoding") is None:
        return False  # `next` takes no body ("{}" at most); a larger one is Django's to judge
    if settings.SECURE_SSL_REDIRECT and not _is_secure(scope):
        return False
    host = _header(scope, b"host") or ""
    domain, _ = split_domain_port(host)
    allowed = settings.ALLOWED_HOSTS or (["localhost", "127.0.0.1", "[::1]"] if settings.DEBUG else [])
    return bool(domain) and validate_host(domain, allowed)


async def _read_body(receive: Receive) -> tuple[list[dict[str, Any]], bytes]:
    messages, chunks = [], []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return messages, b"".join(chunks)


def _replay(messages: list[dict[str, Any]], receive: Receive) -> Receive:
    pending = list(messages)

    async def replayed() -> dict[str, Any]:
        return pending.pop(0) if pending else await receive()

    return replayed


def _headers(scope: Scope, body: bytes) -> list[tuple[bytes, bytes]]:
    """Those Django's middleware and DRF put on the same answer."""
    headers = [
        *([(b"content-type", b"application/json")] if body else []),
        (b"content-length", str(len(body)).encode()),
        (b"vary", b"Accept"),
        (b"allow", b"POST, OPTIONS"),
        (b"x-frame-options", settings.X_FRAME_OPTIONS.encode()),
    ]
    if settings.SECURE_CONTENT_TYPE_NOSNIFF:
        headers.append((b"x-content-type-options", b"nosniff"))
    if settings.SECURE_REFERRER_POLICY:
        policy = settings.SECURE_REFERRER_POLICY
        headers.append((b"referrer-policy", (policy if isinstance(policy, str) else ",".join(policy)).encode()))
    if settings.SECURE_CROSS_ORIGIN_OPENER_POLICY:
        headers.append((b"cross-origin-opener-policy", settings.SECURE_CROSS_ORIGIN_OPENER_POLICY.encode()))
    if settings.SECURE_HSTS_SECONDS and _is_secure(scope):
        hsts = f"max-age={settings.SECURE_HSTS_SECONDS}"
        hsts += "; includeSubDomains" if settings.SECURE_HSTS_INCLUDE_SUBDOMAINS else ""
        hsts += "; preload" if settings.SECURE_HSTS_PRELOAD else ""
        headers.append((b"strict-transport-security", hsts.encode()))
    return headers


def _conninfo() -> str:
    from psycopg.conninfo import make_conninfo

    db = settings.DATABASES["default"]
    params = {"dbname": db["NAME"], "user": db.get("USER"), "password": db.get("PASSWORD"), "host": db.get("HOST"),
              "port": db.get("PORT")}
    params.update({k: v for k, v in db.get("OPTIONS", {}).items() if k not in _NOT_LIBPQ})
    return make_conninfo(**{k: v for k, v in params.items() if v not in (None, "")})
