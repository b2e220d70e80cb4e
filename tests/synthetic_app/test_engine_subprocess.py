"""The default mode: the engine runs in a `manage.py synthetic_engine` child process that
stores judgments itself; a crash of the child fails the run, never the worker."""
from __future__ import annotations

import pytest

from annotation.models import Ranking, Rater
from jobs.models import Run
from jobs.runner import execute
from synthetic.models import Judgment
from synthetic.services import start_synthetic_run
from tests.jobs.conftest import _migrated_sqlite_template, shared_db  # noqa: F401  (fixtures)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def child_mode(settings, shared_db, monkeypatch):  # noqa: F811
    settings.SYNTHETIC_ENGINE_SUBPROCESS = True
    monkeypatch.setenv("DATABASE_URL", shared_db)  # the child opens the test's database
    return shared_db


def _project_and_panel():
    from django.contrib.auth import get_user_model

    from annotation.services import create_item, create_project
    from synthetic.services import import_panel

    owner = get_user_model().objects.create_user("res", password="x")
    project = create_project(owner=owner, name="Child", status="active")
    for n in range(2):
        create_item(project=project, external_id=f"i{n}", prompt=f"Q{n}?",
                    responses=[{"id": f"r{k}", "text": f"A{k}"} for k in range(1, 4)])
    panel = import_panel(owner=owner, name="P", text='{"persona": "One."}\n{"persona": "Two."}\n')
    return owner, project, panel


def test_the_child_process_stores_judgments_and_rankings(child_mode):
    owner, project, panel = _project_and_panel()
    srun = start_synthetic_run(method="listwise", owner=owner, project=project, panel=panel, engine="fake", model="fake-model")
    run = execute(srun.run.pk)
    assert run.status == Run.Status.SUCCEEDED, run.log
    assert "synthetic_engine synthetic" in run.log  # the command line the worker ran
    assert Judgment.objects.filter(run=srun).count() == 4
    assert Ranking.objects.filter(item__project=project, rater__kind=Rater.Kind.SYNTHETIC).count() == 4
    assert run.progress_done == 4 and run.progress_total == 4
    srun.refresh_from_db()
    assert srun.judgments_done == 4 and srun.first_shown_win_rate is not None


def test_an_engine_crash_in_the_child_fails_the_run_and_the_worker_goes_on(child_mode, tmp_path, settings,
                                                                          monkeypatch):
    # Model paths must lie under the models directory, in this process and in the engine's child.
    settings.MODELS_DIR = tmp_path
    monkeypatch.setenv("RLCHF_MODELS_DIR", str(tmp_path))
    owner, project, panel = _project_and_panel()
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.json").write_text("{not json")
    srun = start_synthetic_run(method="listwise", owner=owner, project=project, panel=panel, engine="transformers", model=str(broken))
    run = execute(srun.run.pk)
    assert run.status == Run.Status.FAILED
    assert "exited with code" in run.error
    assert not Judgment.objects.filter(run=srun).exists()
