"""API shapes. Input and output serializers are separate where their shapes differ.

Annotators see only what they need to rank: a project's name, guidelines, status, ranking
settings and their own progress; an assignment's prompt and responses (id and text, in the order
shown, never the source label). Researchers also see a project's configuration and items.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any, TypedDict

from django.contrib.auth import get_user_model
from django.utils import timezone
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from annotation.importing.storable import unstorable
from annotation.markdown import render_markdown
from annotation.models import (
    MAX_RESPONSES,
    MIN_RESPONSES,
    AnnotatorProfile,
    Item,
    Membership,
    Project,
    Ranking,
    Rater,
    Response,
)
from annotation.permissions import is_researcher

# Project fields only researchers see; annotators get the rest.
RESEARCHER_ONLY_FIELDS = ("owner", "overlap_target", "synthetic_target", "demographics_export", "lease_seconds", "created_at", "updated_at")
PROJECT_WRITABLE_FIELDS = [
    "name",
    "guidelines",
    "status",
    "overlap_target",
    "synthetic_target",
    "allow_ties",
    "allow_partial",
    "rationale",
    "consent_text",
    "demographics_export",
    "lease_seconds",
]


class StrictFieldsMixin:
    """Reject keys the serializer does not know, so a typo ("promt") is an error, not data loss."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))  # type: ignore[attr-defined]
            if unknown:
                known = ", ".join(self.fields)  # type: ignore[attr-defined]
                raise serializers.ValidationError({unknown[0]: [f"unknown field; expected one of {known}"]})
        return super().to_internal_value(data)  # type: ignore[misc]


# ---------------------------------------------------------------- projects


class ProgressSerializer(serializers.Serializer):
    done = serializers.IntegerField(help_text="Items this user has ranked.")
    remaining = serializers.IntegerField(help_text="Items this user could still rank (neither ranked nor skipped).")
    skipped = serializers.IntegerField(help_text="Items this user skipped; reopen one to rank it after all.")


class ProjectSerializer(serializers.ModelSerializer):
    id = serializers.UUIDField(source="public_id", read_only=True)
    role = serializers.CharField(source="my_role", read_only=True, help_text="Your role in this project.")
    owner = serializers.CharField(source="owner.username", read_only=True)
    my_progress = serializers.SerializerMethodField()
    guidelines_html = serializers.SerializerMethodField(help_text="The guidelines rendered and sanitised.")

    class Meta:
        model = Project
        fields = [
            "id", "name", "guidelines", "guidelines_html", "status", "allow_ties", "allow_partial", "rationale", "consent_text",
            "role", "my_progress", *RESEARCHER_ONLY_FIELDS,
        ]
        read_only_fields = fields

    def get_guidelines_html(self, project: Project) -> str:
        return str(render_markdown(project.guidelines))

    @extend_schema_field(ProgressSerializer)
    def get_my_progress(self, project: Project) -> dict[str, int]:
        return {"done": getattr(project, "my_done", 0), "remaining": getattr(project, "my_remaining", 0),
                "skipped": getattr(project, "my_skipped", 0)}

    def to_representation(self, instance: Project) -> dict[str, Any]:
        data = super().to_representation(instance)
        if not is_researcher(instance):
            for field in RESEARCHER_ONLY_FIELDS:
                data.pop(field, None)
        return data


class ProjectWriteSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    class Meta:
        model = Project
        fields = PROJECT_WRITABLE_FIELDS
        extra_kwargs = {
            "overlap_target": {"min_value": 1},
            "lease_seconds": {"min_value": 30},
        }


class MemberSerializer(serializers.ModelSerializer):
    username = serializers.CharField(source="user.username", read_only=True)

    class Meta:
        model = Membership
        fields = ["username", "role", "created_at"]
        read_only_fields = fields


