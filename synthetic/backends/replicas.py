"""Spreading requests over an endpoint's replicas (a fleet of `vllm serve` processes).

Each request goes to the replica with the fewest requests in flight that is not marked down; ties
go round robin, so a sequential client still uses every replica. A replica that stops answering
(connection refused, timeout) is marked down for `down_s` seconds and the request is retried on
another one. When every replica is down, the one that went down first is tried again, so a fleet
that recovers is found without waiting out every mark. Thread-safe: the openai engine calls it
from its request threads.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Replica:
    url: str
    in_flight: int = 0
    down_until: float = 0.0
    requests: int = 0  # sent to it, for the run log
    failures: int = 0


class ReplicaPool:
    def __init__(self, urls: tuple[str, ...] | list[str], down_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if not urls:
            raise ValueError("a replica pool needs at least one URL")
        self.replicas = [Replica(url) for url in urls]
        self.down_s = down_s
        self._clock = clock
        self._turn = 0
        self._lock = threading.Lock()

    def up(self) -> list[Replica]:
        now = self._clock()
        return [r for r in self.replicas if r.down_until <= now]

    def acquire(self) -> Replica:
        """The replica for the next request (counted in flight until `release`)."""
        with self._lock:
            now, n = self._clock(), len(self.replicas)
            candidates = [i for i, r in enumerate(self.replicas) if r.down_until <= now]
            if candidates:
                index = min(candidates, key=lambda i: (self.replicas[i].in_flight, (i - self._turn) % n))
            else:
                index = min(range(n), key=lambda i: self.replicas[i].down_until)
            self._turn = (index + 1) % n
            replica = self.replicas[index]
            replica.in_flight += 1
            replica.requests += 1
            return replica

    def release(self, replica: Replica, *, answered: bool) -> None:
        """End a request; a replica that did not answer is marked down, one that did is up again."""
        with self._lock:
            replica.in_flight -= 1
            if answered:
                replica.down_until = 0.0
            else:
                replica.failures += 1
                replica.down_until = self._clock() + self.down_s

    def mark_down(self, replica: Replica) -> None:
        with self._lock:
            replica.down_until = self._clock() + self.down_s

    def any_up(self) -> bool:
        return bool(self.up())
