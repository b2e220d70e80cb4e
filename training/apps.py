from __future__ import annotations

from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "training"
    verbose_name = "Training"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the "training" and "model-fetch" run kinds with jobs.registry.
        from synthetic import model_choices
        from training import runs  # noqa: F401
        from training.services import model_choices as registered_model_choices

        # The synthetic forms offer registered models; synthetic may not import training, so we tell it.
        model_choices.register_provider("training", registered_model_choices)
