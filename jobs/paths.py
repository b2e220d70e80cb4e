"""Where a path a user types may point: only under the directories the operator allows.

Every place a researcher supplies a filesystem path (a model directory or .gguf file for a run, a
base model to register, an evaluation model or data file) resolves it here first, in the form,
the service and the API alike, so a crafted request cannot name a secret (`.env`, the database,
`/etc/passwd`) or any file outside the project's directories. Symlinks and `..` are resolved
before the check, so neither can escape a root.

Model roots: settings.MODELS_DIR, settings.ARTIFACTS_DIR (trained models and checkpoints) and the
operator's EXTRA_MODEL_DIRS (env RLCHF_EXTRA_MODEL_DIRS, comma-separated). Management commands run
by the operator may still take free paths; they do not come through here.

Hub ids ("owner/name") are not paths: training takes them in their own field and a worker
fetches them. jobs is the right-most app, so every app may import this module.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from django.conf import settings


class PathNotAllowed(ValueError):
    """A user-supplied path outside the allowed roots; the message names the field and the roots."""


def model_roots() -> list[Path]:
    """The directories a user-supplied model path may lie under, resolved."""
    roots = [Path(settings.MODELS_DIR), Path(settings.ARTIFACTS_DIR)]
    roots += [Path(p) for p in getattr(settings, "EXTRA_MODEL_DIRS", []) if str(p).strip()]
    return _resolved(roots)


def data_roots() -> list[Path]:
    """The directories a user-supplied benchmark data file may lie under: the shipped data/ and
    VAR_DIR/benchmarks."""
    return _resolved([Path(settings.BASE_DIR) / "data", Path(settings.VAR_DIR) / "benchmarks"])


def _resolved(roots: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    for root in roots:
        resolved = Path(root).expanduser().resolve()
        if resolved not in out:
            out.append(resolved)
    return out


def resolve_under(
    value: object, field: str, roots: list[Path], *, relative_to: Path | None = None, hint: str = ""
) -> Path:
    """`value` resolved (symlinks and `..` followed), or PathNotAllowed naming `field` and the
    roots when it is empty, not text, or resolves outside every root. A relative path is taken
    from `relative_to` (default: the project directory BASE_DIR)."""
    where = ", ".join(str(r) for r in roots)
    if not isinstance(value, str) or not value.strip():
        raise PathNotAllowed(f"{field}: give a path under one of the allowed directories ({where})")
    if "\x00" in value:
        raise PathNotAllowed(f"{field}: {value!r} is not a path")
    path = Path(value.strip()).expanduser()
    if not path.is_absolute():
        path = Path(relative_to if relative_to is not None else settings.BASE_DIR) / path
    try:
        resolved = path.resolve()
    except (OSError, RuntimeError):  # a symlink loop
        raise PathNotAllowed(f"{field}: {value!r} cannot be resolved") from None
    if not any(resolved == root or resolved.is_relative_to(root) for root in roots):
        raise PathNotAllowed(f"{field}: {value!r} is outside the allowed directories ({where}){hint}")
    return resolved


def resolve_model_path(value: object, field: str = "model", *, relative_to: Path | None = None) -> Path:
    """A user-supplied model directory or .gguf file, resolved, under the model roots."""
    return resolve_under(value, field, model_roots(), relative_to=relative_to,
                         hint="; the operator can add directories with RLCHF_EXTRA_MODEL_DIRS")


def resolve_data_path(value: object, field: str = "path") -> Path:
    """A user-supplied benchmark data file or directory, resolved, under the data roots."""
    return resolve_under(value, field, data_roots())
