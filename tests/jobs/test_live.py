"""jobs.live.Coalescer: bursts fold into one trailing send per group; a quiet group sends at once."""
from __future__ import annotations

import threading
import time

import pytest

from jobs.live import Coalescer


class Recorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, dict, float]] = []
        self.event = threading.Event()

    def __call__(self, group: str, message: dict) -> None:
        self.sent.append((group, message, time.monotonic()))
        self.event.set()


def wait_for(recorder: Recorder, count: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while len(recorder.sent) < count and time.monotonic() < deadline:
        time.sleep(0.01)


def test_first_event_is_sent_at_once_and_a_burst_folds_into_one_trailing_send():
    recorder = Recorder()
    coalesce = Coalescer(recorder)
    started = time.monotonic()
    for n in range(100):
        coalesce("g", {"n": n}, interval=0.2)
    assert [m["n"] for _, m, _ in recorder.sent] == [0]  # the leading send, synchronously
    wait_for(recorder, 2)
    time.sleep(0.3)  # nothing else may follow
    assert len(recorder.sent) == 2
    _, _, trailing_at = recorder.sent[1]
    assert trailing_at - started >= 0.19  # not before the interval is over


def test_groups_are_independent():
    recorder = Recorder()
    coalesce = Coalescer(recorder)
    coalesce("a", {}, interval=10)
    coalesce("b", {}, interval=10)
    assert [g for g, _, _ in recorder.sent] == ["a", "b"]


def test_after_a_quiet_interval_the_next_event_is_sent_at_once_again():
    recorder = Recorder()
    coalesce = Coalescer(recorder)
    coalesce("g", {}, interval=0.05)
    time.sleep(0.1)
    coalesce("g", {}, interval=0.05)
    assert len(recorder.sent) == 2


def test_a_failing_send_in_the_timer_does_not_block_later_sends():
    calls: list[str] = []

    def send(group: str, message: dict) -> None:
        calls.append(group)
        if len(calls) == 2:
            raise RuntimeError("layer down")

    coalesce = Coalescer(send)
    coalesce("g", {}, interval=0.05)
    coalesce("g", {}, interval=0.05)  # scheduled; its send raises in the timer thread
    deadline = time.monotonic() + 5
    while len(calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    coalesce("g", {}, interval=0.05)
    assert len(calls) == 3


@pytest.mark.django_db
def test_a_stored_ranking_goes_through_the_coalescer_at_the_configured_interval(
    settings, monkeypatch, project, annotator, django_capture_on_commit_callbacks
):
    from annotation import live
    from annotation.services import next_assignment, submit_ranking

    seen: list[tuple[str, float]] = []
    monkeypatch.setattr(live, "send_coalesced", lambda group, message, *, interval, **_: seen.append((group, interval)))
    settings.LIVE_PROGRESS_INTERVAL = 0.25
    with django_capture_on_commit_callbacks(execute=True):
        lease = next_assignment(project=project, user=annotator)
        submit_ranking(user=annotator, assignment=lease, order=[[r] for r in lease.shown_order])
    assert seen == [(live.project_group(project), 0.25)]


def test_in_thread_sends_never_run_in_the_callers_thread():
    threads: list[int] = []
    coalesce = Coalescer(lambda group, message: threads.append(threading.get_ident()))
    for _ in range(50):
        coalesce("g", {}, interval=0.05, in_thread=True)
    deadline = time.monotonic() + 5
    while not threads and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.2)
    # the first send, and at most one trailing send for what came after it
    assert 1 <= len(threads) <= 2 and threading.get_ident() not in threads
