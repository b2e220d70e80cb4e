from __future__ import annotations

from django.apps import AppConfig


class SyntheticConfig(AppConfig):
    name = "synthetic"
    verbose_name = "Synthetic raters"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the "synthetic" and "generation" run kinds with jobs.registry.
        from synthetic import runs  # noqa: F401
        from synthetic.checks import check_inference_endpoints  # noqa: F401 (registers the check)
