"""A Channels layer stored in the default database, for deployments without Redis.

Why a database layer: the embedded deployment (SQLite, no extra server) still has several
processes (the web server, `db_worker`, management commands) that must reach the same websocket
groups. The database is the one medium they already share, on SQLite and PostgreSQL alike, so
no extra package (channels-postgres is PostgreSQL-only, channels-lite is alpha) is needed.

Messages are msgpack-encoded rows of `ChannelMessage`; group memberships are `GroupMembership`
rows with an expiry. `receive()` polls its channel with a short, growing sleep (50 ms up to
250 ms), so a message sent from any process arrives well within a second. A message is claimed by
deleting its row: the DELETE that removes one row wins, so two receivers never get the same one.

Threads: sends and group changes run `thread_sensitive=True` (the caller's thread and database
connection, so a send inside a transaction commits with it). Polling runs in the loop's thread
pool (`thread_sensitive=False`), so idle websocket consumers never queue up behind the one thread
that runs the web server's synchronous code; those threads keep their connection between polls.
"""
from __future__ import annotations

import asyncio
import logging
import random
import string
from collections.abc import Callable
from datetime import timedelta
from typing import Any, TypeVar

import msgpack
from asgiref.sync import sync_to_async
from channels.exceptions import ChannelFull
from channels.layers import BaseChannelLayer
from django.db import DatabaseError, close_old_connections, connection
from django.db.models import Count
from django.utils import timezone

T = TypeVar("T")
logger = logging.getLogger(__name__)

_POLL_FIRST = 0.05
_POLL_MAX = 0.25
# One send in this many also deletes expired rows, so the tables cannot grow without bound.
_CLEANUP_EVERY = 50


def _models() -> tuple[Any, Any]:
    # Imported late: the layer is importable before the app registry is ready.
    from jobs.models import ChannelMessage, GroupMembership

    return ChannelMessage, GroupMembership


def delete_expired() -> int:
    """Delete expired messages and memberships; returns how many rows went."""
    ChannelMessage, GroupMembership = _models()
    now = timezone.now()
    messages, _ = ChannelMessage.objects.filter(expires_at__lte=now).delete()
    members, _ = GroupMembership.objects.filter(expires_at__lte=now).delete()
    return messages + members