class MemberInputSerializer(StrictFieldsMixin, serializers.Serializer):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=Membership.Role.choices, default=Membership.Role.ANNOTATOR)

    def validate_username(self, value: str) -> Any:
        user = get_user_model().objects.filter(username=value, is_active=True).first()
        if user is None:
            raise serializers.ValidationError(f"there is no active user named {value!r}")
        return user


class MemberRemoveSerializer(StrictFieldsMixin, serializers.Serializer):
    username = serializers.CharField(max_length=150)


class ProjectProgressSerializer(serializers.Serializer):
    items = serializers.IntegerField()
    rankings = serializers.IntegerField()
    target = serializers.IntegerField()
    complete_items = serializers.IntegerField()


# ---------------------------------------------------------------- items


class ResponseSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="response_id")

    class Meta:
        model = Response
        fields = ["id", "text", "source"]


class ItemSerializer(serializers.ModelSerializer):
    responses = ResponseSerializer(many=True, read_only=True)

    class Meta:
        model = Item
        fields = ["id", "external_id", "prompt", "context", "metadata", "responses", "ranking_count", "synthetic_count", "created_at"]
        read_only_fields = fields


MESSAGE_ROLES = ("system", "user", "assistant")


class MessageInputSerializer(StrictFieldsMixin, serializers.Serializer):
    # A plain string rather than a ChoiceField: its enum would collide with Membership.Role in the schema.
    role = serializers.CharField(help_text="system, user or assistant")
    content = serializers.CharField(allow_blank=True, trim_whitespace=False)

    def validate_role(self, value: str) -> str:
        if value not in MESSAGE_ROLES:
            raise serializers.ValidationError(f"{value!r} is not a chat role; use one of {', '.join(MESSAGE_ROLES)}")
        return value


class ResponseInputSerializer(StrictFieldsMixin, serializers.Serializer):
    id = serializers.CharField(max_length=64)
    text = serializers.CharField(trim_whitespace=False)
    source = serializers.CharField(max_length=200, required=False, allow_blank=True, default="")


class ItemInputSerializer(StrictFieldsMixin, serializers.Serializer):
    """One entry of a bulk item upload. Without `external_id`, one is derived from the content."""

    external_id = serializers.CharField(max_length=200, required=False)
    prompt = serializers.CharField(trim_whitespace=False)
    context = MessageInputSerializer(many=True, required=False, default=list)
    responses = ResponseInputSerializer(many=True, min_length=MIN_RESPONSES, max_length=MAX_RESPONSES)
    metadata = serializers.DictField(required=False, default=dict)

    def validate_responses(self, value: list[dict[str, str]]) -> list[dict[str, str]]:
        seen: set[str] = set()
        for index, response in enumerate(value):
            if response["id"] in seen:
                raise serializers.ValidationError(f"responses[{index}].id {response['id']!r} is used twice")
            seen.add(response["id"])
        return value


class BatchError(TypedDict):
    index: int
    field: str
    message: str


def validate_item_batch(project: Project, entries: list[Any]) -> tuple[list[dict[str, Any]], list[BatchError]]:
    """Check a bulk upload entry by entry, then for duplicate external ids, before anything is stored.

    Returns the cleaned entries and every problem as {index, field, message}, sorted by index;
    `field` is a path into the entry such as "responses[1].id" ("" for the entry as a whole).
    """
    cleaned, errors = _validate_entries(entries)
    errors += _duplicate_errors(project, cleaned)
    return [entry for entry in cleaned if entry is not None], sorted(errors, key=lambda e: e["index"])


