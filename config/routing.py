"""Websocket routes of every app, collected in one place."""
from __future__ import annotations

from django.urls import URLPattern, path

from annotation.consumers import ProjectProgressConsumer

websocket_urlpatterns: list[URLPattern] = [
    path("ws/projects/<uuid:public_id>/", ProjectProgressConsumer.as_asgi(), name="ws-project-progress"),
]
