"""The synthetic run form in Chromium: the model select lists the default model first and the
project's registered models; choosing one writes its directory into the path field (typing another
path turns the select back); the run starts from it and its summary names the registered model."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.urls import reverse

from synthetic.models import SyntheticRun
from tests.synthetic_app.conftest import PERSONAS_JSONL

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = os.environ.get("RLCHF_SCREENSHOTS")  # a directory: save screenshots there to look at them


def _shot(page: object, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def _model_dir(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")  # passes the path and backend checks; never loaded here
    return path


def test_run_form_offers_registered_models_and_starts_a_run(new_page, log_in, live_server, console_errors, owner,
                                                            project, settings, tmp_path):
    from synthetic.services import import_panel
    from training.services import register_base_model

    settings.MODELS_DIR = tmp_path / "models"
    default = _model_dir(settings.MODELS_DIR / "smollm2-135m-instruct")
    model = register_base_model(owner=owner, project=project, name="tiny-base",
                                path=str(_model_dir(settings.MODELS_DIR / "tiny")))
    panel = import_panel(owner=owner, name="Mixed", text=PERSONAS_JSONL, project=project)

    page = new_page()
    page.set_default_timeout(30_000)
    log_in(page, "owner", "owner-pass-123")
    page.goto(live_server.url + reverse("synthetic-run-create", args=[project.public_id]))
    labels = page.locator("#id_registered_model option").all_inner_texts()
    assert labels == ["(the path typed below)", "smollm2-135m-instruct (default model)", "tiny-base (base model)"]
    assert page.input_value("#id_model") == str(default)

    page.select_option("#id_registered_model", label="tiny-base (base model)")
    assert page.input_value("#id_model") == model.path  # the script shows the directory that will be used
    page.fill("#id_model", str(default) + "-typed")
    assert page.input_value("#id_registered_model") == ""  # a typed path is no longer the choice
    page.select_option("#id_registered_model", label="tiny-base (base model)")
    page.select_option("#id_panel", str(panel.pk))
    _shot(page, "synthetic-run-form-registered-model")

    assert console_errors == []

    page.click("#run-form button[type=submit]")
    page.wait_for_url("**/jobs/runs/**")
    srun = SyntheticRun.objects.get()
    assert srun.model == model.path and srun.run.config["model_source"]["name"] == "tiny-base"
    # The jobs page's live updates need a websocket, which pytest-django's live server does not speak.
    page.goto("about:blank")
    console_errors.clear()

    page.goto(live_server.url + reverse("synthetic-run-summary", args=[project.public_id, srun.pk]))
    source = page.locator("#model-source")
    assert "tiny-base" in source.inner_text() and "recipe external" in source.inner_text()
    _shot(page, "synthetic-run-summary-registered-model")
    page.click("#model-source a")
    page.wait_for_url("**/training/**")
    assert page.locator("h1").inner_text() == "tiny-base"
    assert console_errors == []
