from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def var_dir(tmp_path, settings):
    """Snapshots go to a fresh directory per test."""
    settings.VAR_DIR = tmp_path / "var"
    settings.VAR_DIR.mkdir()
    settings.SNAPSHOTS_DIR = settings.VAR_DIR / "snapshots"
    return settings.VAR_DIR
