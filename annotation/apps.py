from __future__ import annotations

from django.apps import AppConfig


class AnnotationConfig(AppConfig):
    name = "annotation"
    verbose_name = "Annotation"

    def ready(self) -> None:
        from annotation.services import expire_leases
        from jobs.janitor import register_sweep

        # Leases whose time ran out still count in their items' lease counts until closed; the
        # workers' janitor closes them, so the next-item walk stays short (loop_sql.next_candidate).
        register_sweep(expire_leases)
