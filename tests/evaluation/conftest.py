"""Fixtures of the evaluation tests: one tiny model per session (built locally, never downloaded)."""
from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.tiny_models import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-qwen2")


@pytest.fixture(scope="session")
def tiny_engine(tiny_model_dir: Path):
    from evaluation.engine import ScoringEngine

    return ScoringEngine(tiny_model_dir, device="cpu")


@pytest.fixture(scope="session")
def reward_models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One directory holding two tiny reward models: `random` (random weights) and `exclaiming`
    (rewards "!", see tests/evaluation/reward_models.py)."""
    from tests.evaluation.reward_models import (
        build_exclaiming_reward_model,
        build_tiny_reward_model,
    )

    root = tmp_path_factory.mktemp("reward-models")
    build_tiny_reward_model(root / "random")
    build_exclaiming_reward_model(root / "exclaiming")
    return root