def _flatten_errors(errors: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """DRF's nested error structure as (dotted field path, message) pairs: "responses[1].id"."""
    if isinstance(errors, dict):
        for key, value in errors.items():
            if key == "non_field_errors":
                sub = path
            elif isinstance(key, int):
                sub = f"{path}[{key}]"
            else:
                sub = f"{path}.{key}" if path else str(key)
            yield from _flatten_errors(value, sub)
    elif isinstance(errors, list) and all(isinstance(e, str) for e in errors):
        for message in errors:
            yield path, str(message)
    elif isinstance(errors, list):
        for index, value in enumerate(errors):
            yield from _flatten_errors(value, f"{path}[{index}]")
    else:
        yield path, str(errors)


def _content_id(entry: dict[str, Any]) -> str:
    """A stable external id for an entry without one, so a re-sent batch is reported as duplicate."""
    content = json.dumps([entry["prompt"], entry["context"], entry["responses"]], sort_keys=True)
    return "auto-" + hashlib.sha256(content.encode()).hexdigest()[:16]


def _validate_entries(entries: list[Any]) -> tuple[list[dict[str, Any] | None], list[BatchError]]:
    cleaned: list[dict[str, Any] | None] = []
    errors: list[BatchError] = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict):
            errors.append({"index": index, "field": "", "message": "expected an object with prompt and responses"})
            cleaned.append(None)
            continue
        problem = unstorable(entry)
        if problem is not None:
            errors.append({"index": index, "field": problem[0], "message": problem[1]})
            cleaned.append(None)
            continue
        serializer = ItemInputSerializer(data=entry)
        if serializer.is_valid():
            data = dict(serializer.validated_data)
            data["responses"] = [dict(r) for r in data["responses"]]
            data["context"] = [dict(m) for m in data["context"]]
            data.setdefault("external_id", _content_id(data))
            cleaned.append(data)
        else:
            cleaned.append(None)
            errors += [{"index": index, "field": f, "message": m} for f, m in _flatten_errors(serializer.errors)]
    return cleaned, errors


def _duplicate_errors(project: Project, cleaned: list[dict[str, Any] | None]) -> list[BatchError]:
    ids = [entry["external_id"] for entry in cleaned if entry is not None]
    existing = set(Item.objects.filter(project=project, external_id__in=ids).values_list("external_id", flat=True))
    first_index: dict[str, int] = {}
    errors: list[BatchError] = []
    for index, entry in enumerate(cleaned):
        if entry is None:
            continue
        external_id = entry["external_id"]
        if external_id in existing:
            message = f"an item with external_id {external_id!r} already exists in this project"
            errors.append({"index": index, "field": "external_id", "message": message})
        elif external_id in first_index:
            message = f"external_id {external_id!r} repeats entry {first_index[external_id]} of this batch"
            errors.append({"index": index, "field": "external_id", "message": message})
        else:
            first_index[external_id] = index
    return errors


class BulkItemsResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    items = serializers.ListField(child=serializers.DictField())


# ---------------------------------------------------------------- assignments and rankings


class AssignmentItemSerializer(serializers.Serializer):
    prompt = serializers.CharField()
    context = serializers.ListField(child=serializers.DictField())


class ShownResponseSerializer(serializers.Serializer):
    id = serializers.CharField()
    text = serializers.CharField()


class RankingSettingsSerializer(serializers.Serializer):
    allow_ties = serializers.BooleanField()
    allow_partial = serializers.BooleanField()
    rationale = serializers.ChoiceField(choices=Project.Rationale.choices)


class AssignmentSerializer(serializers.Serializer):
    """What a client needs to show one item; built by `api.assignment_payload`."""

    id = serializers.UUIDField()
    project = serializers.UUIDField()
    status = serializers.CharField()
    expires_at = serializers.DateTimeField()
    item = AssignmentItemSerializer()
    responses = ShownResponseSerializer(many=True, help_text="In the order they are to be shown.")
    settings = RankingSettingsSerializer()


class SubmitSerializer(StrictFieldsMixin, serializers.Serializer):
    ranking = serializers.JSONField(help_text='Weak order, best first: [["r3"], ["r1", "r4"], ["r2"]].')
    rationale = serializers.CharField(required=False, allow_blank=True, default="", trim_whitespace=False)
    flags = serializers.ListField(child=serializers.CharField(), required=False, default=list)
    seconds = serializers.FloatField(required=False, allow_null=True, default=None, min_value=0)
    submission_id = serializers.UUIDField(
        required=False, allow_null=True, default=None,
        help_text="Client-generated; a retry with the same id returns the stored ranking instead of a new one.",
    )


