"""The annotation loop's two hot requests, served beside Django on PostgreSQL:
`POST /api/v1/assignments/<id>/submit/` and `POST /api/v1/projects/<id>/next/`, with a token.

A submit is two statements on an asyncio psycopg pool in autocommit, without Django's request
pipeline: that pipeline alone (ASGI handler, thread hop per request, middleware, DRF) cost about
3-4 ms of CPU per request here (benchmarks/load_annotators.py). The first reads who and what
(loop_sql.token_assignment); once the checks have passed, the second stores the ranking and
leases the next item in one call of a database function (loop_sql.submit_and_lease, migration
0005), which is one transaction. `next` hands back the lease the user holds in the project or makes
one (200), or says nothing is left (204), in two statements at most.

They answer only the common case, and hand everything else to Django unchanged, with the body
read replayed: no `Authorization: Token` header, a host Django would refuse, an insecure request
where HTTPS is required, a body Django's own serializer rejects or that this module is not sure it
reads as that serializer does, an unknown or foreign token, assignment or project, a project that
is not active, a user without a rater yet, a retry or an edit (an earlier ranking exists), another
live lease (a second tab), a lapsed lease of the same rater in the project (`next`). Each of those
is decided before anything is written (the function reads the ranking and the other lease again
with the item locked, and writes nothing if a twin got there first), so Django's answer (400, 401,
404, 409, a retry's 200) is the one the client gets, and the two paths cannot disagree about what
is stored. The statements are annotation.loop_sql's, the checks SubmitSerializer's (_submission)
and services', the answers RankingSerializer's and assignment_payload's, byte for byte
(tests/annotation/test_fast_submit.py compares them).

With SQLite every request goes to Django; ANNOTATION_FAST_SUBMIT=0 turns the fast path off.
"""
from __future__ import annotations

import asyncio
import functools
import json
import logging
import re
import uuid
import weakref
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
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


class _LostRace(Exception):
    """The fast path's statement found, with the item locked, that a twin of the request (or the
    rater's other tab) got there first; nothing was written."""


