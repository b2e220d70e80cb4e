"""The review page in a real Chromium: charts draw from the locally served plotly.js, the rule and
pool switchers swap the page body (htmx) and the charts draw again, with no console error, at
desktop and phone width; the item review page opens from the same project, keeps the pool and
switches it."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.urls import reverse

import socialchoice
from aggregation.services import save_pool
from tests.aggregation.test_review_views import small_world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SHOTS = os.environ.get("RLCHF_SCREENSHOTS")  # a directory: save screenshots there to look at them


def _shot(page: object, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


def _fits(page: object) -> bool:
    """Nothing widens the page beyond the window (no sideways scrolling)."""
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


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
    # A content-hash id as the demo's: it must wrap, not widen a phone page.
    world.items[0].external_id = "hh-sha256-" + "0123456789abcdef" * 2
    world.items[0].save(update_fields=["external_id"])
    page = new_page(width=width, height=900)
    page.set_default_timeout(60_000)  # the page computes every statistic per request; CI machines are shared
    log_in(page, "owner", "owner-pass-123")
    page.goto(live_server.url + reverse("aggregation-project-review", args=[world.project.public_id]))
    drawn = _charts_drawn(page)
    assert drawn >= 6
    assert _fits(page)
    assert page.locator("#rule").input_value() == socialchoice.DEFAULT_RULE
    _shot(page, f"review-{width}-ranked_pairs")

    other = "borda" if socialchoice.DEFAULT_RULE != "borda" else "copeland"
    with page.expect_response(lambda r: f"rule={other}" in r.url and r.status == 200):
        page.select_option("#rule", other)
    page.wait_for_function(f"() => document.querySelector('#scorecard .muted').textContent.includes('({other})')")
    assert _charts_drawn(page) == drawn
    assert f"rule={other}" in page.url  # the switch is in the address bar, so a reload keeps it
    assert page.locator("#rule").input_value() == other
    _shot(page, f"review-{width}-{other}")

    # Another pool: the humans only. The body says so; the scorecard, the twin chart and the
    # human x persona heatmap (no personas left) give way to a sentence.
    save_pool(project=world.project, user=owner, data={"name": "humans", "kinds": "humans"})
    save_pool(project=world.project, user=owner, data={"name": "personas x3", "synthetic_weight": 3.0})
    page.reload()
    _charts_drawn(page)
    with page.expect_response(lambda r: "pool=humans" in r.url and r.status == 200):
        page.select_option("#pool", "humans")
    page.wait_for_function("() => document.querySelector('#review-body p strong').textContent === 'humans'")
    assert _charts_drawn(page) == drawn - 3
    assert "pool=humans" in page.url and f"rule={other}" in page.url
    assert page.locator("#twins .chart, #scorecard .chart, [data-figure=chart-heatmap]").count() == 0
    assert f"pool=humans&rule={other}&csv=rules" in page.locator("#rules figcaption a").get_attribute("href")
    _shot(page, f"review-{width}-humans-{other}")
    with page.expect_response(lambda r: "rule=schulze" in r.url and r.status == 200):
        page.select_option("#rule", "schulze")
    page.wait_for_function("() => document.querySelector('#scorecard .muted').textContent.includes('(schulze)')")
    _charts_drawn(page)
    with page.expect_response(lambda r: "pool=personas" in r.url and r.status == 200):
        page.select_option("#pool", "personas x3")
    page.wait_for_function("() => document.querySelector('#review-body p strong').textContent === 'personas x3'")
    assert _charts_drawn(page) == drawn
    _shot(page, f"review-{width}-personas-x3-schulze")

    item = reverse("aggregation-item-review", args=[world.project.public_id, world.items[0].pk])
    page.goto(live_server.url + item + "?pool=humans&rule=schulze")
    assert page.locator("#pool").input_value() == "humans" and page.locator("#rule").input_value() == "schulze"
    assert page.locator("#collectives tbody tr").count() >= 10
    assert page.locator("#rankings tbody tr").count() == len(world.humans) + len(world.synthetic)
    assert page.locator("#rankings tbody tr", has_text="not counted").count() == len(world.synthetic)
    assert _fits(page)
    _shot(page, f"review-item-{width}-humans")
    with page.expect_navigation():
        page.select_option("#pool", "all")
    assert "pool=all" in page.url and "rule=schulze" in page.url
    assert page.locator("#rankings tbody tr", has_text="not counted").count() == 0
    _shot(page, f"review-item-{width}")
    page.click("text=← Project review")
    page.wait_for_url("**pool=all&rule=schulze")
    _charts_drawn(page)
    assert console_errors == []
