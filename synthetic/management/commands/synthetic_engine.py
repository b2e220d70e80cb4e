"""The engine subprocess of a synthetic or generation run (started by synthetic.runs).

    manage.py synthetic_engine synthetic <SyntheticRun id>
    manage.py synthetic_engine generation <GenerationRun id>

Loads the model, does the pending work and stores it chunk by chunk; exits 3 when the run was
cancelled, non-zero on any failure (the worker that started it then fails the run).
"""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs.runner import Cancelled
from synthetic.models import GenerationRun, SyntheticRun
from synthetic.runs import ChildReporter, generate_run, judge_run

CANCELLED_EXIT = 3


class Command(BaseCommand):
    help = "Run the engine part of a synthetic or generation run (started by the job worker)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("kind", choices=["synthetic", "generation"])
        parser.add_argument("id", type=int)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            if options["kind"] == "synthetic":
                srun = SyntheticRun.objects.select_related("run", "project", "panel").get(pk=options["id"])
                judge_run(srun, ChildReporter(srun.run))
            else:
                grun = GenerationRun.objects.select_related("run", "project").get(pk=options["id"])
                generate_run(grun, ChildReporter(grun.run))
        except (SyntheticRun.DoesNotExist, GenerationRun.DoesNotExist):
            raise CommandError(f"no {options['kind']} run with id {options['id']}") from None
        except Cancelled:
            raise SystemExit(CANCELLED_EXIT) from None
