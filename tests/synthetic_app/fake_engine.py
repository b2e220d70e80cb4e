"""A deterministic fake engine registered only by these tests (as "test-fake").

It is the engine package's `FakeBackend` (answers depend only on the conversation text) plus a
record of what it was asked, and a hook called after every `rank` call, so tests can check
what the code AROUND the engine sends, stores, skips and stops.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from synthetic.backends import register_backend
from synthetic.backends.fake_backend import FakeBackend

ENGINE = "test-fake"


class RecordingBackend(FakeBackend):
    engine = ENGINE
    calls: ClassVar[list[int]] = []  # conversations per rank/score/generate call
    after_call: ClassVar[Callable[[int], Any] | None] = None
    closed: ClassVar[int] = 0

    @classmethod
    def reset(cls) -> None:
        cls.calls, cls.after_call, cls.closed = [], None, 0

    def _seen(self, n: int) -> None:
        type(self).calls.append(n)
        if type(self).after_call is not None:
            type(self).after_call(len(type(self).calls))

    def rank(self, conversations, spec, params):  # type: ignore[no-untyped-def]
        out = super().rank(conversations, spec, params)
        self._seen(len(conversations))
        return out

    def score(self, conversations, options):  # type: ignore[no-untyped-def]
        out = super().score(conversations, options)
        self._seen(len(conversations))
        return out

    def generate(self, conversations, params):  # type: ignore[no-untyped-def]
        out = super().generate(conversations, params)
        self._seen(len(conversations))
        return out

    def close(self) -> None:
        type(self).closed += 1


def register() -> None:
    register_backend(ENGINE, f"{__name__}:RecordingBackend")
