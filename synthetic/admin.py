"""Admin for the synthetic app: panels and runs are read mostly; judgments are a record, read-only."""
from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from synthetic.models import GenerationRun, Judgment, Persona, PersonaPanel, SyntheticRun


class PersonaInline(admin.TabularInline):
    model = Persona
    extra = 0
    fields = ["persona_id", "description", "attributes"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False  # a panel changes only by a new version (synthetic.services.new_panel_version)


@admin.register(PersonaPanel)
class PersonaPanelAdmin(admin.ModelAdmin):
    list_display = ["name", "version", "source", "owner", "project", "created_at"]
    list_filter = ["source"]
    search_fields = ["name", "owner__username"]
    readonly_fields = ["version", "source", "recipe", "created_at"]
    inlines = [PersonaInline]


@admin.register(SyntheticRun)
class SyntheticRunAdmin(admin.ModelAdmin):
    list_display = ["run", "project", "panel", "engine", "model", "method", "judgments_done", "parse_failures"]
    list_filter = ["engine", "method"]
    readonly_fields = [f.name for f in SyntheticRun._meta.concrete_fields]


@admin.register(Judgment)
class JudgmentAdmin(admin.ModelAdmin):
    list_display = ["run", "item", "persona", "model", "parsed_ranking", "error", "created_at"]
    list_filter = ["model"]
    readonly_fields = [f.name for f in Judgment._meta.concrete_fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(GenerationRun)
class GenerationRunAdmin(admin.ModelAdmin):
    list_display = ["run", "project", "k", "items_created"]
    readonly_fields = [f.name for f in GenerationRun._meta.concrete_fields]
