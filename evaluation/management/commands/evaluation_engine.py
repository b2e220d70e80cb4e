"""The engine subprocess of an evaluation run (started by evaluation.runs).

    manage.py evaluation_engine <EvaluationRun id>

Scores the pending chunks and stores them one by one; exits 3 when the run was cancelled,
1 on any failure after printing the traceback and one `run failed: <cause>` line, which the
worker that started it puts first in the failed run's error.
"""
from __future__ import annotations

import sys
import traceback
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from evaluation.models import EvaluationRun
from evaluation.runs import evaluate_run
from jobs.runner import CAUSE_PREFIX, Cancelled, cause_line
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
        except Exception as exc:
            traceback.print_exc(file=sys.stdout)
            sys.stdout.write(f"{CAUSE_PREFIX}{cause_line(exc)}\n")
            sys.stdout.flush()
            raise SystemExit(1) from None
