"""Registered models as a synthetic rater's, a generation run's and the panel generator's model:
the forms offer the default model first, then the registry's models this researcher may use in
this project (training provides them through synthetic.model_choices, synthetic never imports
training); a choice is validated like a typed path, and the run records which model it used."""
from __future__ import annotations

import re

import pytest
from django.urls import reverse

from jobs.models import Run
from jobs.runner import execute
from synthetic import forms, services
from synthetic.backends import base as backends
from synthetic.models import GenerationRun, PersonaPanel, SyntheticRun
from tests.synthetic_app import fake_engine

# execute() closes connections that are inside a transaction: these tests commit for real.
pytestmark = pytest.mark.django_db(transaction=True)

DEFAULT_KEY = "default:smollm2-135m-instruct"


class LocalFake(fake_engine.RecordingBackend):
    """The recording fake engine, as an engine that opens a local model directory."""

    engine = "test-fake-local"
    loads_local_model = True


@pytest.fixture
def local_fake(monkeypatch, fake):
    monkeypatch.setitem(backends._REGISTRY, LocalFake.engine, f"{__name__}:LocalFake")
    field = forms.BackendFields.base_fields["engine"]
    monkeypatch.setattr(field, "choices", [*forms.ENGINE_CHOICES, (LocalFake.engine, "local fake")])
    return fake


def model_dir(root, name: str):
    path = root / name
    path.mkdir(parents=True)
    (path / "config.json").write_text("{}")  # passes the path and backend checks; never loaded here
    return path


@pytest.fixture
def models_dir(tmp_path, settings):
    settings.MODELS_DIR = tmp_path / "models"
    model_dir(settings.MODELS_DIR, "smollm2-135m-instruct")
    return settings.MODELS_DIR


@pytest.fixture
def registered(owner, project, models_dir):
    from training.services import register_base_model

    return register_base_model(owner=owner, project=project, name="tiny-base", path=str(model_dir(models_dir, "tiny")))


@pytest.fixture
def foreign(outsider, models_dir):
    """A model of another researcher's project."""
    from annotation.services import create_project
    from training.services import register_base_model

    elsewhere = create_project(owner=outsider, name="Elsewhere")
    return register_base_model(owner=outsider, project=elsewhere, name="foreign",
                               path=str(model_dir(models_dir, "foreign")))


def key(model) -> str:
    return f"registry:{model.public_id}"


def options(page: str) -> list[str]:
    select = re.search(r'<select name="registered_model".*?</select>', page, re.S)
    assert select, "no registered model select"
    return re.findall(r'<option value="([^"]*)"', select.group(0))


RUN_FORM = {"engine": "transformers", "model": "", "device": "auto", "batch_size": 8, "method": "listwise",
            "items": "all", "sample_seed": 0, "tie_margin": 0.05, "temperature": 0, "seed": 0}


def test_the_forms_offer_the_default_model_first_then_the_registry(client, owner, project, registered, foreign,
                                                                   models_dir):
    from training.services import register_base_model

    unowned = register_base_model(owner=owner, project=None, name="mine", path=str(model_dir(models_dir, "mine")))
    fetching = register_base_model(owner=owner, project=project, name="hub", hub_id="someone/model")
    client.force_login(owner)
    for name in ("synthetic-run-create", "synthetic-generation-create", "synthetic-panel-generate"):
        page = client.get(reverse(name, args=[project.public_id])).content.decode()
        values = options(page)
        assert values[:2] == ["", DEFAULT_KEY], name
        assert set(values[2:]) == {key(registered), key(unowned)}, name  # not another project's, not a fetching one
        assert f'data-path="{registered.path}"' in page and "tiny-base (base model)" in page
        assert key(foreign) not in page and key(fetching) not in page
        assert "js/model_choice.js" in page


def test_without_any_choice_the_forms_keep_only_the_path(client, owner, project, settings, tmp_path):
    settings.MODELS_DIR = tmp_path / "empty"
    client.force_login(owner)
    page = client.get(reverse("synthetic-run-create", args=[project.public_id])).content.decode()
    assert 'name="registered_model"' not in page and 'name="model"' in page


