"""Models a researcher can pick for a synthetic rating run, a generation run or the panel
generator, besides typing a path: the prepared default model, then what other apps provide.

The model registry lives in `training`, which may import `synthetic` but not the other way round
(ARCHITECTURE.md). So `training` registers a provider here from its AppConfig.ready(); this module
knows nothing of training. A provider is a function `(project, user) -> list[ModelChoice]` that
returns only what that user may use in that project (it is the permission check: a form offers
exactly these choices and accepts no other key).

A choice is only a shortcut to a path: the path is validated as a typed one is (jobs.paths model
roots, the backend's own checks). A run started from a choice keeps the choice's `record` in its
config (which model, from where, with its lineage), so the run says which registered model it used.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings

DEFAULT_MODEL_NAME = "smollm2-135m-instruct"


@dataclass(frozen=True)
class ModelChoice:
    key: str  # unique among one form's choices: "<provider>:<id>"
    label: str
    path: str
    record: dict[str, Any] = field(default_factory=dict)  # stored on the run that uses it


Provider = Callable[[Any, Any], list[ModelChoice]]
_providers: dict[str, Provider] = {}


def register_provider(name: str, provider: Provider) -> None:
    """Add (or replace: ready() may run twice in tests) the provider called `name`."""
    _providers[name] = provider


def default_model_dir() -> str:
    return str(Path(settings.MODELS_DIR) / DEFAULT_MODEL_NAME)


def default_choice() -> ModelChoice | None:
    """The prepared default model, where this server has it."""
    path = default_model_dir()
    if not Path(path).exists():
        return None
    return ModelChoice(key="default:" + DEFAULT_MODEL_NAME, label=f"{DEFAULT_MODEL_NAME} (default model)", path=path,
                       record={"provider": "default", "name": DEFAULT_MODEL_NAME, "path": path})


def model_choices(project: Any, user: Any) -> list[ModelChoice]:
    """The default model first, then every provider's choices for `user` in `project`."""
    choices = [c for c in [default_choice()] if c is not None]
    for provider in _providers.values():
        choices += provider(project, user)
    return choices
