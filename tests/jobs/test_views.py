"""Run list and run page: who sees what, cancel and resume buttons, and the live websocket."""
from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.test import override_settings
from django.urls import reverse
from django.utils import timezone

from config.routing import websocket_urlpatterns
from jobs.live import publish
from jobs.models import Run

IN_MEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.fixture
def run(db, owner, project, tmp_path):
    return Run.objects.create(
        kind="test-count", owner=owner, project=project, status=Run.Status.RUNNING,
        progress_done=3, progress_total=12, log="computed unit 2\n", config={"n": 12},
        artifacts=[str(tmp_path / "summary.txt")], heartbeat_at=timezone.now(),
    )


def detail(run):
    return reverse("jobs-run-detail", args=[run.public_id])


@pytest.mark.django_db
def test_owner_sees_status_progress_log_artifacts_and_cancel(client, owner, run):
    client.force_login(owner)
    page = client.get(detail(run)).content.decode()
    assert 'data-status="running"' in page
    assert "3 / 12 (25%)" in page
    assert "computed unit 2" in page and "summary.txt" in page
    assert reverse("jobs-run-cancel", args=[run.public_id]) in page
    assert reverse("jobs-run-resume", args=[run.public_id]) not in page
    assert f'ws-connect="/ws/runs/{run.public_id}/"' in page


@pytest.mark.django_db
def test_outsiders_and_annotators_get_404(client, outsider, annotator, run):
    for user in (outsider, annotator):
        client.force_login(user)
        assert client.get(detail(run)).status_code == 404
        assert client.post(reverse("jobs-run-cancel", args=[run.public_id])).status_code == 404
    run.refresh_from_db()
    assert not run.cancel_requested


@pytest.mark.django_db
def test_a_run_whose_worker_died_shows_interrupted_not_running(client, owner, run):
    Run.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timezone.timedelta(hours=1))
    client.force_login(owner)
    page = client.get(detail(run)).content.decode()
    assert 'data-status="interrupted"' in page and "stopped heartbeating" in page
    assert reverse("jobs-run-resume", args=[run.public_id]) in page


@pytest.mark.django_db
def test_anonymous_is_sent_to_login_and_wrong_methods_are_refused(client, owner, run):
    assert client.get(detail(run)).status_code == 302
    client.force_login(owner)
    assert client.post(detail(run)).status_code == 405
    assert client.get(reverse("jobs-run-cancel", args=[run.public_id])).status_code == 405


@pytest.mark.django_db
def test_cancel_with_htmx_answers_the_fragment_and_resume_requeues(client, owner, run, django_capture_on_commit_callbacks):
    client.force_login(owner)
    fragment = client.post(reverse("jobs-run-cancel", args=[run.public_id]), HTTP_HX_REQUEST="true").content.decode()
    assert fragment.startswith('<section id="run-status"') and "stopping" in fragment
    Run.objects.filter(pk=run.pk).update(status=Run.Status.CANCELLED)

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("jobs-run-resume", args=[run.public_id]))
    assert response.status_code == 302
    run.refresh_from_db()
    assert run.status == Run.Status.QUEUED and run.task_id


@pytest.mark.django_db
def test_resuming_a_running_run_says_why_not(client, owner, run):
    client.force_login(owner)
    response = client.post(reverse("jobs-run-resume", args=[run.public_id]), HTTP_HX_REQUEST="true")
    assert "only a stopped run can be resumed" in response.content.decode()


@pytest.mark.django_db
def test_run_list_shows_only_visible_runs(client, owner, outsider, run, django_assert_max_num_queries):
    other = Run.objects.create(kind="test-fail", owner=outsider, name="theirs")
    client.force_login(owner)
    with django_assert_max_num_queries(8):
        page = client.get(reverse("jobs-run-list")).content.decode()
    assert detail(run) in page and detail(other) not in page
    assert "Test counting" in page


def communicator(run, user):
    comm = WebsocketCommunicator(URLRouter(websocket_urlpatterns), f"/ws/runs/{run.public_id}/")
    comm.scope["user"] = user
    return comm


LAYERS = {
    "in-memory": IN_MEMORY,
    "redis": {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer",
                          "CONFIG": {"hosts": ["redis://127.0.0.1:6379/5"]}}},
    "database": {"default": {"BACKEND": "jobs.channel_layer.DatabaseChannelLayer"}},
}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("layer", list(LAYERS))
def test_socket_sends_current_status_then_published_updates(owner, run, layer):
    with override_settings(CHANNEL_LAYERS=LAYERS[layer]):
        _status_then_update(owner, run)


def _status_then_update(owner, run):
    async def scenario():
        comm = communicator(run, owner)
        connected, _ = await comm.connect()
        assert connected
        first = await comm.receive_from(timeout=5)
        assert 'id="run-status"' in first and 'hx-swap-oob="true"' in first and "3 / 12" in first
        # As a worker does, from synchronous code: the stored state is what gets published.
        await sync_to_async(Run.objects.filter(pk=run.pk).update)(progress_done=9)
        await sync_to_async(publish)(run)
        update = await comm.receive_from(timeout=5)
        await comm.disconnect()
        return update

    assert "9 / 12 (75%)" in async_to_sync(scenario)()


@pytest.mark.django_db(transaction=True)
@override_settings(CHANNEL_LAYERS=IN_MEMORY)
def test_socket_refuses_outsiders(outsider, annotator, run):
    async def attempt(user):
        comm = communicator(run, user)
        connected, _ = await comm.connect()
        await comm.disconnect()
        return connected

    assert not async_to_sync(attempt)(outsider)
    assert not async_to_sync(attempt)(annotator)
    assert get_channel_layer() is not None


@pytest.mark.django_db(transaction=True)
@override_settings(CHANNEL_LAYERS=IN_MEMORY)
def test_a_stale_copy_published_late_never_steps_the_page_back(owner, run):
    """The worker reads the row (3 / 12), an engine child stores 6 and publishes, then the
    worker's copy arrives: the page keeps 6; a new state (the final one) goes through."""
    from jobs.live import render_status, run_group

    def event(done: int, status: str = Run.Status.RUNNING) -> dict:
        copy = Run(pk=run.pk, public_id=run.public_id, project=run.project, owner=run.owner, kind=run.kind,
                   status=status, progress_done=done, progress_total=12, attempts=run.attempts)
        return {"type": "run.progress", "html": render_status(copy, oob=True), "key": [copy.attempts, status, done]}

    async def scenario() -> list[str]:
        comm = communicator(run, owner)
        connected, _ = await comm.connect()
        assert connected
        frames = [await comm.receive_from(timeout=5)]
        layer = get_channel_layer()
        for done, status in [(6, Run.Status.RUNNING), (3, Run.Status.RUNNING), (12, Run.Status.SUCCEEDED)]:
            await layer.group_send(run_group(run), await sync_to_async(event)(done, status))
        frames.append(await comm.receive_from(timeout=5))
        frames.append(await comm.receive_from(timeout=5))
        assert await comm.receive_nothing(timeout=0.2)
        await comm.disconnect()
        return frames

    frames = async_to_sync(scenario)()
    assert ["3 / 12" in frames[0], "6 / 12" in frames[1], 'data-status="succeeded"' in frames[2]] == [True] * 3
