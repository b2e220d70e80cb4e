"""The run page in Chromium: live Plotly charts from the run's metrics, at desktop and phone width."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.training.conftest import TINY_HYPER, snapshot
from training import services

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True), pytest.mark.timeout(300)]


def test_run_page_draws_metric_charts_and_picks_up_new_steps(live_server, new_page, log_in, console_errors,
                                                             tiny_base, tmp_path):
    training = services.start_training(owner=tiny_base.owner, project=tiny_base.project, base_model=tiny_base,
                                       recipe="dpo", objective="group_robust", snapshot_id=snapshot(),
                                       hyperparameters=TINY_HYPER)
    out = Path(training.output_dir)
    out.mkdir(parents=True)
    rows = [{"step": s, "loss": 0.69 - 0.05 * s, "rewards/chosen": 0.01 * s, "rewards/rejected": -0.01 * s,
             "rewards/accuracies": 0.5, "rewards/margins": 0.02 * s, "learning_rate": 1e-3 / s,
             "worst_group_loss": 0.7 - 0.04 * s, "group_weight/country=DE": 0.5 + 0.01 * s,
             "group_weight/country=KE": 0.5 - 0.01 * s} for s in (1, 2)]
    (out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    page = new_page()
    page.set_default_timeout(30_000)  # plotly.min.js is 4.6 MB through the test server
    log_in(page, "res", "res-pass-123")
    page.goto(f"{live_server.url}/training/projects/{tiny_base.project.public_id}/runs/{training.run.public_id}/",
              wait_until="domcontentloaded")
    page.wait_for_selector("#chart-5 .main-svg")  # group weights, the last panel
    assert page.locator("#charts .js-plotly-plot").count() == 6
    assert "country=DE" in page.locator("#chart-5").inner_text()
    page.screenshot(path=str(tmp_path / "run-desktop.png"), full_page=True)
    # A step logged while the page is open appears at the next poll.
    with open(out / "metrics.jsonl", "a") as fh:
        fh.write(json.dumps({**rows[-1], "step": 3, "loss": 0.1}) + "\n")
    page.wait_for_function("document.getElementById('chart-0').data[0].x.length === 3", timeout=10_000)
    phone = new_page(390, 844)
    phone.set_default_timeout(30_000)
    log_in(phone, "res", "res-pass-123")
    phone.goto(page.url, wait_until="domcontentloaded")
    phone.wait_for_selector("#chart-0 .main-svg")
    width = phone.evaluate("document.documentElement.scrollWidth")
    phone.screenshot(path=str(tmp_path / "run-phone.png"), full_page=True)
    assert width <= 400, f"the page scrolls sideways on a phone ({width}px)"
    # The live status websocket needs the ASGI server (the jobs app's browser tests cover it); the
    # live_server here is WSGI, so only its handshake errors are expected.
    errors = [e for e in console_errors if "WebSocket" not in e and e != "console: [object Event]"]
    assert not errors, errors
