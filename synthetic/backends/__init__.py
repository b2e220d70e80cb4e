"""Inference backends behind one small interface; engines are imported lazily by name.

from synthetic.backends import BackendConfig, load_backend
backend = load_backend(BackendConfig(engine="transformers", model="var/models/smollm2"))
"""

from __future__ import annotations

from synthetic.backends.base import (
    Backend,
    BackendConfig,
    BackendConfigError,
    BackendError,
    Conversation,
    GenerationOutput,
    GenerationParams,
    Message,
    RankingSpec,
    available_engines,
    config_problems,
    load_backend,
    loads_local_model,
    readiness_problems,
    register_backend,
    validate_config,
)

__all__ = [
    "Backend",
    "BackendConfig",
    "BackendConfigError",
    "BackendError",
    "Conversation",
    "GenerationOutput",
    "GenerationParams",
    "Message",
    "RankingSpec",
    "available_engines",
    "config_problems",
    "load_backend",
    "loads_local_model",
    "readiness_problems",
    "register_backend",
    "validate_config",
]
