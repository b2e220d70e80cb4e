"""The researcher's live project page: who may connect, and rankings arriving as rendered fragments."""
from __future__ import annotations

import uuid

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.test import override_settings

from annotation.live import project_group
from annotation.services import next_assignment, rater_for_user, record_ranking, submit_ranking
from config.routing import websocket_urlpatterns

# transaction=True: the consumer reads the database from another thread, and rankings published
# on commit must really be committed.
pytestmark = pytest.mark.django_db(transaction=True)

IN_MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
REDIS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        # A database of its own and a random prefix, so parallel test runs never share groups.
        "CONFIG": {"hosts": ["redis://127.0.0.1:6379/13"], "prefix": f"test-{uuid.uuid4().hex[:8]}"},
    }
}
ORDER = [["r1"], ["r2"], ["r3"], ["r4"]]


def path(project):
    return f"/ws/projects/{project.public_id}/"


def communicator(project, user):
    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path(project))
    comm.scope["user"] = user
    return comm


async def refused(project, user):
    comm = communicator(project, user)
    connected, code = await comm.connect()
    await comm.disconnect()
    return not connected, code


@override_settings(CHANNEL_LAYERS=IN_MEMORY)
def test_researcher_gets_current_progress_then_live_updates(project, owner, annotator):
    async def scenario():
        comm = communicator(project, owner)
        connected, _ = await comm.connect()
        assert connected
        first = await comm.receive_from(timeout=5)
        assert first.startswith('<section id="project-progress"')
        assert '<strong class="progress-rankings">0</strong> of 6 human rankings' in first

        item = await sync_to_async(project.items.get)(external_id="item-1")
        rater = await sync_to_async(rater_for_user)(annotator)
        await sync_to_async(record_ranking)(item=item, rater=rater, order=ORDER)
        update = await comm.receive_from(timeout=5)
        assert '<strong class="progress-rankings">1</strong> of 6 human rankings' in update
        assert "<td>annie</td><td>annotator</td><td>1</td>" in update
        await comm.disconnect()

    async_to_sync(scenario)()


@override_settings(CHANNEL_LAYERS=IN_MEMORY)
def test_disconnected_socket_leaves_the_group(project, owner):
    async def scenario():
        comm = communicator(project, owner)
        await comm.connect()
        await comm.receive_from(timeout=5)
        await comm.disconnect()
        layer = get_channel_layer()
        assert not layer.groups.get(project_group(project))

    async_to_sync(scenario)()


@override_settings(CHANNEL_LAYERS=IN_MEMORY)
def test_annotator_outsider_and_anonymous_are_refused(project, annotator, outsider):
    for user in (annotator, outsider, AnonymousUser()):
        assert async_to_sync(refused)(project, user) == (True, 4403)
    assert not get_channel_layer().groups.get(project_group(project))


@override_settings(CHANNEL_LAYERS=IN_MEMORY)
def test_unknown_project_is_refused(owner):
    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/projects/{uuid.uuid4()}/")
    comm.scope["user"] = owner
    connected, code = async_to_sync(comm.connect)()
    assert (connected, code) == (False, 4403)


@override_settings(CHANNEL_LAYERS=IN_MEMORY)
def test_full_asgi_stack_authenticates_by_session_cookie(client, project, owner, annotator):
    """Through config.asgi: origin check, session cookie, routing; an annotator's session is refused."""
    from config.asgi import application

    def connect(user):
        client.force_login(user)
        headers = [(b"origin", b"http://localhost"), (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]
        comm = WebsocketCommunicator(application, path(project), headers=headers)

        async def go():
            connected, _ = await comm.connect()
            message = await comm.receive_from(timeout=5) if connected else None
            await comm.disconnect()
            return connected, message

        return async_to_sync(go)()

    connected, message = connect(owner)
    assert connected and 'id="project-progress"' in message
    assert connect(annotator) == (False, None)


@override_settings(CHANNEL_LAYERS=REDIS)
def test_ranking_submitted_through_services_reaches_researcher_over_redis(project, owner, annotator):
    redis = pytest.importorskip("redis")
    try:
        redis.Redis.from_url("redis://127.0.0.1:6379/13").ping()
    except redis.ConnectionError:
        pytest.fail("this test needs the Redis server on 127.0.0.1:6379")

    async def scenario():
        comm = communicator(project, owner)
        connected, _ = await comm.connect()
        assert connected
        await comm.receive_from(timeout=5)

        def annotate():
            lease = next_assignment(project=project, user=annotator)
            submit_ranking(user=annotator, assignment=lease, order=ORDER)

        await sync_to_async(annotate)()
        update = await comm.receive_from(timeout=10)
        assert update.startswith('<section id="project-progress"')
        assert '<strong class="progress-rankings">1</strong> of 6 human rankings' in update
        await comm.disconnect()

    async_to_sync(scenario)()
