from __future__ import annotations

import sys

from django.apps import AppConfig
from django.conf import settings
from django.utils.module_loading import import_module


class JobsConfig(AppConfig):
    name = "jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Deployments (and tests) may add handler modules without an app of their own.
        for module in getattr(settings, "JOBS_EXTRA_HANDLER_MODULES", []):
            import_module(module)
        if len(sys.argv) > 1 and sys.argv[1] == "db_worker":
            from jobs.janitor import start_janitor

            start_janitor()
