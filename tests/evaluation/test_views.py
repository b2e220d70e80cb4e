"""Evaluation pages: researchers of the project only (404 for everyone else, creating endpoints
too), starting a run from JSON with errors named, and the report with its four exports."""
from __future__ import annotations

import csv
import io
import json

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from jobs.models import Run
from tests.evaluation.report_data import make_report_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def researcher(owner):
    owner.user_permissions.add(Permission.objects.get(codename="add_project"))
    return owner


@pytest.fixture
def erun(researcher, project, tmp_path):
    return make_report_run(researcher, project, tmp_path)


def _urls(project, erun) -> list[str]:
    return [reverse("evaluation-run-list", args=[project.public_id]), reverse("evaluation-run-create", args=[project.public_id]),
            reverse("evaluation-run-report", args=[project.public_id, erun.pk])]


@pytest.mark.parametrize("who", ["outsider", "annotator", "owner_without_permission"])
def test_everyone_but_researchers_gets_404(client, project, erun, outsider, annotator, owner, who):
    user = {"outsider": outsider, "annotator": annotator, "owner_without_permission": owner}[who]
    if who == "owner_without_permission":
        owner.user_permissions.clear()
    client.force_login(user)
    for url in _urls(project, erun):
        assert client.get(url).status_code == 404, url
    before = Run.objects.count()
    assert client.post(_urls(project, erun)[1], {"config": "{}"}).status_code == 404
    assert Run.objects.count() == before


def test_anonymous_is_sent_to_login(client, project, erun):
    response = client.get(_urls(project, erun)[0])
    assert response.status_code == 302 and "/login" in response["Location"]


def test_list_and_form(client, researcher, project, erun):
    client.force_login(researcher)
    page = client.get(_urls(project, erun)[0]).content.decode()
    assert "feedfacecafebeef" in page and "dpo-human" in page
    form = client.get(_urls(project, erun)[1]).content.decode()
    assert "smollm2-135m-instruct" in form and "per_category" in form
    assert client.put(_urls(project, erun)[1]).status_code == 405


def test_bad_config_is_shown_with_where_and_nothing_is_created(client, researcher, project, erun):
    client.force_login(researcher)
    before = Run.objects.count()
    response = client.post(_urls(project, erun)[1], {"config": '{"models": [}'})
    assert response.status_code == 400 and "config is not valid JSON: line 1, column 13" in response.content.decode()
    response = client.post(_urls(project, erun)[1], {"config": json.dumps({"models": [{"name": "x", "path": "/etc"}], "benchmarks": []})})
    assert response.status_code == 400 and "models[0].path: &#x27;/etc&#x27; is outside the allowed directories" in response.content.decode()
    assert Run.objects.count() == before


def test_report_shows_every_number_with_interval_lineage_and_welfare(client, researcher, project, erun):
    client.force_login(researcher)
    page = client.get(_urls(project, erun)[2]).content.decode()
    assert "0.470" in page and "[0.440, 0.500]" in page
    assert "3f9a0c1d2e4b5a69" in page and "abc123def4567890" in page and "feedfacecafebeef" in page
    assert reverse("jobs-run-detail", args=[erun.run.public_id]) in page
    assert "/static/vendor/plotly.min.js" in page
    # welfare: dpo-human has mean 0.675 and worst 0.65 (KE); base mean 0.5, worst 0.4 (KE)
    assert page.index("0.675") < page.index("0.500</td>")


def test_exports(client, researcher, project, erun):
    client.force_login(researcher)
    url = _urls(project, erun)[2]
    rows = list(csv.DictReader(io.StringIO(client.get(url + "?format=csv").content.decode())))
    assert len(rows) == 7
    dpo = next(r for r in rows if r["model"] == "dpo-human" and r["metric"] == "accuracy" and r["scope"] == "overall")
    assert (dpo["value"], dpo["ci_low"], dpo["snapshot"], dpo["config_hash"], dpo["benchmark_version"]) == (
        "0.47", "0.44", "3f9a0c1d2e4b5a69", "feedfacecafebeef", "bbq-1")
    data = json.loads(client.get(url + "?format=json").content)
    assert data["welfare"][0]["model"] == "dpo-human" and data["welfare"][0]["worst_group"] == "country=KE"
    md = client.get(url + "?format=md").content.decode()
    assert "| bbq (bbq-1) | accuracy | overall | 0.410 [0.380, 0.440] | 0.470 [0.440, 0.500] |" in md
    html = client.get(url + "?format=html")
    assert html["Content-Disposition"].endswith('.html"')
    body = html.content.decode()
    assert "<script src=" not in body and "/static/" not in body and len(body) > 3_000_000  # plotly.js inlined
