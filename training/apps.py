from __future__ import annotations

from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "training"
    verbose_name = "Training"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the "training" and "model-fetch" run kinds with jobs.registry.
        from training import runs  # noqa: F401
