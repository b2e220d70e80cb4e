"""annotation.fast_submit: the API submit served beside Django, through the real ASGI stack.

On PostgreSQL (the only database it serves): a first submission is answered and stored as
Django's view would; everything else (bad input, foreign or unknown tokens, retries) reaches
Django, which gives its usual answer, and nothing is written twice. Concurrent annotators never
push an item past its target.
"""
from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator
from django.core.asgi import get_asgi_application
from django.db import connection
from rest_framework.authtoken.models import Token

from annotation.fast_submit import FastSubmit
from annotation.models import Assignment, Item, Membership, Project, Ranking
from annotation.services import (
    add_member,
    create_item,
    create_project,
    next_assignment,
    record_ranking,
    synthetic_rater,
)

pytestmark = pytest.mark.django_db(transaction=True)


class Counting:
    """Django's ASGI app, counting the requests the fast path handed over."""

    def __init__(self) -> None:
        self.app = get_asgi_application()
        self.calls = 0

    async def __call__(self, scope, receive, send):
        self.calls += 1
        await self.app(scope, receive, send)


@pytest.fixture
def fast():
    if connection.vendor != "postgresql":
        pytest.skip("the fast submit serves PostgreSQL only (see test_sqlite_requests_all_go_to_django)")
    django_app = Counting()
    return FastSubmit(django_app), django_app


def in_one_loop(app: FastSubmit, scenario):
    """Run `scenario` on one event loop, as a server process does; the pool closes on that loop."""

    async def run():
        try:
            return await scenario()
        finally:
            await app.close()

    return async_to_sync(run)()


async def post(app, path: str, body: object, token: str | None, *, raw: bytes | None = None):
    payload = raw if raw is not None else json.dumps(body).encode()
    headers = [(b"host", b"localhost"), (b"content-type", b"application/json"),
               (b"content-length", str(len(payload)).encode())]
    if token is not None:
        headers.append((b"authorization", f"Token {token}".encode()))
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": headers,
             "client": ("127.0.0.1", 5000), "server": ("localhost", 80)}
    comm = ApplicationCommunicator(app, scope)
    await comm.send_input({"type": "http.request", "body": payload, "more_body": False})
    start = await comm.receive_output(20)
    chunks = []
    while True:
        message = await comm.receive_output(20)
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    # Until the app has returned: Django's handler closes the response after sending it, and a
    # handler task still pending when the test's event loop ends is logged as an error later on.
    await comm.wait(20)
    headers = {k.decode().lower(): v.decode() for k, v in start["headers"]}
    return start["status"], b"".join(chunks), headers


async def submit(app, assignment: Assignment, token: str, **fields):
    body = {"ranking": [[r] for r in assignment.shown_order], "submission_id": str(uuid.uuid4()), **fields}
    return await post(app, f"/api/v1/assignments/{assignment.public_id}/submit/", body, token)


def token_for(user) -> str:
    return Token.objects.create(user=user).key


