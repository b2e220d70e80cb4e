"""The ranking widget by mouse, touch and keyboard in a real Chromium (issue 9): inserting between
ranks, tapping a response then a place on a phone, the next prompt scrolled into view after a
submit, skipping then reopening, ranks 10-16 by keyboard, and the key legend hidden on touch."""
from __future__ import annotations

import os

import pytest

from annotation.models import Assignment, Item, Membership, Ranking
from annotation.services import add_member, create_item, create_project
from tests.browser.test_annotate import SCREEN_TIERS, drag, leased, tab_to, wait_for_next_item

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def open_annotate(page, log_in, live_server, project) -> None:
    log_in(page, "annie", "annie-pass-123")
    page.goto(f"{live_server.url}/annotate/{project.public_id}/")
    page.wait_for_selector("[data-ranking-form][data-ready]")


def shot(page, tmp_path, name: str) -> None:
    page.screenshot(path=os.path.join(os.environ.get("RLCHF_SCREENSHOT_DIR") or str(tmp_path), name), full_page=True)


def test_mouse_drop_between_ranks_inserts_and_drop_on_a_rank_ties(new_page, log_in, live_server, project, annotator,
                                                                   console_errors, tmp_path):
    page = new_page(1100, 1300)
    open_annotate(page, log_in, live_server, project)
    first = leased(annotator)
    s = first.shown_order
    for n in range(3):
        drag(page, s[n], str(n))
    assert page.evaluate(SCREEN_TIERS) == [[s[0]], [s[1]], [s[2]]]
    assert page.locator('.rank-gap[data-gap="1"]').is_visible()
    assert not page.locator('.rank-gap[data-gap="3"]').is_visible()  # below the last rank: the empty rank is the place
    drag(page, s[3], "gap-1")  # between ranks 1 and 2: a rank of its own, the others move down
    assert page.evaluate(SCREEN_TIERS) == [[s[0]], [s[3]], [s[1]], [s[2]]]
    drag(page, s[0], "gap-3")  # down, between the ranks now 3 and 4
    assert page.evaluate(SCREEN_TIERS) == [[s[3]], [s[1]], [s[0]], [s[2]]]
    drag(page, s[2], "0")  # onto a filled rank: a tie
    assert page.evaluate(SCREEN_TIERS) == [[s[3], s[2]], [s[1]], [s[0]]]
    # Click, then click a place: the mouse can do what a finger does.
    page.click(f'.response-card[data-response="{s[1]}"] .card-text')
    page.click('.rank-gap[data-gap="0"]')
    on_screen = page.evaluate(SCREEN_TIERS)
    assert on_screen == [[s[1]], [s[3], s[2]], [s[0]]]
    assert page.locator("#key-legend").is_visible() and not page.locator("#touch-legend").is_visible()
    shot(page, tmp_path, "insert-between-1100.png")
    page.click("[data-submit]")
    wait_for_next_item(page, first)
    assert Ranking.objects.get(assignment=first).order == on_screen
    assert console_errors == [], "\n".join(console_errors)


def test_tap_a_response_then_a_place_on_a_phone(new_page, log_in, live_server, project, annotator, console_errors,
                                                tmp_path):
    page = new_page(375, 740, has_touch=True, is_mobile=True)
    open_annotate(page, log_in, live_server, project)
    assert not page.locator("#key-legend").is_visible()  # no keys on a touch-only device
    assert page.locator("#touch-legend").is_visible()
    first = leased(annotator)
    s = first.shown_order

    def tap_card(rid: str) -> None:
        page.tap(f'.response-card[data-response="{rid}"] .card-text')

    tap_card(s[2])
    assert "selected" in page.inner_text("[data-tap-hint]")
    shot(page, tmp_path, "tap-selected-375.png")
    page.tap('.rank-slot[data-slot="0"] .slot-label')
    tap_card(s[0])
    page.tap('.rank-slot[data-slot="1"] .slot-label')
    assert page.evaluate(SCREEN_TIERS) == [[s[2]], [s[0]]]
    tap_card(s[3])
    page.tap('.rank-gap[data-gap="1"]')  # between the two ranks: inserted, s0 moves down
    assert page.evaluate(SCREEN_TIERS) == [[s[2]], [s[3]], [s[0]]]
    tap_card(s[1])
    tap_card(s[0])  # a ranked response while another is selected: its rank is the place, a tie
    assert page.evaluate(SCREEN_TIERS) == [[s[2]], [s[3]], [s[0], s[1]]]
    tap_card(s[3])
    tap_card(s[3])  # tapped again: the selection is cancelled, nothing moves
    assert page.inner_text("[data-tap-hint]") == ""
    tap_card(s[2])
    page.tap(".rank-pool .pool-title")  # back to unranked
    assert page.evaluate(SCREEN_TIERS) == [[s[3]], [s[0], s[1]]]
    tap_card(s[2])
    page.tap('.rank-gap[data-gap="0"]')
    on_screen = page.evaluate(SCREEN_TIERS)
    assert on_screen == [[s[2]], [s[3]], [s[0], s[1]]]
    overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"page scrolls sideways by {overflow}px at 375px"
    shot(page, tmp_path, "tap-ranked-375.png")
    page.tap("[data-submit]")
    wait_for_next_item(page, first)
    assert Ranking.objects.get(assignment=first).order == on_screen
    assert console_errors == [], "\n".join(console_errors)


