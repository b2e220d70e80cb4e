"""Websocket routes of every app, collected in one place."""
from __future__ import annotations

from django.urls import URLPattern, path

from annotation.consumers import ProjectProgressConsumer
from jobs.routing import websocket_urlpatterns as jobs_websocket_urlpatterns

websocket_urlpatterns: list[URLPattern] = [
    path("ws/projects/<uuid:public_id>/", ProjectProgressConsumer.as_asgi(), name="ws-project-progress"),
    *jobs_websocket_urlpatterns,
]