def shape(value):
    """Keys and value types, recursively: what a client relies on."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(v) for v in value[:1]]
    return type(value).__name__


def test_first_submission_is_answered_and_stored_as_django_would(fast, settings, project, annotator, annotator2):
    app, django_app = fast
    mine, theirs = next_assignment(project=project, user=annotator), next_assignment(project=project, user=annotator2)
    order = [[mine.shown_order[1]], [mine.shown_order[0], mine.shown_order[2]], [mine.shown_order[3]]]
    extra = {"seconds": 4.5, "flags": ["harmful"], "rationale": "second is best"}
    my_token, their_token = token_for(annotator), token_for(annotator2)

    async def scenario():
        mine_answer = await submit(app, mine, my_token, ranking=order, **extra)
        assert django_app.calls == 0
        settings.ANNOTATION_FAST_SUBMIT = False  # the same request through Django's view, for comparison
        return mine_answer, await submit(app, theirs, their_token, **extra)

    (status, body, headers), (their_status, their_body, their_headers) = in_one_loop(app, scenario)
    assert (status, their_status, django_app.calls) == (201, 201, 1)

    answer, reference = json.loads(body), json.loads(their_body)
    assert shape(answer) == shape(reference)
    for header in ("content-type", "x-frame-options", "x-content-type-options", "referrer-policy", "vary"):
        assert headers.get(header) == their_headers.get(header), header

    stored = Ranking.objects.get(rater__user=annotator)
    assert stored.order == order and stored.shown_order == mine.shown_order
    assert (stored.seconds, stored.flags, stored.rationale, stored.version, stored.is_current) == (
        4.5, ["harmful"], "second is best", 1, True)
    assert answer["ranking"]["id"] == stored.pk and answer["ranking"]["ranking"] == order
    assert answer["ranking"]["assignment"] == str(mine.public_id)
    assert Assignment.objects.get(pk=mine.pk).status == Assignment.Status.SUBMITTED
    assert Item.objects.get(pk=mine.item_id).ranking_count == Ranking.objects.filter(item_id=mine.item_id).count()
    lease = Assignment.objects.get(public_id=answer["next"]["id"])
    assert lease.status == Assignment.Status.LEASED and lease.item_id != mine.item_id
    assert [r["id"] for r in answer["next"]["responses"]] == lease.shown_order
    assert sorted(lease.shown_order) == ["r1", "r2", "r3", "r4"]


def test_everything_but_a_first_valid_submission_gets_djangos_answer(fast, project, annotator, annotator2, outsider):
    app, django_app = fast
    lease = next_assignment(project=project, user=annotator)
    path = f"/api/v1/assignments/{lease.public_id}/submit/"
    token, bob, mallory = token_for(annotator), token_for(annotator2), token_for(outsider)
    sid = str(uuid.uuid4())
    good = {"ranking": [[r] for r in lease.shown_order], "submission_id": sid}

    async def scenario():
        refused = [
            await post(app, path, {"ranking": [["r1"], ["nope"]]}, token),
            await post(app, path, None, token, raw=b"{not json"),
            await post(app, path, {"ranking": [["r1"]]}, "0" * 40),
            await post(app, path, {"ranking": [["r1"]]}, mallory),
            await post(app, path, {"ranking": [["r1"]]}, bob),  # not their assignment
            await post(app, path, {"ranking": [["r1"]]}, None),  # no token: Django's authentication
        ]
        calls = django_app.calls
        first = await post(app, path, good, token)
        calls_after_first = django_app.calls
        again = await post(app, path, good, token)  # a network retry: Django finds the stored ranking
        return refused, calls, first, calls_after_first, again

    refused, calls, first, calls_after_first, again = in_one_loop(app, scenario)
    assert refused[0][0] == 400 and "ranking" in json.loads(refused[0][1])
    assert [r[0] for r in refused[1:]] == [400, 401, 404, 404, 401]
    assert calls == 6
    assert first[0] == 201 and calls_after_first == 6
    assert again[0] == 200 and json.loads(again[1])["ranking"]["submission_id"] == sid
    assert django_app.calls == 7 and Ranking.objects.count() == 1


def test_a_closed_project_is_left_to_django(fast, project, annotator):
    app, django_app = fast
    lease = next_assignment(project=project, user=annotator)
    Project.objects.filter(pk=project.pk).update(status=Project.Status.CLOSED)
    token = token_for(annotator)
    status, _, _ = in_one_loop(app, lambda: submit(app, lease, token))
    assert django_app.calls == 1 and status in (201, 403, 409)


def test_concurrent_annotators_never_push_an_item_past_its_target(fast, django_user_model):
    app, django_app = fast
    owner = django_user_model.objects.create_user("fast-owner")
    target, items, annotators = 2, 12, 10
    race = create_project(owner=owner, name="fast race", overlap_target=target, status=Project.Status.ACTIVE)
    for n in range(items):
        create_item(project=race, external_id=f"i{n}", prompt=f"p{n}",
                    responses=[{"id": f"r{k}", "text": f"t{k}"} for k in range(3)])
    users = [django_user_model.objects.create_user(f"fast{n}") for n in range(annotators)]
    for user in users:
        add_member(project=race, user=user, role=Membership.Role.ANNOTATOR)
    first = {u.pk: next_assignment(project=race, user=u) for u in users}
    tokens = {u.pk: token_for(u) for u in users}

    async def annotate(user_id: int, sent: list[str]) -> None:
        lease = first[user_id]
        current = {"id": str(lease.public_id), "responses": [{"id": r} for r in lease.shown_order]} if lease else None
        while current is not None:
            sid = str(uuid.uuid4())
            body = {"ranking": [[r["id"]] for r in current["responses"]], "submission_id": sid}
            status, reply, _ = await post(app, f"/api/v1/assignments/{current['id']}/submit/", body, tokens[user_id])
            assert status == 201, reply
            sent.append(sid)
            current = json.loads(reply)["next"]

    async def everyone() -> list[str]:
        sent: list[str] = []
        await asyncio.gather(*(annotate(u.pk, sent) for u in users))
        return sent

    sent = in_one_loop(app, everyone)
    assert django_app.calls == 0
    assert len(sent) == len(set(sent)) == Ranking.objects.filter(item__project=race).count() == items * target
    assert set(Ranking.objects.values_list("submission_id", flat=True)) == {uuid.UUID(s) for s in sent}
    for item in Item.objects.filter(project=race):
        assert item.ranking_count == target == item.rankings.count()
        assert item.rankings.values("rater").distinct().count() == target


def test_synthetic_rankings_leave_the_human_target_to_the_fast_path(fast, project, annotator, annotator2):
    """Every item already has more synthetic rankings than the human target: the fast path still
    leases each item to both annotators and counts their rankings as human, as services does."""
    app, django_app = fast
    for n in range(3):
        rater = synthetic_rater(persona={"id": f"p{n}", "description": "d"}, model="fake:m")
        for item in Item.objects.filter(project=project):
            record_ranking(item=item, rater=rater, order=[["r1"], ["r2"], ["r3"], ["r4"]])
    tokens = {annotator.pk: token_for(annotator), annotator2.pk: token_for(annotator2)}
    path = f"/api/v1/projects/{project.public_id}/next/"

    async def rank_all(user_id: int) -> int:
        status, reply, _ = await post(app, path, None, tokens[user_id], raw=b"")
        current, stored = (json.loads(reply) if status == 200 else None), 0
        while current is not None:
            body = {"ranking": [[r["id"]] for r in current["responses"]], "submission_id": str(uuid.uuid4())}
            status, reply, _ = await post(app, f"/api/v1/assignments/{current['id']}/submit/", body, tokens[user_id])
            assert status == 201, reply
            stored, current = stored + 1, json.loads(reply)["next"]
        return stored

    async def both() -> list[int]:
        return [await rank_all(annotator.pk), await rank_all(annotator2.pk)]

    assert in_one_loop(app, both) == [3, 3]
    assert django_app.calls == 0
    assert set(Item.objects.filter(project=project).values_list("ranking_count", "synthetic_count")) == {(2, 3)}


def test_sqlite_requests_all_go_to_django(settings, project, annotator):
    if connection.vendor == "postgresql":
        pytest.skip("checks the SQLite default")
    django_app = Counting()
    app = FastSubmit(django_app)
    lease = next_assignment(project=project, user=annotator)
    token = token_for(annotator)
    status, _, _ = async_to_sync(submit)(app, lease, token)
    assert (status, django_app.calls) == (201, 1)


def test_next_leases_then_hands_back_the_held_lease_as_django_would(fast, settings, project, annotator, annotator2):
    app, django_app = fast
    path = f"/api/v1/projects/{project.public_id}/next/"
    mine, theirs = token_for(annotator), token_for(annotator2)

    async def scenario():
        first = await post(app, path, None, mine, raw=b"")
        again = await post(app, path, None, mine, raw=b"")
        calls = django_app.calls
        settings.ANNOTATION_FAST_SUBMIT = False
        reference = await post(app, path, None, theirs, raw=b"")
        return first, again, calls, reference

    first, again, calls, reference = in_one_loop(app, scenario)
    assert (first[0], again[0], reference[0], calls) == (200, 200, 200, 0)
    lease, held = json.loads(first[1]), json.loads(again[1])
    assert held == lease  # the lease held is handed back, not a second one
    assert shape(lease) == shape(json.loads(reference[1]))
    stored = Assignment.objects.get(public_id=lease["id"])
    assert stored.rater.user == annotator and stored.status == Assignment.Status.LEASED
    assert [r["id"] for r in lease["responses"]] == stored.shown_order
    assert Assignment.objects.filter(rater__user=annotator).count() == 1


def test_next_answers_204_when_nothing_is_left_and_leaves_the_rest_to_django(fast, project, annotator, outsider):
    app, django_app = fast
    path = f"/api/v1/projects/{project.public_id}/next/"
    token, stranger = token_for(annotator), token_for(outsider)
    for item in Item.objects.filter(project=project):
        item.ranking_count = project.overlap_target
        item.save()

    async def scenario():
        done = await post(app, path, None, token, raw=b"")
        calls = django_app.calls
        others = [await post(app, path, None, stranger, raw=b""), await post(app, path, None, None, raw=b"")]
        return done, calls, others

    done, calls, others = in_one_loop(app, scenario)
    assert (done[0], done[1], calls) == (204, b"", 0)
    assert [o[0] for o in others] == [404, 401] and django_app.calls == 2
    Project.objects.filter(pk=project.pk).update(status=Project.Status.CLOSED)
    closed = in_one_loop(app, lambda: post(app, path, None, token, raw=b""))
    assert closed[0] == 409 and django_app.calls == 3


def test_a_fast_submit_reaches_the_live_project_page(fast, project, annotator):
    """Through the configured (database) channel layer, as the researcher's websocket would receive it."""
    from channels.layers import get_channel_layer

    from annotation.live import project_group

    app, _ = fast
    lease = next_assignment(project=project, user=annotator)
    token = token_for(annotator)
    layer = get_channel_layer()

    async def scenario():
        channel = await layer.new_channel()
        await layer.group_add(project_group(project), channel)
        status, _, _ = await submit(app, lease, token)
        message = await asyncio.wait_for(layer.receive(channel), timeout=10)
        return status, message

    status, message = in_one_loop(app, scenario)
    assert status == 201 and message == {"type": "project.progress"}