def _race_errors() -> tuple[type[BaseException], ...]:
    """Errors a racing twin request causes: a unique constraint, or a deadlock/serialisation abort."""
    try:
        from psycopg import errors
    except ImportError:  # no PostgreSQL driver: the fast path never serves
        return (_LostRace,)
    return (_LostRace, errors.UniqueViolation, errors.DeadlockDetected, errors.SerializationFailure)


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
            # first: nothing was written (the locked re-check or a unique constraint refused this
            # copy). Django answers it as the retry it is (200 with the stored one).
            logger.debug("fast path lost a race (%s); handing the request to Django", type(error).__name__)
            return await self.app(scope, _replay(messages, receive), send)
        except Exception:
            # Nothing was committed (each statement is its own transaction): Django tries again,
            # and answers.
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
                # Every request is one or two statements, each atomic on its own (the writes are
                # one function call): no BEGIN and COMMIT round trips.
                kwargs={"autocommit": True, "prepare_threshold": 5}, open=False, name="fast-submit",
                timeout=10,  # then the request goes to Django, which reports the database's trouble
            )
            self._pools[loop] = pool
            await pool.open()
        return pool

    async def _submit(self, token: str, assignment_id: uuid.UUID,
                      body: bytes) -> tuple[bytes, _Project]:
        """Two round trips: who and what (token_assignment), then, once the checks have passed, the
        ranking stored and the next item leased (submit_and_lease, one function call)."""
        from annotation import loop_sql as sql
        from annotation.services import check_ranking, effective_rationale
        from annotation.weak_orders import RankingError

        data = _submission(body)
        submission_id = data.submission_id or uuid.uuid4()
        now = timezone.now()
        pool = await self._pool()
        async with pool.connection() as conn:
            rows = await _fetch(conn, sql.token_assignment(token, assignment_id, submission_id, now))
            if not rows:
                raise Defer
            found, project = _Found(*rows[0][:_FOUND]), _Project(*rows[0][_FOUND:])
            if project.status != _ACTIVE or found.ranked_before or found.other_lease:
                raise Defer  # a retry, an edit, a reused id, or a lease held in another tab
            if found.rater_kind != _HUMAN:
                # submit_and_lease counts against the human target (services decides otherwise)
                raise Defer
            # The project's row stands in for the Project these two read (the settings).
            rationale = effective_rationale(project, data.rationale)  # type: ignore[arg-type]
            try:
                order, partial, shown, flags = check_ranking(
                    project, found.shown_order, data.ranking,  # type: ignore[arg-type]
                    found.shown_order, data.flags, rationale)
            except RankingError:
                raise Defer from None
            lease_id = uuid.uuid4()
            expires_at = now + timedelta(seconds=project.lease_seconds)
            rows = await _fetch(conn, sql.submit_and_lease(
                item_id=found.item_id, rater_id=found.rater_id, assignment_id=found.assignment_id,
                order=json.dumps(order), shown_order=json.dumps(shown), is_partial=partial,
                rationale=rationale, flags=json.dumps(flags), seconds=data.seconds,
                submission_id=submission_id, now=now, project_id=project.id,
                target=project.overlap_target, lease_id=lease_id, expires_at=expires_at))
        if not rows:
            raise _LostRace
        ranking_id, prompt, context, lease_shown, lease_texts = rows[0]
        ranking = {  # RankingSerializer's form
            "id": ranking_id, "project": project.public_id, "item": found.external_id,
            "assignment": str(assignment_id),
            "rater": {"id": found.rater_id, "kind": found.rater_kind, "persona": found.persona,
                      "model": found.model},
            "ranking": order, "shown_order": shown, "is_partial": partial, "rationale": rationale,
            "flags": flags, "seconds": data.seconds, "submission_id": submission_id, "version": 1,
            "is_current": True, "created_at": now,
        }
        lease = None
        if lease_shown is not None:
            lease = _assignment(project, lease_id, expires_at, prompt, context, lease_shown,
                                lease_texts)
        return _render({"ranking": ranking, "next": lease}), project

    async def _next(self, token: str, project_id: uuid.UUID) -> tuple[int, bytes]:
        """The lease the user holds in the project, or a new one: 200 with it, or 204 when all is done."""
        from annotation import loop_sql as sql

        now = timezone.now()
        pool = await self._pool()
        async with pool.connection() as conn:
            rows = await _fetch(conn, sql.token_project(token, project_id, now))
            if not rows:
                raise Defer  # not a member, an unknown token, no rater yet: Django's answers
            rater_id, held_id, held_shown, held_expires, prompt, context, ids, texts = rows[0][:8]
            project = _Project(*rows[0][8:])
            if project.status != _ACTIVE:
                raise Defer
            if held_id is None:
                lease_id = uuid.uuid4()
                expires_at = now + timedelta(seconds=project.lease_seconds)
                leased = await _fetch(conn, sql.lease_next(
                    project_id=project.id, target=project.overlap_target, rater_id=rater_id,
                    now=now, lease_id=lease_id, expires_at=expires_at))
                if not leased:
                    return 204, b""
                return 200, _render(_assignment(project, lease_id, expires_at, *leased[0]))
        by_id = dict(zip(ids, texts, strict=True))
        held_texts = [by_id.get(response_id, "") for response_id in held_shown]
        # As Django's connection reads it (in UTC), whatever the server's TimeZone.
        expires = held_expires.astimezone(UTC)
        answer = _assignment(project, held_id, expires, prompt, context, held_shown, held_texts)
        return 200, _render(answer)


# Project.Status.ACTIVE, Rater.Kind.HUMAN, Assignment.Status.LEASED
_ACTIVE, _HUMAN, _LEASED = "active", "human", "leased"


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


