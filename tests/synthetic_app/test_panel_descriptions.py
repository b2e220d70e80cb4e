"""Generated panels with model-written descriptions: the service (one batched call, capped size,
engine failures store nothing) and the generate form's option (backend checked first)."""
from __future__ import annotations

import pytest
from django.urls import reverse

from synthetic import forms
from synthetic.backends import BackendError
from synthetic.models import Persona, PersonaPanel
from synthetic.services import MAX_DESCRIBED_PANEL_SIZE, PanelError, generate_panel

pytestmark = pytest.mark.django_db

FAKE = {"engine": "test-fake", "model": "m"}


def test_a_model_writes_every_description_in_one_call(owner, project, fake):
    panel = generate_panel(owner=owner, name="Described", size=5, seed=3, project=project, describe_with=FAKE)
    personas = list(panel.personas.all())
    assert fake.calls == [5] and fake.closed == 1
    assert all(p.description.startswith("Fake answer") for p in personas)
    assert {p.attributes["description_source"] for p in personas} == {"test-fake:m"}
    assert {"sex", "age", "country", "religion"} <= set(personas[0].attributes)
    assert panel.recipe["descriptions"] == {
        "model": "test-fake:m", "prompt_version": "persona_description_v1", "fallbacks": 0,
    }
    template = generate_panel(owner=owner, name="Template", size=5, seed=3, project=project)
    assert [p.attributes for p in template.personas.all()] == [
        {k: v for k, v in p.attributes.items() if k != "description_source"} for p in personas
    ]


def test_large_panels_and_failing_engines_store_nothing(owner, project, fake):
    with pytest.raises(PanelError, match=f"at most {MAX_DESCRIBED_PANEL_SIZE} personas"):
        generate_panel(owner=owner, name="Big", size=MAX_DESCRIBED_PANEL_SIZE + 1, describe_with=FAKE)
    assert fake.calls == []

    def fail(_: int) -> None:
        raise BackendError("server unreachable")

    fake.after_call = fail
    with pytest.raises(PanelError, match="server unreachable"):
        generate_panel(owner=owner, name="Broken", size=3, describe_with=FAKE)
    assert fake.closed == 1
    assert not PersonaPanel.objects.exists() and not Persona.objects.exists()


@pytest.fixture
def fake_choice(monkeypatch, fake):
    """The form offers the test-only engine (real pages list installed engines only)."""
    field = forms.PanelGenerateForm.base_fields["engine"]
    monkeypatch.setattr(field, "choices", [*forms.ENGINE_CHOICES, ("test-fake", "test fake")])
    return fake


def test_the_form_option_stores_model_written_descriptions(client, owner, project, fake_choice):
    client.force_login(owner)
    url = reverse("synthetic-panel-generate", args=[project.public_id])
    assert "Write descriptions with a model" in client.get(url).content.decode()
    response = client.post(url, {"name": "Rich", "size": 4, "seed": 1, "describe_with_model": "on",
                                 "engine": "test-fake", "model": "m", "device": "auto", "batch_size": 8})
    panel = PersonaPanel.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("synthetic-panel-detail", args=[project.public_id, panel.pk])
    assert all(p.description.startswith("Fake answer") for p in panel.personas.all())
    assert fake_choice.calls == [4]


def test_a_backend_that_cannot_run_is_a_form_error_and_nothing_is_saved(client, owner, project, fake_choice):
    client.force_login(owner)
    url = reverse("synthetic-panel-generate", args=[project.public_id])
    form = {"name": "Rich", "size": 4, "seed": 1, "describe_with_model": "on", "engine": "transformers",
            "model": "var/models/no-such-model", "device": "auto", "batch_size": 8}
    response = client.post(url, form)
    assert response.status_code == 400 and "does not exist" in response.content.decode()
    response = client.post(url, {**form, "model": "/etc/passwd"})
    assert response.status_code == 400 and "is outside the allowed directories" in response.content.decode()
    response = client.post(url, {**form, "model": ""})
    assert response.status_code == 400 and "Needed to write descriptions with a model" in response.content.decode()
    response = client.post(url, {**form, "engine": "test-fake", "size": MAX_DESCRIBED_PANEL_SIZE + 1})
    assert response.status_code == 400 and f"at most {MAX_DESCRIBED_PANEL_SIZE} personas" in response.content.decode()
    assert not PersonaPanel.objects.exists()
    assert fake_choice.calls == []
