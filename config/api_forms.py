"""A page's Django form as the input of its API endpoint, so the page and the endpoint accept and
refuse the same things from one definition (fields, bounds, defaults, choices, cross-field checks).

- `bind(form_class, data, **kwargs)`: the form bound to a JSON object (or form data). A field left
  out takes the form's initial value, the one the page pre-fills; a key the form does not have, or
  a list where the field takes one value (an object anywhere), is refused (DRF's ValidationError,
  a 400) naming the key, since a typo must not silently fall back to a default.
- `errors(form)`: the form's errors in DRF's shape, `{"field": ["..."], "non_field_errors": [...]}`.
- `request_serializer(form_class, name)`: a DRF serializer with the same fields, for the OpenAPI
  schema only (the form validates); model choices are the models' public ids.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from django import forms
from rest_framework import serializers
from rest_framework.exceptions import ValidationError

F = TypeVar("F", bound=forms.BaseForm)


def _is_multiple(field: forms.Field) -> bool:
    return isinstance(field, forms.MultipleChoiceField | forms.ModelMultipleChoiceField)


def _value(data: Any, name: str, multiple: bool) -> Any:
    return data.getlist(name) if multiple and hasattr(data, "getlist") else data[name]


def form_data(form_class: type[forms.BaseForm], data: Any) -> dict[str, Any]:
    """The values to bind: the body's, or the form's initial value for a field left out."""
    if not isinstance(data, Mapping):
        raise ValidationError({"non_field_errors": ["send a JSON object of the form's fields"]})
    fields = form_class.base_fields
    problems = {str(key): [f"unknown field; the fields are {', '.join(fields)}"] for key in data if key not in fields}
    values: dict[str, Any] = {}
    for name, field in fields.items():
        if name not in data:
            if field.initial is not None:
                values[name] = field.initial
            continue
        multiple = _is_multiple(field)
        value = _value(data, name, multiple)
        if multiple and not isinstance(value, list | tuple):
            problems[name] = ["expected a list of values"]
        elif not multiple and isinstance(value, list | tuple | dict):
            problems[name] = ["expected a single value"]
        elif multiple and any(isinstance(v, list | tuple | dict) for v in value):
            problems[name] = ["expected a list of single values"]
        else:
            values[name] = value
    if problems:
        raise ValidationError(problems)
    return values


def bind(form_class: type[F], data: Any, **kwargs: Any) -> F:
    """`form_class` bound to the request's data (DRF's ValidationError, a 400, when it cannot be)."""
    return form_class(form_data(form_class, data), **kwargs)


def errors(form: forms.BaseForm) -> dict[str, list[str]]:
    return {("non_field_errors" if key == "__all__" else key): list(messages) for key, messages in form.errors.items()}


# ---------------------------------------------------------------- the schema


def _schema_field(field: forms.Field) -> serializers.Field:
    optional = not field.required or field.initial is not None
    options: dict[str, Any] = {"required": not optional, "help_text": str(field.help_text) or None}
    if field.initial is not None:
        options["default"] = field.initial
    if isinstance(field, forms.ModelMultipleChoiceField):
        return serializers.ListField(child=serializers.UUIDField(), **options)
    if isinstance(field, forms.ModelChoiceField):
        return serializers.UUIDField(allow_null=not field.required, **options)
    if isinstance(field, forms.MultipleChoiceField):
        return serializers.MultipleChoiceField(choices=list(field.choices), **options)
    if isinstance(field, forms.ChoiceField) and list(field.choices):
        return serializers.ChoiceField(choices=list(field.choices), allow_blank=not field.required, **options)
    if isinstance(field, forms.BooleanField):
        return serializers.BooleanField(**{**options, "required": False, "default": bool(field.initial)})
    bounds = {"min_value": getattr(field, "min_value", None), "max_value": getattr(field, "max_value", None)}
    if isinstance(field, forms.IntegerField):
        return serializers.IntegerField(allow_null=not field.required, **bounds, **options)
    if isinstance(field, forms.FloatField):
        return serializers.FloatField(allow_null=not field.required, **bounds, **options)
    return serializers.CharField(max_length=getattr(field, "max_length", None), allow_blank=not field.required,
                                 **options)


def request_serializer(form_class: type[forms.BaseForm], name: str) -> type[serializers.Serializer]:
    """A serializer class named `name` documenting `form_class`'s fields as the API takes them."""
    fields = {key: _schema_field(field) for key, field in form_class.base_fields.items()}
    return type(name, (serializers.Serializer,), {**fields, "__doc__": f"The fields of {form_class.__name__}."})
