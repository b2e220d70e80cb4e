"""The engine subprocess of an evaluation run (started by evaluation.runs).

    manage.py evaluation_engine <EvaluationRun id>

Scores the pending chunks and stores them one by one; exits 3 when the run was cancelled,
non-zero on any failure (the worker that started it then fails the run).
"""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from evaluation.models import EvaluationRun
from evaluation.runs import evaluate_run
from jobs.runner import Cancelled
from synthetic.runs import ChildReporter

CANCELLED_EXIT = 3


class Command(BaseCommand):
    help = "Run the engine part of an evaluation run (started by the job worker)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("id", type=int)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            erun = EvaluationRun.objects.select_related("run").get(pk=options["id"])
        except EvaluationRun.DoesNotExist:
            raise CommandError(f"no evaluation run with id {options['id']}") from None
        try:
            evaluate_run(erun, ChildReporter(erun.run))
        except Cancelled:
            raise SystemExit(CANCELLED_EXIT) from None
