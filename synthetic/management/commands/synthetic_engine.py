"""The engine subprocess of a synthetic or generation run (started by synthetic.runs).

    manage.py synthetic_engine synthetic <SyntheticRun id>
    manage.py synthetic_engine generation <GenerationRun id>

Loads the model, does the pending work and stores it chunk by chunk; exits 3 when the run was
cancelled, non-zero on any failure (the worker that started it then fails the run). A failure
prints its traceback, then one line `run failed: <cause>` that the worker shows above the log.
The engine libraries' own chatter (transformers' warnings and progress bars) stays out of the
run log: only errors from them get through.
"""
from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs.runner import engine_child
from synthetic.models import GenerationRun, SyntheticRun
from synthetic.runs import ChildReporter, generate_run, judge_run


class Command(BaseCommand):
    help = "Run the engine part of a synthetic or generation run (started by the job worker)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("kind", choices=["synthetic", "generation"])
        parser.add_argument("id", type=int)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["kind"] == "synthetic":
            try:
                srun = SyntheticRun.objects.select_related("run", "project", "panel").get(pk=options["id"])
            except SyntheticRun.DoesNotExist:
                raise CommandError(f"no synthetic run with id {options['id']}") from None
            engine_child(lambda: judge_run(srun, ChildReporter(srun.run)))
        else:
            try:
                grun = GenerationRun.objects.select_related("run", "project").get(pk=options["id"])
            except GenerationRun.DoesNotExist:
                raise CommandError(f"no generation run with id {options['id']}") from None
            engine_child(lambda: generate_run(grun, ChildReporter(grun.run)))
