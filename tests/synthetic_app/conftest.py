"""Fixtures of the synthetic app's Django tests: a panel, the test-only fake engine, and the
engine run inside the test process (no subprocess: the test database is not shared)."""
from __future__ import annotations

import pytest

from tests.synthetic_app import fake_engine


@pytest.fixture(autouse=True)
def _engine_in_process(settings):
    settings.SYNTHETIC_ENGINE_SUBPROCESS = False


@pytest.fixture
def fake():
    fake_engine.register()
    fake_engine.RecordingBackend.reset()
    yield fake_engine.RecordingBackend
    fake_engine.RecordingBackend.reset()


PERSONAS_JSONL = (
    '{"id": "p1", "description": "A retired nurse from Lyon.", "attributes": {"age": 67}}\n'
    '{"description": "A student from Lagos.", "sex": "female", "age": 21, "nationality": "Nigerian"}\n'
    '{"persona": "A software engineer who loves terse answers."}\n'
)


@pytest.fixture
def panel(owner):
    from synthetic.services import import_panel

    return import_panel(owner=owner, name="Mixed", text=PERSONAS_JSONL)
