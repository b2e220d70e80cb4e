from __future__ import annotations

from django.contrib import admin

from jobs.models import Run


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ["public_id", "kind", "status", "owner", "project", "progress_done", "progress_total", "created_at"]
    list_filter = ["status", "kind", "queue"]
    search_fields = ["public_id", "name", "owner__username"]
    readonly_fields = ["public_id", "created_at", "started_at", "finished_at", "heartbeat_at", "log", "error"]
