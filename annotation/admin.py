"""Admin for the annotation models.

Rankings are evidence: the admin may correct their flags but nothing else, and may neither add nor
delete them (`Item.ranking_count` is kept by the services, and a deleted ranking would leave it wrong).
"""
from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from annotation.models import (
    AnnotatorProfile,
    Assignment,
    Item,
    Membership,
    Project,
    Ranking,
    Rater,
    Response,
)


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ["user"]
    fields = ["user", "role", "created_at"]
    readonly_fields = ["created_at"]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "owner", "status", "overlap_target", "demographics_export", "created_at"]
    list_filter = ["status", "rationale", "demographics_export", "allow_ties", "allow_partial"]
    search_fields = ["name", "owner__username", "public_id"]
    list_select_related = ["owner"]
    raw_id_fields = ["owner"]
    readonly_fields = ["public_id", "created_at", "updated_at"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "project", "role", "created_at"]
    list_filter = ["role"]
    search_fields = ["user__username", "project__name"]
    list_select_related = ["user", "project"]
    raw_id_fields = ["user", "project"]


class ResponseInline(admin.TabularInline):
    model = Response
    extra = 0
    fields = ["position", "response_id", "source", "text"]


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = ["external_id", "project", "ranking_count", "synthetic_count", "created_at"]
    list_filter = ["project"]
    search_fields = ["external_id", "prompt", "project__name"]
    list_select_related = ["project"]
    raw_id_fields = ["project"]
    # Kept by the services from the current rankings; an edit by hand would break assignment.
    readonly_fields = ["ranking_count", "synthetic_count", "created_at"]
    inlines = [ResponseInline]


@admin.register(Response)
class ResponseAdmin(admin.ModelAdmin):
    list_display = ["response_id", "item", "source", "position"]
    list_filter = ["source"]
    search_fields = ["response_id", "text", "source", "item__external_id"]
    list_select_related = ["item"]
    raw_id_fields = ["item"]


@admin.register(Rater)
class RaterAdmin(admin.ModelAdmin):
    list_display = ["key", "kind", "user", "model", "created_at"]
    list_filter = ["kind", "model"]
    search_fields = ["key", "user__username", "model"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]


@admin.register(AnnotatorProfile)
class AnnotatorProfileAdmin(admin.ModelAdmin):
    list_display = ["user", "consented_at", "updated_at"]
    search_fields = ["user__username"]
    list_select_related = ["user"]
    raw_id_fields = ["user"]
    readonly_fields = ["updated_at"]


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["public_id", "item", "rater", "status", "leased_at", "expires_at"]
    list_filter = ["status"]
    search_fields = ["public_id", "item__external_id", "rater__key"]
    list_select_related = ["item", "rater"]
    raw_id_fields = ["item", "rater"]
    readonly_fields = ["public_id"]


class RankingAdminForm(forms.ModelForm):
    class Meta:
        model = Ranking
        fields = ["flags"]

    def clean_flags(self) -> list[str]:
        flags = self.cleaned_data["flags"]
        if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
            raise forms.ValidationError('flags must be a JSON list of names, e.g. ["harmful"]')
        unknown = [f for f in flags if f not in Ranking.Flag.values]
        if unknown:
            raise forms.ValidationError(
                f"unknown flag {unknown[0]!r}; use one of {', '.join(Ranking.Flag.values)}"
            )
        return flags


@admin.register(Ranking)
class RankingAdmin(admin.ModelAdmin):
    form = RankingAdminForm
    list_display = ["id", "item", "rater", "version", "is_current", "is_partial", "created_at"]
    list_filter = ["is_current", "is_partial", "rater__kind", "item__project"]
    search_fields = ["item__external_id", "rater__key", "submission_id"]
    list_select_related = ["item", "rater"]
    fields = [
        "item", "rater", "assignment", "order", "shown_order", "is_partial", "rationale", "flags", "seconds",
        "submission_id", "version", "is_current", "created_at",
    ]
    readonly_fields = [f for f in fields if f != "flags"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
