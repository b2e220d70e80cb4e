"""The review page in a real Chromium: charts draw from the locally served plotly.js, the rule
switcher swaps the page body (htmx) and the charts draw again, with no console error, at desktop
and phone width; the item review page opens from the same project."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.urls import reverse

from tests.aggregation.test_review_views import small_world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = os.environ.get("RLCHF_SCREENSHOTS")  # a directory: save screenshots there to look at them


def _shot(page: object, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def _charts_drawn(page: object) -> int:
    expected = page.locator("[data-figure]").count()
    page.wait_for_function(
        "n => document.querySelectorAll('[data-figure][data-drawn=true] .main-svg').length >= n", arg=expected,
        timeout=30_000,
    )
    return expected


@pytest.mark.parametrize("width", [1200, 390])
def test_review_page_draws_charts_and_switches_rule(new_page, log_in, live_server, console_errors, owner, width):
    world = small_world(owner)
    page = new_page(width=width, height=900)
    log_in(page, "owner", "owner-pass-123")
    page.goto(live_server.url + reverse("aggregation-project-review", args=[world.project.public_id]))
    drawn = _charts_drawn(page)
    assert drawn >= 6
    assert page.locator("#rule").input_value() == "ranked_pairs"
    _shot(page, f"review-{width}-ranked_pairs")

    with page.expect_response(lambda r: "rule=borda" in r.url and r.status == 200):
        page.select_option("#rule", "borda")
    page.wait_for_function("() => document.querySelector('#scorecard .muted').textContent.includes('borda')")
    assert _charts_drawn(page) == drawn
    assert "rule=borda" in page.url  # the switch is in the address bar, so a reload keeps it
    assert page.locator("#rule").input_value() == "borda"
    _shot(page, f"review-{width}-borda")

    page.goto(live_server.url + reverse("aggregation-item-review", args=[world.project.public_id, world.items[0].pk]))
    assert page.locator("#collectives tbody tr").count() >= 10
    assert page.locator("#rankings tbody tr").count() == len(world.humans) + len(world.synthetic)
    _shot(page, f"review-item-{width}")
    assert console_errors == []
