"""Training fixtures: a tiny model and contract snapshots under per-session directories that the
worker subprocesses also see (RLCHF_MODELS_DIR / RLCHF_SNAPSHOTS_DIR), a project with a researcher."""
from __future__ import annotations

from pathlib import Path

import pytest
from django.contrib.auth import get_user_model

from tests.browser.conftest import browser, console_errors, log_in, new_page  # noqa: F401  (lazy fixtures)
from tests.jobs.conftest import (  # noqa: F401  (fixtures shared with the jobs tests)
    _artifacts_in_tmp,
    _migrated_sqlite_template,
    shared_db,
    start_worker,
)
from tests.training.snapshots import write_snapshot


@pytest.fixture(scope="session")
def training_roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from tests.tiny_models import build_tiny_model

    root = tmp_path_factory.mktemp("training")
    models, snapshots = root / "models", root / "snapshots"
    build_tiny_model(models / "tiny")
    write_snapshot(snapshots)
    write_snapshot(snapshots, seed="synthetic")
    write_snapshot(snapshots, seed="both")
    write_snapshot(snapshots, seed="no-rankings", files=("pairs", "manifest"))
    return {"models": models, "snapshots": snapshots, "tiny": models / "tiny"}


@pytest.fixture
def training_dirs(training_roots, settings, monkeypatch) -> dict[str, Path]:
    settings.MODELS_DIR = training_roots["models"]
    settings.SNAPSHOTS_DIR = training_roots["snapshots"]
    monkeypatch.setenv("RLCHF_MODELS_DIR", str(training_roots["models"]))
    monkeypatch.setenv("RLCHF_SNAPSHOTS_DIR", str(training_roots["snapshots"]))
    return training_roots


def snapshot(seed: str = "test") -> str:
    from tests.training.snapshots import snapshot_id_for

    return snapshot_id_for(f"{seed}-8-3")


@pytest.fixture
def researcher_project(db):
    """A project owned by a researcher, with an annotator member and an outsider."""
    from annotation.models import Membership
    from annotation.services import add_member, create_project

    users = get_user_model().objects
    owner = users.create_user("res", password="res-pass-123")
    annotator = users.create_user("ann", password="ann-pass-123")
    users.create_user("out", password="out-pass-123")
    project = create_project(owner=owner, name="Train")
    add_member(project=project, user=annotator, role=Membership.Role.ANNOTATOR)
    return project


@pytest.fixture
def tiny_base(training_dirs, researcher_project):
    from training import services

    return services.register_base_model(owner=researcher_project.owner, project=researcher_project, name="tiny",
                                        path=str(training_dirs["tiny"]))


TINY_HYPER = {"max_steps": 3, "per_device_train_batch_size": 2, "learning_rate": 1e-3, "max_length": 64,
              "save_steps": 1000, "seed": 0}