class DatabaseChannelLayer(BaseChannelLayer):
    extensions = ["groups", "flush"]

    def __init__(
        self,
        expiry: int = 60,
        group_expiry: int = 86400,
        capacity: int = 100,
        channel_capacity: dict[str, int] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(expiry=expiry, capacity=capacity, channel_capacity=channel_capacity, **kwargs)
        self.channel_capacity = self.compile_capacities(channel_capacity or {})
        self.group_expiry = group_expiry
        self.client_prefix = "".join(random.choices(string.ascii_letters, k=12))

    # ------------------------------------------------------------------ point to point

    async def send(self, channel: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_channel_name(channel)
        assert "__asgi_channel__" not in message
        await self._sync(self._send_sync, channel, message)

    def _send_sync(self, channel: str, message: dict[str, Any]) -> None:
        ChannelMessage, _ = _models()
        capacity = self.get_capacity(channel)
        if ChannelMessage.objects.filter(channel=channel, expires_at__gt=timezone.now()).count() >= capacity:
            raise ChannelFull(channel)
        ChannelMessage.objects.create(channel=channel, message=self._encode(message), expires_at=self._expiry())
        self._maybe_clean()

    async def receive(self, channel: str) -> dict[str, Any]:
        self.require_valid_channel_name(channel)
        delay = _POLL_FIRST
        while True:
            message = await sync_to_async(self._pop_sync, thread_sensitive=False)(channel)
            if message is not None:
                return message
            await asyncio.sleep(delay)
            delay = min(_POLL_MAX, delay * 1.5)

    def _pop_sync(self, channel: str) -> dict[str, Any] | None:
        ChannelMessage, _ = _models()
        try:
            while True:
                row = (
                    ChannelMessage.objects.filter(channel=channel, expires_at__gt=timezone.now())
                    .order_by("id")
                    .values_list("id", "message")
                    .first()
                )
                if row is None:
                    return None
                deleted, _ = ChannelMessage.objects.filter(pk=row[0]).delete()
                if deleted:
                    return self._decode(row[1])
        except DatabaseError:
            # A dropped connection: reconnect on the next poll instead of killing the consumer.
            logger.warning("channel layer poll failed; retrying", exc_info=True)
            connection.close()
            return None

    async def new_channel(self, prefix: str = "specific.") -> str:
        suffix = "".join(random.choices(string.ascii_letters + string.digits, k=12))
        return f"{prefix}{self.client_prefix}!{suffix}"

    # ------------------------------------------------------------------ groups

    async def group_add(self, group: str, channel: str) -> None:
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        await self._sync(self._group_add_sync, group, channel)

    def _group_add_sync(self, group: str, channel: str) -> None:
        _, GroupMembership = _models()
        expires_at = timezone.now() + timedelta(seconds=self.group_expiry)
        GroupMembership.objects.update_or_create(
            group=group, channel=channel, defaults={"expires_at": expires_at}
        )

    async def group_discard(self, group: str, channel: str) -> None:
        self.require_valid_group_name(group)
        self.require_valid_channel_name(channel)
        await self._sync(self._group_discard_sync, group, channel)

    def _group_discard_sync(self, group: str, channel: str) -> None:
        _, GroupMembership = _models()
        GroupMembership.objects.filter(group=group, channel=channel).delete()

    async def group_send(self, group: str, message: dict[str, Any]) -> None:
        assert isinstance(message, dict), "message is not a dict"
        self.require_valid_group_name(group)
        await self._sync(self._group_send_sync, group, message)

    def group_send_blocking(self, group: str, message: dict[str, Any]) -> None:
        """`group_send` for synchronous callers (views, workers) without an event-loop round trip."""
        self.require_valid_group_name(group)
        _with_fresh_connection(self._group_send_sync)(group, message)

    def _group_send_sync(self, group: str, message: dict[str, Any]) -> None:
        ChannelMessage, GroupMembership = _models()
        now = timezone.now()
        channels = list(
            GroupMembership.objects.filter(group=group, expires_at__gt=now).values_list("channel", flat=True)
        )
        if not channels:
            return
        queued = dict(
            ChannelMessage.objects.filter(channel__in=channels, expires_at__gt=now)
            .values_list("channel")
            .annotate(n=Count("id"))
            .values_list("channel", "n")
        )
        payload, expires_at = self._encode(message), self._expiry()
        # A full channel misses this message, as with the other layers: group sends never raise.
        rows = [
            ChannelMessage(channel=c, message=payload, expires_at=expires_at)
            for c in channels
            if queued.get(c, 0) < self.get_capacity(c)
        ]
        ChannelMessage.objects.bulk_create(rows)
        self._maybe_clean()

    # ------------------------------------------------------------------ flush and helpers

    async def flush(self) -> None:
        await self._sync(self._flush_sync)

    def _flush_sync(self) -> None:
        ChannelMessage, GroupMembership = _models()
        ChannelMessage.objects.all().delete()
        GroupMembership.objects.all().delete()

    async def close(self) -> None:
        """Nothing to close: connections belong to Django."""

    async def _sync(self, fn: Callable[..., T], *args: Any) -> T:
        return await sync_to_async(_with_fresh_connection(fn), thread_sensitive=True)(*args)

    def _expiry(self) -> Any:
        return timezone.now() + timedelta(seconds=self.expiry)

    def _maybe_clean(self) -> None:
        if random.randrange(_CLEANUP_EVERY) == 0:
            delete_expired()

    @staticmethod
    def _encode(message: dict[str, Any]) -> bytes:
        return msgpack.packb(message, use_bin_type=True)

    @staticmethod
    def _decode(data: bytes | memoryview) -> dict[str, Any]:
        return msgpack.unpackb(bytes(data), raw=False)


def _with_fresh_connection(fn: Callable[..., T]) -> Callable[..., T]:
    """Drop a dead or expired connection first, as Django does per request, outside transactions."""

    def wrapper(*args: Any) -> T:
        if not connection.in_atomic_block:
            close_old_connections()
        return fn(*args)

    return wrapper
