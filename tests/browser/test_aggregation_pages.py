"""The pool form and snapshot pages in Chromium: a bad pool shows its cause, a good one saves;
a snapshot is frozen and diffed; at phone width too, with no console errors."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.aggregation.factories import random_world

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SHOTS = os.environ.get("RLCHF_SCREENSHOTS")


def _shot(page: object, name: str) -> None:
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


@pytest.fixture
def var_dir(tmp_path, settings):
    settings.VAR_DIR = tmp_path / "var"
    settings.VAR_DIR.mkdir()
    return settings.VAR_DIR


def test_pool_form_and_snapshot_pages(new_page, log_in, live_server, owner, console_errors, var_dir):
    world = random_world(owner, seed=61, n_items=6)
    p = world.project.public_id
    page = new_page()
    page.set_default_timeout(60_000)  # the shared test machine is often loaded
    log_in(page, "owner", "owner-pass-123")
    page.goto(f"{live_server.url}/aggregation/{p}/pools/new/")
    page.fill("input[name=name]", "Germans")
    page.fill("textarea[name=human_filters]", "country=DE\nreligion")
    page.click("#pool-form button[type=submit]")
    assert page.locator("text=line 2: write field=value1,value2").is_visible()
    page.fill("textarea[name=human_filters]", "country=US")
    page.select_option("select[name=kinds]", "humans")
    page.click("#pool-form button[type=submit]")
    assert page.locator("text=no rater with a positive weight is left").is_visible()
    _shot(page, "pool-form-error")
    page.fill("textarea[name=human_filters]", "country=DE,FR")
    page.click("#pool-form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/aggregation/{p}/pools/")
    assert page.locator("text=Pool Germans saved").is_visible()
    _shot(page, "pool-list")
    page.goto(f"{live_server.url}/aggregation/{p}/snapshots/")
    page.select_option("#snapshot-form select[name=rule]", "borda")
    page.click("#snapshot-form button[type=submit]")
    page.wait_for_url("**/aggregation/snapshots/*/")
    assert page.locator("text=frozen").is_visible()
    page.goto(f"{live_server.url}/aggregation/{p}/snapshots/")
    page.select_option("#snapshot-form select[name=rule]", "copeland")
    page.select_option("#snapshot-form select[name=pool]", "Germans")
    page.click("#snapshot-form button[type=submit]")
    page.wait_for_url("**/aggregation/snapshots/*/")
    page.click("text=Diff")
    assert page.locator("h2", has_text="Pairs flipped").is_visible()
    _shot(page, "snapshot-diff")
    phone = new_page(390, 800)
    phone.set_default_timeout(60_000)
    log_in(phone, "owner", "owner-pass-123")
    phone.goto(f"{live_server.url}/aggregation/{p}/collective/?rule=borda")
    assert phone.locator("text=6 ranked items").is_visible()
    _shot(phone, "collective-phone")
    # The refused forms answer 400 on purpose (Chromium logs that status); nothing else may fail.
    assert [e for e in console_errors if "status of 400" not in e] == []
