"""The database channel layer: Channels' layer contract, and delivery across processes."""
from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.exceptions import ChannelFull
from django.utils import timezone

from jobs.channel_layer import DatabaseChannelLayer, delete_expired
from jobs.models import ChannelMessage, GroupMembership
from tests.jobs.conftest import REPO, subprocess_env

# receive() polls from a thread pool with its own connections: data must be committed, and on
# SQLite live in a file (the shared_db fixture), never in the in-memory test database.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


@pytest.fixture
def layer(shared_db):
    return DatabaseChannelLayer(capacity=3, expiry=60)


async def receive_within(layer, channel, seconds=10):
    return await asyncio.wait_for(layer.receive(channel), seconds)


def run(coro_fn, *args):
    return async_to_sync(coro_fn)(*args)


def test_send_then_receive_in_order(layer):
    channel = run(layer.new_channel)
    for n in range(3):
        run(layer.send, channel, {"type": "test.message", "n": n, "blob": b"\x00\xff"})
    received = [run(receive_within, layer, channel) for _ in range(3)]
    assert [m["n"] for m in received] == [0, 1, 2]
    assert received[0]["blob"] == b"\x00\xff"
    assert not ChannelMessage.objects.exists(), "a received message is gone"


def test_new_channels_are_distinct_and_process_specific(layer):
    a, b = run(layer.new_channel), run(layer.new_channel)
    assert a != b and a.startswith("specific.") and "!" in a


def test_full_channel_refuses_send(layer):
    for n in range(3):
        run(layer.send, "full-channel", {"type": "x", "n": n})
    with pytest.raises(ChannelFull):
        run(layer.send, "full-channel", {"type": "x", "n": 3})


def test_group_send_reaches_every_member_but_not_discarded_ones(layer):
    a, b, c = (run(layer.new_channel) for _ in range(3))
    for channel in (a, b, c):
        run(layer.group_add, "run-abc", channel)
    run(layer.group_discard, "run-abc", c)
    run(layer.group_send, "run-abc", {"type": "run.progress", "html": "<p>1</p>"})

    assert run(receive_within, layer, a)["html"] == "<p>1</p>"
    assert run(receive_within, layer, b)["html"] == "<p>1</p>"
    assert not ChannelMessage.objects.filter(channel=c).exists()


def test_group_send_skips_full_members_without_raising(layer):
    a, b = run(layer.new_channel), run(layer.new_channel)
    run(layer.group_add, "g", a)
    run(layer.group_add, "g", b)
    for n in range(3):
        run(layer.send, a, {"type": "x", "n": n})
    run(layer.group_send, "g", {"type": "x", "n": "group"})
    assert ChannelMessage.objects.filter(channel=a).count() == 3
    assert run(receive_within, layer, b)["n"] == "group"


def test_expired_messages_and_memberships_are_invisible_and_cleaned(layer, monkeypatch):
    # Sends clean up expired rows at random (1 in 50); here the cleanup must be the explicit one.
    monkeypatch.setattr("jobs.channel_layer._CLEANUP_EVERY", 10**9)
    channel = run(layer.new_channel)
    run(layer.group_add, "g", channel)
    run(layer.send, channel, {"type": "old"})
    past = timezone.now() - timedelta(seconds=1)
    ChannelMessage.objects.update(expires_at=past)
    GroupMembership.objects.update(expires_at=past)
    run(layer.group_send, "g", {"type": "after-expiry"})
    run(layer.send, channel, {"type": "new"})

    assert run(receive_within, layer, channel)["type"] == "new"
    assert delete_expired() == 2
    assert not GroupMembership.objects.exists()


def test_flush_empties_both_tables(layer):
    channel = run(layer.new_channel)
    run(layer.group_add, "g", channel)
    run(layer.send, channel, {"type": "x"})
    run(layer.flush)
    assert not ChannelMessage.objects.exists() and not GroupMembership.objects.exists()


def test_invalid_names_are_refused(layer):
    with pytest.raises(TypeError):
        run(layer.group_add, "bad group!", "specific.x!y")
    with pytest.raises(TypeError):
        run(layer.send, "spaces are bad", {"type": "x"})


SENDER = """
import django, sys
django.setup()
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
async_to_sync(get_channel_layer().group_send)(sys.argv[1], {"type": "run.progress", "html": "<b>from afar</b>"})
"""


def test_group_send_from_another_process_reaches_a_receiver_here(shared_db):
    layer = DatabaseChannelLayer()
    channel = run(layer.new_channel)
    run(layer.group_add, "run-cross", channel)

    subprocess.run(
        [sys.executable, "-c", SENDER, "run-cross"], cwd=REPO, env=subprocess_env(shared_db), check=True, timeout=30
    )
    message = run(receive_within, layer, channel)
    assert message == {"type": "run.progress", "html": "<b>from afar</b>"}
