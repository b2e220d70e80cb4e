"""Tiny local causal LMs for tests: the builder lives in `training.tiny` (the demo command uses it
too); this module keeps the tests' import path.

    from tests.tiny_models import build_tiny_model
    model_dir = build_tiny_model(tmp_path / "tiny")
"""
from __future__ import annotations

from training.tiny import (
    CHATML_TEMPLATE,
    DEFAULT_CORPUS,
    SPECIAL_TOKENS,
    TinyModelSpec,
    build_tiny_model,
    build_tiny_tokenizer,
)

__all__ = ["CHATML_TEMPLATE", "DEFAULT_CORPUS", "SPECIAL_TOKENS", "TinyModelSpec", "build_tiny_model",
           "build_tiny_tokenizer"]