def test_a_run_started_from_a_registered_model_uses_and_records_it(client, owner, project, panel, registered,
                                                                   local_fake):
    client.force_login(owner)
    url = reverse("synthetic-run-create", args=[project.public_id])
    # The choice wins over whatever the path field still holds.
    form = {**RUN_FORM, "engine": LocalFake.engine, "panel": panel.pk, "registered_model": key(registered),
            "model": "left/over/path"}
    response = client.post(url, form)
    srun = SyntheticRun.objects.get()
    assert response.status_code == 302, response.content.decode()[:2000]
    assert srun.model == registered.path
    source = srun.run.config["model_source"]
    assert source["provider"] == "training" and source["id"] == str(registered.public_id)
    assert source["name"] == "tiny-base" and source["lineage"]["recipe"] == "external"
    assert source["url"] == reverse("training-model-detail", args=[project.public_id, registered.public_id])
    run = execute(srun.run.pk)
    assert run.status == Run.Status.SUCCEEDED, run.error
    assert local_fake.calls  # the engine ran on the registered model's directory
    summary = client.get(reverse("synthetic-run-summary", args=[project.public_id, srun.pk])).content.decode()
    assert 'id="model-source"' in summary and source["url"] in summary and "recipe external" in summary


def test_a_typed_path_of_a_registered_model_is_recorded_too(client, owner, project, panel, registered, models_dir):
    client.force_login(owner)
    url = reverse("synthetic-run-create", args=[project.public_id])
    assert client.post(url, {**RUN_FORM, "panel": panel.pk, "model": registered.path}).status_code == 302
    other = str(model_dir(models_dir, "unregistered"))
    assert client.post(url, {**RUN_FORM, "panel": panel.pk, "model": other}).status_code == 302
    first, second = SyntheticRun.objects.order_by("pk")
    assert first.run.config["model_source"]["id"] == str(registered.public_id)
    assert "model_source" not in second.run.config and second.model == other


def test_a_model_the_researcher_may_not_use_is_refused_and_nothing_stored(client, owner, project, panel, registered,
                                                                          foreign):
    client.force_login(owner)
    url = reverse("synthetic-run-create", args=[project.public_id])
    response = client.post(url, {**RUN_FORM, "panel": panel.pk, "registered_model": key(foreign)})
    assert response.status_code == 400
    assert "Select a valid choice" in " ".join(response.context["form"].errors["registered_model"])
    response = client.post(url, {**RUN_FORM, "panel": panel.pk, "engine": "openai", "registered_model": key(registered)})
    assert response.status_code == 400
    assert "the openai engine cannot load it" in " ".join(response.context["form"].errors["registered_model"])
    # The service checks again: a crafted call cannot borrow another project's model or mislabel a path.
    with pytest.raises(services.SyntheticRunError, match="registered_model: .* is not a model you can use"):
        services.start_synthetic_run(method="listwise", owner=owner, project=project, panel=panel, engine="transformers",
                                     model=foreign.path, registered_model=key(foreign))
    with pytest.raises(services.SyntheticRunError, match="registered_model: tiny-base .* is .*, not "):
        services.start_synthetic_run(method="listwise", owner=owner, project=project, panel=panel, engine="transformers",
                                     model=forms.default_model_dir(), registered_model=key(registered))
    assert not SyntheticRun.objects.exists() and not Run.objects.exists()


def test_a_generation_run_from_a_registered_model_runs_and_records_it(client, owner, project, registered, local_fake):
    client.force_login(owner)
    url = reverse("synthetic-generation-create", args=[project.public_id])
    form = {"engine": LocalFake.engine, "registered_model": key(registered), "model": "", "device": "auto",
            "batch_size": 8, "k": 2, "temperature": 0.8, "top_p": 0.95, "max_new_tokens": 16, "seed": 0,
            "text": '{"id": "g1", "prompt": "Hello?"}\n'}
    response = client.post(url, form)
    grun = GenerationRun.objects.get()
    assert response.status_code == 302, response.content.decode()[:2000]
    assert grun.models_config[0]["model"] == registered.path
    assert grun.models_config[0]["registered_model"] == key(registered)
    assert grun.run.config["model_sources"][0]["id"] == str(registered.public_id)
    run = execute(grun.run.pk)
    assert run.status == Run.Status.SUCCEEDED, run.error
    assert project.items.filter(external_id="g1").exists()


def test_the_panel_generator_writes_descriptions_with_a_registered_model(client, owner, project, registered,
                                                                        local_fake):
    client.force_login(owner)
    url = reverse("synthetic-panel-generate", args=[project.public_id])
    response = client.post(url, {"name": "Rich", "size": 3, "seed": 1, "describe_with_model": "on",
                                 "engine": LocalFake.engine, "registered_model": key(registered), "model": "",
                                 "device": "auto", "batch_size": 8})
    panel = PersonaPanel.objects.get()
    assert response.status_code == 302, response.content.decode()[:2000]
    assert local_fake.calls == [3]
    described = panel.recipe["descriptions"]
    assert described["model"] == f"{LocalFake.engine}:tiny"
    assert described["model_source"]["id"] == str(registered.public_id)