def test_after_a_submit_the_next_prompt_is_in_view(new_page, log_in, live_server, project, annotator, console_errors):
    long = "A long answer that goes on and on. " * 60
    for item in Item.objects.filter(project=project):
        item.responses.update(text=long)
    page = new_page(1100, 700)
    open_annotate(page, log_in, live_server, project)
    first = leased(annotator)
    for n, rid in enumerate(first.shown_order):
        tab_to(page, rid)
        page.keyboard.press(str(n + 1))
    page.locator("[data-submit]").scroll_into_view_if_needed()
    assert page.evaluate("() => window.scrollY") > 1500  # the submit button is far below the prompt
    page.click("[data-submit]")
    wait_for_next_item(page, first)
    page.wait_for_function("() => { const r = document.getElementById('item-prompt').getBoundingClientRect();"
                           " return r.top >= 0 && r.bottom <= window.innerHeight; }")
    assert page.evaluate("() => document.activeElement.classList.contains('response-card')")
    assert console_errors == [], "\n".join(console_errors)


def test_skip_then_reopen_from_my_rankings(new_page, log_in, live_server, project, annotator, console_errors):
    page = new_page(1100, 1300)
    open_annotate(page, log_in, live_server, project)
    skipped = leased(annotator)
    page.click("[data-skip]")
    wait_for_next_item(page, skipped)
    assert "Remaining 2 · Skipped 1" in page.inner_text("#annotate-progress")
    page.click("#annotate-progress a")  # "Skipped 1" leads to the skipped items
    page.wait_for_selector("#skipped")
    page.click(f'[data-skipped="{skipped.item.external_id}"] button:has-text("Reopen")')
    page.wait_for_selector("[data-ranking-form][data-ready]")
    assert "Item reopened" in page.inner_text(".messages")
    assert "Remaining 3 · Skipped 0" in page.inner_text("#annotate-progress")
    seen = []
    while True:  # rank on: the reopened item comes back
        current = leased(annotator)
        seen.append(current.item_id)
        for n, rid in enumerate(current.shown_order):
            tab_to(page, rid)
            page.keyboard.press(str(n + 1))
        page.keyboard.press("Enter")
        if len(seen) == 3:
            page.wait_for_selector("[data-state=all-done]")
            break
        wait_for_next_item(page, current)
    assert skipped.item_id in seen
    assert "Done 3 · Remaining 0 · Skipped 0" in page.inner_text("#annotate-progress")
    assert Assignment.objects.get(pk=skipped.pk).status == Assignment.Status.REOPENED
    assert console_errors == [], "\n".join(console_errors)


def test_ranks_10_to_12_by_keyboard_on_a_12_response_item(new_page, log_in, live_server, owner, annotator,
                                                          console_errors, tmp_path):
    big = create_project(owner=owner, name="Twelve", overlap_target=1, status="active")
    add_member(project=big, user=annotator, role=Membership.Role.ANNOTATOR)
    create_item(project=big, external_id="twelve", prompt="Order these.",
                responses=[{"id": f"r{k}", "text": f"Response number {k}"} for k in range(12)])
    page = new_page(1100, 900)
    open_annotate(page, log_in, live_server, big)
    assert "two digits quickly for rank 10–12" in page.inner_text("#key-legend")
    lease = leased(annotator)
    s = lease.shown_order
    for n, rid in enumerate(s):
        tab_to(page, rid)
        page.keyboard.type(str(n + 1))  # "10", "11", "12": two digits in quick succession
    assert page.evaluate(SCREEN_TIERS) == [[r] for r in s]
    tab_to(page, s[0])
    page.keyboard.type("12")  # the first response to the last rank; the others move up
    assert page.evaluate(SCREEN_TIERS) == [[r] for r in s[1:] + s[:1]]
    tab_to(page, s[5])
    page.keyboard.press("1")
    page.wait_for_timeout(1000)
    page.keyboard.press("1")  # typed slowly: rank 1, then rank 1 again, never rank 11
    assert page.evaluate(SCREEN_TIERS)[0] == [s[5]]
    tab_to(page, s[6])
    page.keyboard.type("13")  # no such rank: "1" stands, and the page says why
    page.wait_for_function("() => document.getElementById('ranking-live').textContent.includes('There is no rank 13')")
    on_screen = page.evaluate(SCREEN_TIERS)
    assert on_screen[:2] == [[s[6]], [s[5]]] and len(on_screen) == 12
    shot(page, tmp_path, "twelve-1100.png")
    page.keyboard.press("Enter")
    page.wait_for_selector("[data-state=all-done]")
    assert Ranking.objects.get(assignment=lease).order == on_screen
    assert console_errors == [], "\n".join(console_errors)
