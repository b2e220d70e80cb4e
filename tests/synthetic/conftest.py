"""Shared fixtures for the synthetic engine tests (pure: no Django, no network, no hub)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from synthetic.backends import Backend

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight 2-layer model directory, built once per test session."""
    from tests.tiny_models import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"))


@pytest.fixture(scope="session")
def tiny_backend(tiny_model_dir: Path) -> Backend:
    """The transformers engine on the tiny model (CPU)."""
    from synthetic.backends import BackendConfig, load_backend

    config = BackendConfig(
        engine="transformers", model=str(tiny_model_dir), device="cpu", batch_size=4
    )
    return load_backend(config)