def test_a_duplicate_submit_racing_its_twin_is_answered_without_an_error_in_the_log(
        fast, project, annotator, caplog):
    """Two copies of one submission sent at the same moment (a client retrying at once): one is
    stored and answered 201, the other gets the stored ranking with 200, and nothing is logged as
    an error. Each round sends a fresh pair; at least one round must have raced inside the fast
    path (its unique constraint refused the second copy), or the test proves nothing."""
    app, django_app = fast
    token = token_for(annotator)
    caplog.set_level("DEBUG", logger="annotation.fast_submit")

    async def rounds() -> list[list[int]]:
        statuses = []
        for _ in range(3):
            lease = await _lease_for(annotator, project)
            if lease is None:
                break
            body = {"ranking": [[r] for r in lease.shown_order], "submission_id": str(uuid.uuid4())}
            path = f"/api/v1/assignments/{lease.public_id}/submit/"
            answers = await asyncio.gather(post(app, path, body, token), post(app, path, body, token))
            statuses.append(sorted(status for status, _, _ in answers))
        return statuses

    statuses = in_one_loop(app, rounds)
    assert statuses and all(pair == [200, 201] for pair in statuses), statuses
    assert Ranking.objects.filter(rater__user=annotator).count() == len(statuses)
    assert not [r for r in caplog.records if r.levelno >= 40], [r.getMessage() for r in caplog.records]
    assert any("lost a race" in r.getMessage() for r in caplog.records), "no round raced inside the fast path"


