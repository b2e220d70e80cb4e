"""Websocket routes of the jobs app (collected by config/routing.py)."""
from __future__ import annotations

from django.urls import path

from jobs.consumers import RunConsumer

websocket_urlpatterns = [
    path("ws/runs/<uuid:public_id>/", RunConsumer.as_asgi()),
]
