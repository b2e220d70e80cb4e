from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from jobs.services import reap_stale_runs


class Command(BaseCommand):
    help = "Mark running runs whose worker stopped heartbeating as interrupted."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--stale-seconds", type=float, default=None,
            help="Heartbeat age that counts as dead (default: JOBS_STALE_SECONDS).",
        )

    def handle(self, *args: Any, stale_seconds: float | None = None, **options: Any) -> None:
        reaped = reap_stale_runs(stale_seconds=stale_seconds)
        for run in reaped:
            self.stdout.write(f"interrupted {run.kind} run {run.public_id} (worker {run.worker_id or '?'})")
        self.stdout.write(f"{len(reaped)} run(s) interrupted")