class _Project(NamedTuple):
    """loop_sql.PROJECT_COLUMNS: what the checks (services.check_ranking), the answers and the live
    page's group name read of the project."""

    id: int
    public_id: uuid.UUID
    name: str
    status: str
    allow_ties: bool
    allow_partial: bool
    rationale: str
    overlap_target: int
    lease_seconds: int


def _assignment(project: _Project, public_id: uuid.UUID, expires_at: datetime, prompt: str,
                context: Any, shown: list[str], texts: list[str]) -> dict[str, Any]:
    """api.assignment_payload's form of a lease: `texts` are those of the `shown` response ids."""
    return {
        "id": public_id,
        "project": project.public_id,
        "status": _LEASED,
        "expires_at": expires_at,
        "item": {"prompt": prompt, "context": context},
        "responses": [{"id": response_id, "text": text}
                      for response_id, text in zip(shown, texts, strict=True)],
        "settings": {"allow_ties": project.allow_ties, "allow_partial": project.allow_partial,
                     "rationale": project.rationale},
    }


# ---------------------------------------------------------------- the body, as DRF reads it


class _Submission(NamedTuple):
    ranking: Any
    rationale: str
    flags: list[str]
    seconds: float | None
    submission_id: uuid.UUID | None


_SUBMIT_FIELDS = frozenset(("ranking", "rationale", "flags", "seconds", "submission_id"))
_CANONICAL_UUID = re.compile(
    r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # DRF's strict parser answers NaN and Infinity with 400


def _submission(body: bytes) -> _Submission:
    """The body as Django's parser and SubmitSerializer read it, for the bodies this fast path is
    sure of: the fields of their own types, as a client of the API sends them. Defer for the rest,
    so Django's serializer answers (with its 400, or with what it makes of a string for a number, a
    number for a string, a UUID without dashes). The ranking itself is check_ranking's to judge."""
    try:
        data = json.loads(body.decode("utf-8"), parse_constant=_refuse_constant)
    except (ValueError, RecursionError):  # Django's parser answers it with 400
        raise Defer from None
    if type(data) is not dict or data.get("ranking") is None or not data.keys() <= _SUBMIT_FIELDS:
        raise Defer  # JSONField(): required, not null
    rationale, flags = data.get("rationale", ""), data.get("flags", [])
    seconds, submission_id = data.get("seconds"), data.get("submission_id")
    if type(rationale) is not str or "\x00" in rationale or not _encodable(rationale):
        raise Defer  # CharField: null characters and lone surrogates are refused
    if type(flags) is not list or not all(type(flag) is str and flag in _flags() for flag in flags):
        raise Defer  # ListField(CharField()): a known flag needs no trimming; the rest is Django's
    if seconds is not None:
        if type(seconds) not in (int, float) or not 0 <= seconds <= _MAX_SECONDS:
            raise Defer  # FloatField(min_value=0): finite, not negative; no bool, no string
        seconds = float(seconds)
    if submission_id is not None:
        if type(submission_id) is not str or not _CANONICAL_UUID.fullmatch(submission_id):
            raise Defer  # UUIDField also takes integers and other spellings: Django's to read
        submission_id = uuid.UUID(submission_id)
    return _Submission(data["ranking"], rationale, flags, seconds, submission_id)


_MAX_SECONDS = 1e300  # finite, and an integer this large converts to float without overflow


def _encodable(text: str) -> bool:
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


@functools.cache
def _flags() -> frozenset[str]:
    from annotation.models import Ranking

    return frozenset(Ranking.Flag.values)


async def _fetch(conn: Any, statement: tuple[str, list[Any]]) -> list[tuple[Any, ...]]:
    cursor = await conn.execute(*statement)
    return await cursor.fetchall()


@functools.cache
def _renderer() -> Any:
    from rest_framework.renderers import JSONRenderer

    return JSONRenderer()


def _render(body: dict[str, Any]) -> bytes:
    """As DRF's Response renders `body`."""
    return _renderer().render(body)


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
