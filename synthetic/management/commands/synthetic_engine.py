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

import logging
import os
import sys
import traceback
import warnings
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from jobs.runner import CAUSE_PREFIX, Cancelled, cause_line
from synthetic.models import GenerationRun, SyntheticRun
from synthetic.runs import ChildReporter, generate_run, judge_run

CANCELLED_EXIT = 3


class Command(BaseCommand):
    help = "Run the engine part of a synthetic or generation run (started by the job worker)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("kind", choices=["synthetic", "generation"])
        parser.add_argument("id", type=int)

    def handle(self, *args: Any, **options: Any) -> None:
        quiet_engine_libraries()
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
        except Exception as exc:
            traceback.print_exc(file=sys.stdout)
            sys.stdout.write(f"{CAUSE_PREFIX}{cause_line(exc)}\n")
            sys.stdout.flush()
            raise SystemExit(1) from None


ENGINE_LIBRARIES = ("transformers", "huggingface_hub", "accelerate", "torch", "vllm")


def quiet_engine_libraries() -> None:
    """Errors only from the engine libraries (transformers, huggingface_hub, vLLM ...), no
    progress bars, no Python warnings from them (they were landing in every run log as
    "template" and generation-flag noise), and no line per HTTP request from httpx."""
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TQDM_DISABLE", "1")
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")  # vLLM sets its logger's level from this on import
    for name in ENGINE_LIBRARIES:
        logging.getLogger(name).setLevel(logging.ERROR)
        warnings.filterwarnings("ignore", module=rf"{name}(\.|$)")
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