class RaterSerializer(serializers.ModelSerializer):
    class Meta:
        model = Rater
        fields = ["id", "kind", "persona", "model"]
        read_only_fields = fields


class RankingSerializer(serializers.ModelSerializer):
    project = serializers.UUIDField(source="item.project.public_id", read_only=True)
    item = serializers.CharField(source="item.external_id", read_only=True)
    assignment = serializers.SerializerMethodField()
    ranking = serializers.JSONField(source="order", read_only=True)
    rater = RaterSerializer(read_only=True)

    class Meta:
        model = Ranking
        fields = [
            "id", "project", "item", "assignment", "rater", "ranking", "shown_order", "is_partial", "rationale",
            "flags", "seconds", "submission_id", "version", "is_current", "created_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.UUIDField(allow_null=True))
    def get_assignment(self, ranking: Ranking) -> str | None:
        return str(ranking.assignment.public_id) if ranking.assignment_id else None

    def to_representation(self, instance: Ranking) -> dict[str, Any]:
        # Written out by hand: the submit loop answers with one of these per request, and building
        # the declared fields costs more than the rest of the serialisation. The fields above still
        # document the shape (the schema test pins it); DRF's JSON encoder writes UUIDs and datetimes.
        rater = instance.rater
        return {
            "id": instance.pk,
            "project": instance.item.project.public_id,
            "item": instance.item.external_id,
            "assignment": self.get_assignment(instance),
            "rater": {"id": rater.pk, "kind": rater.kind, "persona": rater.persona, "model": rater.model},
            "ranking": instance.order,
            "shown_order": instance.shown_order,
            "is_partial": instance.is_partial,
            "rationale": instance.rationale,
            "flags": instance.flags,
            "seconds": instance.seconds,
            "submission_id": instance.submission_id,
            "version": instance.version,
            "is_current": instance.is_current,
            "created_at": instance.created_at,
        }


class SubmitResultSerializer(serializers.Serializer):
    ranking = RankingSerializer()
    next = AssignmentSerializer(allow_null=True, help_text="The next assignment, or null when nothing is left.")


class SkipResultSerializer(serializers.Serializer):
    skipped = serializers.UUIDField()
    next = AssignmentSerializer(allow_null=True)


class ReopenResultSerializer(serializers.Serializer):
    reopened = serializers.UUIDField()
    my_progress = ProgressSerializer()


# ---------------------------------------------------------------- profile


class ProfileSerializer(StrictFieldsMixin, serializers.ModelSerializer):
    """The requester's demographics. A value for a field not in `consented_fields` is rejected (400).

    Withdrawing consent for a field (leaving it out of `consented_fields`) erases its stored value.
    """

    consented_fields = serializers.ListField(
        child=serializers.ChoiceField(choices=AnnotatorProfile.FIELDS), required=False
    )

    class Meta:
        model = AnnotatorProfile
        fields = [*AnnotatorProfile.FIELDS, "consented_fields", "consented_at", "updated_at"]
        read_only_fields = ["consented_at", "updated_at"]

    def validate_consented_fields(self, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        current = self.instance.consented_fields if self.instance is not None else []
        consented = attrs.get("consented_fields", current)
        errors = {
            field: [f"you have not consented to share {field}; add it to consented_fields or leave it empty"]
            for field in AnnotatorProfile.FIELDS
            if attrs.get(field) and field not in consented
        }
        if errors:
            raise serializers.ValidationError(errors)
        return attrs

    def update(self, instance: AnnotatorProfile, validated_data: dict[str, Any]) -> AnnotatorProfile:
        consented = validated_data.get("consented_fields")
        if consented is not None and consented != instance.consented_fields:
            instance.consented_at = timezone.now() if consented else None
        for field, value in validated_data.items():
            setattr(instance, field, value)
        instance.drop_unconsented()
        instance.save()
        return instance
