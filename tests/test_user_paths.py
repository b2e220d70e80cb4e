"""No user-supplied path names a secret or a file outside the operator's model roots (jobs.paths).

Every entry point where a researcher types a model path (synthetic and generation runs, persona
descriptions, base-model registration, evaluation configs) refuses the same table of escapes, in
the form, the service and the page alike, names the field and the allowed roots, and changes
nothing; a directory under the models directory (or an operator's extra root) is accepted.
There is no API endpoint that takes a path (training and evaluation have none; synthetic none).
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.urls import reverse

from jobs import paths
from jobs.models import Run

pytestmark = pytest.mark.django_db

REFUSED = "is outside the allowed directories"


@pytest.fixture
def researcher(owner):
    from django.contrib.auth.models import Permission

    owner.user_permissions.add(Permission.objects.get(codename="add_project"))
    return owner


@pytest.fixture
def roots(tmp_path, settings):
    """A tmp models dir holding model `m` and two symlinks that point out of it, an outside model."""
    models, outside = tmp_path / "models", tmp_path / "outside"
    for d in (models / "m", outside / "m"):
        d.mkdir(parents=True)
        (d / "config.json").write_text("{}")
    (models / "escape").symlink_to(outside / "m", target_is_directory=True)
    (models / "passwd").symlink_to("/etc/passwd")
    settings.MODELS_DIR, settings.ARTIFACTS_DIR, settings.EXTRA_MODEL_DIRS = models, tmp_path / "artifacts", []
    return {"models": models, "outside": outside, "good": models / "m"}


def bad_paths(roots: dict[str, Path]) -> dict[str, str]:
    models, outside = roots["models"], roots["outside"]
    return {
        "absolute-outside": str(outside / "m"),
        "dotdot-escape": str(models / ".." / "outside" / "m"),
        "relative-dotdot": "../outside/m",
        "symlink-escape": str(models / "escape"),
        "symlink-to-secret": str(models / "passwd"),
        "etc-passwd": "/etc/passwd",
        "project-dotenv": str(Path(django_settings.BASE_DIR) / ".env"),
        "sqlite-db": str(Path(django_settings.VAR_DIR) / "db.sqlite3"),
        "home-dir": "~/.ssh/id_rsa",
    }


BAD = ["absolute-outside", "dotdot-escape", "relative-dotdot", "symlink-escape", "symlink-to-secret",
       "etc-passwd", "project-dotenv", "sqlite-db", "home-dir"]


# ---------------------------------------------------------------- the helper


@pytest.mark.parametrize("case", BAD)
def test_the_helper_refuses_naming_the_field_and_the_roots(roots, case):
    with pytest.raises(paths.PathNotAllowed) as excinfo:
        paths.resolve_model_path(bad_paths(roots)[case], "models[2].model")
    message = str(excinfo.value)
    assert message.startswith("models[2].model: ") and REFUSED in message
    assert str(roots["models"].resolve()) in message and "RLCHF_EXTRA_MODEL_DIRS" in message


@pytest.mark.parametrize("value", ["", "   ", None, 3, "a\x00b"])
def test_the_helper_refuses_non_paths(roots, value):
    with pytest.raises(paths.PathNotAllowed, match="^model: "):
        paths.resolve_model_path(value)


def test_the_helper_accepts_the_models_dir_and_an_operator_extra_root(roots, settings):
    assert paths.resolve_model_path(str(roots["good"])) == roots["good"].resolve()
    assert paths.resolve_model_path("m", relative_to=roots["models"]) == roots["good"].resolve()
    with pytest.raises(paths.PathNotAllowed):
        paths.resolve_model_path(str(roots["outside"] / "m"))
    settings.EXTRA_MODEL_DIRS = [roots["outside"]]
    assert paths.resolve_model_path(str(roots["outside"] / "m")) == (roots["outside"] / "m").resolve()


def test_a_model_under_the_default_models_directory_is_accepted_with_default_settings():
    default = Path(django_settings.MODELS_DIR) / "test-user-paths-model"
    default.mkdir(parents=True, exist_ok=True)
    try:
        assert paths.resolve_model_path(str(default)) == default.resolve()
        assert paths.resolve_model_path("var/models/test-user-paths-model") == default.resolve()
    finally:
        default.rmdir()


def test_the_setting_reads_a_comma_separated_list(monkeypatch):
    from config.env import env_list

    monkeypatch.setenv("RLCHF_EXTRA_MODEL_DIRS", "/srv/models, /mnt/shared")
    assert env_list("RLCHF_EXTRA_MODEL_DIRS", []) == ["/srv/models", "/mnt/shared"]


# ---------------------------------------------------------------- synthetic


def _backend_form(model: str, engine: str = "transformers") -> dict[str, object]:
    return {"engine": engine, "model": model, "device": "auto", "batch_size": 8}


@pytest.mark.parametrize("case", BAD)
def test_synthetic_forms_refuse(roots, case):
    from synthetic.forms import BackendFields, GenerationRunForm

    form = BackendFields(data=_backend_form(bad_paths(roots)[case]))
    assert not form.is_valid() and REFUSED in form.errors["model"][0]
    gen = GenerationRunForm(data={**_backend_form(bad_paths(roots)[case]), "text": '{"prompt": "p"}', "k": 2,
                                  "temperature": 0.8, "top_p": 0.9, "max_new_tokens": 8, "seed": 0})
    assert not gen.is_valid() and REFUSED in gen.errors["model"][0]


def test_synthetic_form_accepts_a_model_under_the_models_dir_and_openai_names(roots):
    from synthetic.forms import BackendFields

    assert BackendFields(data=_backend_form(str(roots["good"]))).is_valid()
    # A served model name is not a path: the engine never opens it.
    form = BackendFields(data={**_backend_form("/etc/passwd", engine="openai")})
    form.is_valid()
    assert "model" not in form.errors


@pytest.fixture
def panel(owner):
    from synthetic.services import import_panel

    return import_panel(owner=owner, name="P", text='{"persona": "A nurse."}\n{"persona": "A student."}\n')


@pytest.mark.parametrize("case", BAD)
def test_synthetic_services_refuse_and_store_nothing(roots, owner, project, panel, case):
    from synthetic.models import GenerationRun, PersonaPanel, SyntheticRun
    from synthetic.services import (
        PanelError,
        SyntheticRunError,
        generate_panel,
        start_generation_run,
        start_synthetic_run,
    )

    bad = bad_paths(roots)[case]
    with pytest.raises(SyntheticRunError, match=f"^model: .*{REFUSED}"):
        start_synthetic_run(method="listwise", owner=owner, project=project, panel=panel, engine="transformers", model=bad)
    with pytest.raises(SyntheticRunError, match=rf"^models\[1\]\.model: .*{REFUSED}"):
        start_generation_run(owner=owner, project=project, prompts=[{"id": "a", "prompt": "p"}],
                             models=[{"engine": "transformers", "model": str(roots["good"])},
                                     {"engine": "vllm", "model": bad}])
    panels = PersonaPanel.objects.count()
    with pytest.raises(PanelError, match=REFUSED):
        generate_panel(owner=owner, name="D", size=2, describe_with={"engine": "transformers", "model": bad})
    assert PersonaPanel.objects.count() == panels
    assert not Run.objects.exists() and not SyntheticRun.objects.exists() and not GenerationRun.objects.exists()


def test_synthetic_services_accept_a_model_under_the_models_dir(roots, owner, project):
    from synthetic.services import start_generation_run

    grun = start_generation_run(owner=owner, project=project, prompts=[{"id": "a", "prompt": "p"}],
                                models=[{"engine": "transformers", "model": str(roots["good"])}], k=2)
    assert grun.run.kind == "generation"


@pytest.mark.parametrize("case", ["absolute-outside", "symlink-escape", "project-dotenv"])
def test_synthetic_pages_refuse_and_queue_nothing(client, roots, researcher, project, panel, case):
    client.force_login(researcher)
    bad = bad_paths(roots)[case]
    pid = project.public_id
    response = client.post(reverse("synthetic-generation-create", args=[pid]),
                           {**_backend_form(bad), "text": '{"prompt": "p"}', "k": 2, "temperature": 0.8,
                            "top_p": 0.9, "max_new_tokens": 8, "seed": 0})
    assert response.status_code == 400 and REFUSED in response.content.decode()
    response = client.post(reverse("synthetic-panel-generate", args=[pid]),
                           {**_backend_form(bad), "name": "R", "size": 2, "seed": 1, "describe_with_model": "on"})
    assert response.status_code == 400 and REFUSED in response.content.decode()
    response = client.post(reverse("synthetic-run-create", args=[pid]),
                           {**_backend_form(bad), "panel": panel.pk, "method": "listwise", "items": "all"})
    assert response.status_code == 400 and REFUSED in response.content.decode()
    assert not Run.objects.exists()


# ---------------------------------------------------------------- training


@pytest.mark.parametrize("case", BAD)
def test_training_registration_refuses(roots, owner, project, case):
    from training import services
    from training.forms import RegisterModelForm
    from training.models import RegisteredModel

    bad = bad_paths(roots)[case]
    form = RegisterModelForm(data={"name": "x", "path": bad})
    assert not form.is_valid() and REFUSED in form.errors["path"][0]
    with pytest.raises(services.TrainingError, match=f"^path: .*{REFUSED}"):
        services.register_base_model(owner=owner, project=project, name="x", path=bad)
    assert not RegisteredModel.objects.exists()


def test_training_registration_accepts_the_models_dir(roots, owner, project):
    from training import services
    from training.forms import RegisterModelForm

    assert RegisterModelForm(data={"name": "x", "path": "m"}).is_valid()
    model = services.register_base_model(owner=owner, project=project, name="x", path="m")
    assert model.path == str(roots["good"].resolve())


@pytest.mark.parametrize("case", ["absolute-outside", "symlink-escape", "etc-passwd"])
def test_training_register_page_refuses(client, roots, researcher, project, case):
    from training.models import RegisteredModel

    client.force_login(researcher)
    response = client.post(reverse("training-model-register", args=[project.public_id]),
                           {"name": "x", "path": bad_paths(roots)[case]})
    assert response.status_code == 400 and REFUSED in response.content.decode()
    assert not RegisteredModel.objects.exists()


# ---------------------------------------------------------------- evaluation


@pytest.mark.parametrize("case", BAD)
def test_evaluation_config_refuses(roots, case):
    from evaluation.runs import clean_config

    bad = bad_paths(roots)[case]
    with pytest.raises(ValueError, match=rf"^models\[0\]\.path: .*{REFUSED}"):
        clean_config({"models": [{"name": "a", "path": bad}], "benchmarks": [{"name": "crows_pairs"}]})
    with pytest.raises(ValueError, match=rf"^models\[0\]\.reference: .*{REFUSED}"):
        clean_config({"models": [{"name": "a", "path": str(roots["good"]), "reference": bad}],
                      "benchmarks": [{"name": "crows_pairs"}]})


def test_evaluation_page_refuses_and_queues_nothing(client, roots, researcher, project):
    client.force_login(researcher)
    config = {"models": [{"name": "a", "path": str(roots["models"] / "escape")}], "benchmarks": [{"name": "bbq"}]}
    response = client.post(reverse("evaluation-run-create", args=[project.public_id]),
                           {"config": json.dumps(config), "name": "x"})
    assert response.status_code == 400 and REFUSED in response.content.decode()
    assert not Run.objects.exists()
