from __future__ import annotations

from django.apps import AppConfig


class EvaluationConfig(AppConfig):
    name = "evaluation"
    verbose_name = "Evaluation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the "evaluation" and "blind-generation" run kinds with the job worker.
        from evaluation import blind, runs  # noqa: F401