async def _lease_for(user, project):
    from asgiref.sync import sync_to_async

    return await sync_to_async(next_assignment)(project=project, user=user)


def test_fast_answers_are_byte_for_byte_djangos_answers_for_the_same_state(fast, settings, project,
                                                                           annotator):
    """Each fast answer beside Django's answer to a request that finds the same stored state: a new
    lease beside Django's `next` (which hands back the lease held), the held lease beside it, and a
    first submission beside Django's answer to its retry (the stored ranking, the next lease
    held)."""
    app, django_app = fast
    Item.objects.filter(project=project).update(
        prompt="Qu’est-ce que c’est ?\u2028",
        context=[{"role": "system", "content": "Sois bref, ü"}])
    token = token_for(annotator)
    next_path = f"/api/v1/projects/{project.public_id}/next/"

    async def scenario():
        leased = await post(app, next_path, None, token, raw=b"")
        held = await post(app, next_path, None, token, raw=b"")
        settings.ANNOTATION_FAST_SUBMIT = False
        djangos_held = await post(app, next_path, None, token, raw=b"")
        settings.ANNOTATION_FAST_SUBMIT = True
        calls = django_app.calls
        lease = json.loads(leased[1])
        ids = [r["id"] for r in lease["responses"]]
        body = {"ranking": [[ids[2]], [ids[0], ids[3]], [ids[1]]],
                "rationale": "première \u2029 ligne",
                "flags": ["harmful", "all_bad"], "seconds": 3, "submission_id": str(uuid.uuid4())}
        path = f"/api/v1/assignments/{lease['id']}/submit/"
        first = await post(app, path, body, token)
        retry = await post(app, path, body, token)  # ranked before: Django answers
        return leased, held, djangos_held, calls, first, retry

    leased, held, djangos_held, calls, first, retry = in_one_loop(app, scenario)
    assert (leased[0], held[0], djangos_held[0], calls) == (200, 200, 200, 1)
    assert leased[1] == held[1] == djangos_held[1]
    assert (first[0], retry[0], django_app.calls) == (201, 200, 2)
    assert first[1] == retry[1]
    answer = json.loads(first[1])
    assert answer["ranking"]["seconds"] == 3.0
    assert answer["next"]["item"]["context"][0]["content"] == "Sois bref, ü"
    assert b"\\u2028" in leased[1] and b"\\u2029" in first[1]  # escaped as DRF escapes them


