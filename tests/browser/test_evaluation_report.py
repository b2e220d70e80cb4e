"""The evaluation report in a real Chromium: charts drawn by plotly.js from the static files,
no console errors, at desktop and phone width; the exported HTML works with no server at all."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission

from tests.evaluation.report_data import make_report_run

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def report_url(live_server, owner, project, tmp_path) -> str:
    owner.user_permissions.add(Permission.objects.get(codename="add_project"))
    erun = make_report_run(owner, project, tmp_path)
    return f"{live_server.url}/evaluation/projects/{project.public_id}/runs/{erun.pk}/"


@pytest.mark.parametrize("width", [1200, 375])
def test_report_renders_charts_without_console_errors(new_page, log_in, report_url, console_errors, width, tmp_path):
    page = new_page(width=width, height=900)
    log_in(page, "owner", "owner-pass-123")
    page.goto(report_url)
    page.wait_for_selector("#chart-1 .main-svg")
    assert page.locator("#report-charts .js-plotly-plot").count() == 2  # bbq accuracy, per-group accuracy
    assert page.locator("text=Welfare view").count() == 1
    shots = Path(os.environ.get("SCREENSHOT_DIR", tmp_path))
    page.screenshot(path=str(shots / f"evaluation-report-{width}.png"), full_page=True)
    assert console_errors == []


def test_exported_html_draws_its_charts_offline(new_page, log_in, report_url, console_errors, tmp_path):
    page = new_page()
    log_in(page, "owner", "owner-pass-123")
    html = page.request.get(report_url + "?format=html").text()
    report = tmp_path / "report.html"
    report.write_text(html)
    offline = new_page()
    offline.set_default_timeout(60_000)  # 4.8 MB of inlined plotly.js to parse
    offline.route("http*://**", lambda route: route.abort())  # nothing may be fetched from a server
    offline.goto(report.as_uri())
    offline.wait_for_selector("#chart-1 .main-svg")
    assert offline.locator("#report-charts .js-plotly-plot").count() == 2
    assert console_errors == []
