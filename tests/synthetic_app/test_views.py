"""Synthetic pages: researchers only (annotators 403, outsiders 404, anonymous to login)."""
from __future__ import annotations

import pytest
from django.urls import reverse

from jobs.models import Run
from jobs.runner import execute
from synthetic.models import PersonaPanel, SyntheticRun

# execute() closes connections that are inside a transaction: these tests commit for real.
pytestmark = pytest.mark.django_db(transaction=True)


def _urls(project, panel, srun=None):
    pid = project.public_id
    urls = [
        reverse("synthetic-panel-list", args=[pid]),
        reverse("synthetic-panel-import", args=[pid]),
        reverse("synthetic-panel-generate", args=[pid]),
        reverse("synthetic-panel-twins", args=[pid]),
        reverse("synthetic-panel-detail", args=[pid, panel.pk]),
        reverse("synthetic-run-list", args=[pid]),
        reverse("synthetic-run-create", args=[pid]),
        reverse("synthetic-generation-create", args=[pid]),
    ]
    if srun is not None:
        urls.append(reverse("synthetic-run-summary", args=[pid, srun.pk]))
    return urls


@pytest.fixture
def srun(owner, project, panel, fake):
    from synthetic.services import start_synthetic_run

    srun = start_synthetic_run(method="listwise", owner=owner, project=project, panel=panel, engine="test-fake", model="m",
                               backend_options={"options": {"invalid_every": 3}})
    execute(srun.run.pk)
    return srun


def test_researcher_sees_every_page(client, owner, project, panel, srun):
    client.force_login(owner)
    for url in _urls(project, panel, srun):
        assert client.get(url).status_code == 200, url


@pytest.mark.parametrize(("who", "status"), [("annotator", 403), ("outsider", 404)])
def test_annotators_get_403_and_outsiders_404(client, request, project, panel, srun, who, status):
    client.force_login(request.getfixturevalue(who))
    for url in _urls(project, panel, srun):
        assert client.get(url).status_code == status, url
        assert client.post(url, {"name": "x"}).status_code == status, url
    assert PersonaPanel.objects.count() == 1


def test_anonymous_is_sent_to_login(client, project, panel):
    for url in _urls(project, panel):
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_wrong_method_is_refused(client, owner, project, panel):
    client.force_login(owner)
    assert client.put(reverse("synthetic-panel-import", args=[project.public_id])).status_code == 405


def test_a_panel_of_another_users_is_404(client, owner, outsider, project):
    from synthetic.services import import_panel

    private = import_panel(owner=outsider, name="Private", text='{"persona": "secret"}')
    client.force_login(owner)
    assert client.get(reverse("synthetic-panel-detail", args=[project.public_id, private.pk])).status_code == 404


def test_import_shows_line_errors_and_stores_nothing(client, owner, project):
    client.force_login(owner)
    url = reverse("synthetic-panel-import", args=[project.public_id])
    response = client.post(url, {"name": "Bad", "text": '{"persona": "fine"}\n{"id": 3}\n'})
    assert response.status_code == 400
    assert "line 2" in response.content.decode()
    assert not PersonaPanel.objects.exists()
    response = client.post(url, {"name": "Good", "text": '{"persona": "fine"}\n'})
    panel = PersonaPanel.objects.get()
    assert response.status_code == 302 and panel.project == project and panel.owner == owner


def test_start_run_form_queues_a_run_and_redirects_to_the_jobs_page(client, owner, project, panel, tmp_path,
                                                                    settings):
    settings.MODELS_DIR = tmp_path / "models"
    client.force_login(owner)
    url = reverse("synthetic-run-create", args=[project.public_id])
    form = {"engine": "transformers", "model": str(tmp_path / "models" / "no-such-model"), "device": "auto", "batch_size": 8,
            "panel": panel.pk, "method": "listwise", "items": "list", "item_ids": "item-0, item-2",
            "sample_seed": 0, "tie_margin": 0.05, "temperature": 0, "seed": 3}
    response = client.post(url, form)
    assert response.status_code == 400
    assert "does not exist" in response.content.decode()
    assert not Run.objects.exists()
    page = client.get(url).content.decode()
    assert "smollm2-135m-instruct" in page  # the prepared default model is prefilled

    model_dir = tmp_path / "models" / "looks-like-a-model"  # passes the path check; never loaded here
    model_dir.mkdir(parents=True)
    (model_dir / "config.json").write_text("{}")
    response = client.post(url, {**form, "model": str(model_dir)})
    srun = SyntheticRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("jobs-run-detail", args=[srun.run.public_id])
    assert srun.item_ids == ["item-0", "item-2"] and srun.seed == 3


def test_run_summary_lists_judgments_failures_and_position_bias(client, owner, project, srun):
    client.force_login(owner)
    url = reverse("synthetic-run-summary", args=[project.public_id, srun.pk])
    srun.refresh_from_db()
    page = client.get(url).content.decode()
    assert reverse("jobs-run-detail", args=[srun.run.public_id]) in page
    assert "First shown wins" in page
    assert f'<dd id="parse-failures">{srun.parse_failures}</dd>' in page
    failures = client.get(url + "?failures=1").content.decode()
    assert failures.count("unparseable ranking") == srun.parse_failures > 0


def test_generate_and_twins_report_errors_in_the_form(client, owner, project):
    client.force_login(owner)
    response = client.post(reverse("synthetic-panel-twins", args=[project.public_id]), {"name": "Twins"})
    assert response.status_code == 400 and "consented" in response.content.decode()
    response = client.post(reverse("synthetic-panel-generate", args=[project.public_id]),
                           {"name": "Gen", "size": 4, "seed": 1})
    assert response.status_code == 302
    assert PersonaPanel.objects.get().personas.count() == 4