def test_the_fast_lease_closes_lapsed_leases_and_heals_a_drifted_count_as_services_do(
        fast, project, annotator, annotator2):
    """Leasing in the database function: an item whose last place is held by a lease that ran out
    is leased again (the lapsed lease closed, the count exact), and an item whose count drifted
    (says full, is not) is found by the row-by-row walk and its count made exact."""
    from datetime import timedelta

    from django.utils import timezone

    app, django_app = fast
    items = list(Item.objects.filter(project=project).order_by("id"))
    # annotator2 ranked items 1 and 2 (full: target 2 with the lapsed or drifted place); item 0
    # is held by annotator2's lease that ran out an hour ago.
    lapsed = next_assignment(project=project, user=annotator2)
    Assignment.objects.filter(pk=lapsed.pk).update(expires_at=timezone.now() - timedelta(hours=1))
    Item.objects.filter(pk=lapsed.item_id).update(ranking_count=1)
    others = [i for i in items if i.pk != lapsed.item_id]
    Item.objects.filter(pk=others[0].pk).update(ranking_count=2)
    # Drifted: counted as leased, but no lease exists.
    Item.objects.filter(pk=others[1].pk).update(ranking_count=1, lease_count=1)
    token = token_for(annotator)
    path = f"/api/v1/projects/{project.public_id}/next/"

    async def scenario():
        first = await post(app, path, None, token, raw=b"")
        lease = json.loads(first[1])
        body = {"ranking": [[r["id"]] for r in lease["responses"]]}
        second = await post(app, f"/api/v1/assignments/{lease['id']}/submit/", body, token)
        return first, second

    first, second = in_one_loop(app, scenario)
    assert (first[0], second[0], django_app.calls) == (200, 201, 0)
    first_lease = Assignment.objects.get(public_id=json.loads(first[1])["id"])
    second_lease = Assignment.objects.get(public_id=json.loads(second[1])["next"]["id"])
    assert {first_lease.item_id, second_lease.item_id} == {lapsed.item_id, others[1].pk}
    assert Assignment.objects.get(pk=lapsed.pk).status == Assignment.Status.EXPIRED
    for item in Item.objects.filter(project=project):
        leased = item.assignments.filter(status=Assignment.Status.LEASED).count()
        assert item.lease_count == leased, item


