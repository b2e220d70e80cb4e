"""The engine subprocess of an evaluation run (started by evaluation.runs).

    manage.py evaluation_engine <EvaluationRun id>

Scores the pending chunks and stores them one by one; exits 3 when the run was cancelled,
1 on any failure after printing the traceback and one `run failed: <cause>` line, which the
worker that started it puts first in the failed run's error.
"""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from evaluation.models import EvaluationRun
from evaluation.runs import evaluate_run
from jobs.runner import engine_child
from synthetic.runs import ChildReporter


class Command(BaseCommand):
    help = "Run the engine part of an evaluation run (started by the job worker)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("id", type=int)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            erun = EvaluationRun.objects.select_related("run").get(pk=options["id"])
        except EvaluationRun.DoesNotExist:
            raise CommandError(f"no evaluation run with id {options['id']}") from None
        engine_child(lambda: evaluate_run(erun, ChildReporter(erun.run)))