VALID_RANKING = [["r1"], ["r2", "r3"], ["r4"]]
SID = "0b7c7c1e-55d4-4f8e-9b2a-3c1f5d6e7a8b"


SERVED = [
    {"ranking": VALID_RANKING},
    {"ranking": VALID_RANKING, "rationale": "why ü", "flags": ["harmful", "cannot_judge"],
     "seconds": 4.5, "submission_id": SID},
    {"ranking": VALID_RANKING, "seconds": 0, "submission_id": SID.upper(), "rationale": "",
     "flags": []},
    {"ranking": VALID_RANKING, "seconds": 2 ** 60, "submission_id": None},
    {"ranking": VALID_RANKING, "seconds": None},
    {"ranking": "anything: check_ranking judges it"},
]
LEFT_TO_DJANGO = [  # each for its own reason
    {"ranking": VALID_RANKING, "seconds": "4.5"},
    {"ranking": VALID_RANKING, "seconds": True},
    {"ranking": VALID_RANKING, "seconds": -1},
    {"ranking": VALID_RANKING, "rationale": 5},
    {"ranking": VALID_RANKING, "rationale": None},
    {"ranking": VALID_RANKING, "rationale": "a\x00b"},
    {"ranking": VALID_RANKING, "rationale": "\ud800"},
    {"ranking": VALID_RANKING, "flags": [" harmful "]},
    {"ranking": VALID_RANKING, "flags": [""]},
    {"ranking": VALID_RANKING, "flags": "harmful"},
    {"ranking": VALID_RANKING, "flags": None},
    {"ranking": VALID_RANKING, "submission_id": SID.replace("-", "")},
    {"ranking": VALID_RANKING, "submission_id": f"urn:uuid:{SID}"},
    {"ranking": VALID_RANKING, "submission_id": 12345},
    {"ranking": VALID_RANKING, "submission_id": "not a uuid"},
    {"ranking": None},
    {"ranking": VALID_RANKING, "extra": 1},
    {},
    [VALID_RANKING],
    b'{"ranking": [["r1"], ["r2"]], "seconds": NaN}',
    b'{"ranking": [["r1"], ["r2"]], "rationale": Infinity}',
    b'{"ranking": [["r1"], ["r2"]], "seconds": 1e999}',
    b'\xef\xbb\xbf{"ranking": [["r1"], ["r2"]]}',
    '{"ranking": [["r1"], ["r2"]]}'.encode("utf-16"),
    b'{"ranking": [["r1"], ["r2"]], "rationale": "\xff"}',
    b'{"ranking": ',
]


@pytest.mark.parametrize(("body", "served"),
                         [(b, True) for b in SERVED] + [(b, False) for b in LEFT_TO_DJANGO])
def test_the_fast_validator_agrees_with_submit_serializer_or_leaves_the_body_to_it(body, served):
    """What the fast path reads from a body is exactly what Django's parser and SubmitSerializer
    make of it; a body it is not sure of goes to Django (Defer), and so does every body Django
    refuses."""
    import io

    from rest_framework.exceptions import ParseError

    from annotation.fast_submit import Defer, _submission
    from annotation.serializers import SubmitSerializer
    from config.parsers import BoundedJSONParser

    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    try:
        fast = _submission(raw)
    except Defer:
        fast = None
    try:
        serializer = SubmitSerializer(data=BoundedJSONParser().parse(io.BytesIO(raw)))
        django = serializer.validated_data if serializer.is_valid() else None
    except ParseError:
        django = None
    if fast is not None:
        assert django is not None
        assert fast._asdict() == dict(django) and type(fast.seconds) is type(django["seconds"])
    assert (fast is not None) == served
