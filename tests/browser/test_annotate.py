"""The annotator's workflow in a real Chromium: rank by keyboard only, then by drag and drop with a
tie, and check that what is stored is exactly what was on screen."""
from __future__ import annotations

import os

import pytest

from annotation.models import Assignment, Project, Ranking

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

SCREEN_TIERS = """() => Array.from(document.querySelectorAll('.rank-slot'))
    .map(slot => Array.from(slot.querySelectorAll('.response-card')).map(c => c.dataset.response))
    .filter(group => group.length)"""
FOCUSED = "() => document.activeElement && document.activeElement.dataset ? document.activeElement.dataset.response : null"


def leased(user) -> Assignment:
    return Assignment.objects.get(rater__user=user, status=Assignment.Status.LEASED)


def stored_order(assignment: Assignment) -> list[list[str]]:
    return Ranking.objects.get(assignment=assignment).order


def tab_to(page, response_id: str) -> None:
    """Press Tab until the card of `response_id` has the focus (keyboard only)."""
    for _ in range(60):
        if page.evaluate(FOCUSED) == response_id:
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached response {response_id}")


def drag_points(page, response_id: str, slot: str) -> tuple[tuple[float, float], tuple[float, float]]:
    """Scroll both the card's handle and the target slot into view; return their centre points
    (the drop lands at 70% of the slot's width, inside it)."""
    where = f'[data-gap="{slot[4:]}"]' if slot.startswith("gap-") else f'[data-slot="{slot}"]'
    page.evaluate(
        """([id, where]) => {
            const a = document.querySelector(`.response-card[data-response="${id}"] .drag-handle`).getBoundingClientRect();
            const b = document.querySelector(where).getBoundingClientRect();
            window.scrollBy(0, (a.top + b.top) / 2 - window.innerHeight / 2);
        }""",
        [response_id, where],
    )
    handle = page.locator(f'.response-card[data-response="{response_id}"] .drag-handle').bounding_box()
    target = page.locator(where).bounding_box()
    start = (handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
    end = (target["x"] + target["width"] * 0.7, target["y"] + target["height"] / 2)
    return start, end


def drag(page, response_id: str, slot: str) -> None:
    """Drag a card by its handle onto a rank slot ("0" is rank 1), the unranked pool ("pool") or the
    gap before a rank ("gap-1": between ranks 1 and 2)."""
    start, end = drag_points(page, response_id, slot)
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(*end, steps=12)
    page.mouse.up()


def wait_for_next_item(page, previous: Assignment) -> None:
    page.wait_for_function(
        "(old) => { const f = document.querySelector('[data-ranking-form]'); return f && f.dataset.ready && f.dataset.assignment !== old; }",
        arg=str(previous.public_id),
    )


def test_rank_by_keyboard_then_by_drag_and_drop_with_a_tie(new_page, log_in, live_server, project, annotator,
                                                          console_errors):
    page = new_page(1100, 1300)
    log_in(page, "annie", "annie-pass-123")
    assert "Done 0 · Remaining 3" in page.inner_text(f'[data-project="{project.public_id}"] .progress')
    page.click("text=Annotate")
    page.wait_for_selector("[data-ranking-form][data-ready]")
    first = leased(annotator)
    s = first.shown_order
    assert page.evaluate("() => Array.from(document.querySelectorAll('.response-card')).map(c => c.dataset.response)") == s

    # Keyboard only. Submitting with responses still unranked is refused on the page.
    tab_to(page, s[0])
    page.keyboard.press("Enter")
    assert "still unranked" in page.inner_text("#ranking-error")
    assert not Ranking.objects.exists()
    tab_to(page, s[2])
    page.keyboard.press("1")
    tab_to(page, s[0])
    page.keyboard.press("2")
    tab_to(page, s[3])
    page.keyboard.press("1")
    tab_to(page, s[1])
    page.keyboard.press("3")
    assert page.evaluate(SCREEN_TIERS) == [[s[3]], [s[2]], [s[1]], [s[0]]]
    page.keyboard.press("Alt+ArrowUp")  # s1 above s2
    page.keyboard.press("t")  # ... and tied with s3
    on_screen = page.evaluate(SCREEN_TIERS)
    assert on_screen == [[s[3], s[1]], [s[2]], [s[0]]]
    page.wait_for_function("() => document.getElementById('ranking-live').textContent.includes('tied with')")
    page.keyboard.press("Enter")
    wait_for_next_item(page, first)
    assert stored_order(first) == on_screen
    ranking = Ranking.objects.get(assignment=first)
    assert ranking.shown_order == s and ranking.seconds > 0
    assert "Done 1" in page.inner_text("#annotate-progress")

    # Drag and drop, with a tie made by dropping onto a filled rank; a reload keeps the work.
    second = leased(annotator)
    t = second.shown_order
    drag(page, t[0], "0")
    drag(page, t[1], "1")
    drag(page, t[2], "1")
    assert page.evaluate(SCREEN_TIERS) == [[t[0]], [t[1], t[2]]]
    page.reload()
    page.wait_for_selector("[data-ranking-form][data-ready]")
    assert page.evaluate(SCREEN_TIERS) == [[t[0]], [t[1], t[2]]]
    drag(page, t[3], "2")
    on_screen = page.evaluate(SCREEN_TIERS)
    assert on_screen == [[t[0]], [t[1], t[2]], [t[3]]]
    page.click("[data-submit]")
    wait_for_next_item(page, second)
    assert stored_order(second) == on_screen
    assert Ranking.objects.filter(rater__user=annotator).count() == 2
    assert "Done 2" in page.inner_text("#annotate-progress")

    # The last item: skip it by key, and the page says all is done.
    page.focus(".response-card")
    page.keyboard.press("s")
    page.wait_for_selector("[data-state=all-done]")
    assert "All done" in page.inner_text("#annotate-item")
    assert Ranking.objects.filter(rater__user=annotator).count() == 2
    assert console_errors == [], "\n".join(console_errors)


def touch_drag(page, response_id: str, slot: str) -> None:
    """Drag with a finger: raw touch events through the DevTools protocol (Playwright only taps)."""
    start, end = drag_points(page, response_id, slot)
    cdp = page.context.new_cdp_session(page)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": start[0], "y": start[1]}]})
    for step in range(1, 13):
        x = start[0] + (end[0] - start[0]) * step / 12
        y = start[1] + (end[1] - start[1]) * step / 12
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()


def test_widget_fits_a_375px_phone_and_works_by_touch(new_page, log_in, live_server, project, annotator,
                                                      console_errors, tmp_path):
    page = new_page(375, 800, has_touch=True, is_mobile=True)
    log_in(page, "annie", "annie-pass-123")
    page.goto(f"{live_server.url}/annotate/{project.public_id}/")
    page.wait_for_selector("[data-ranking-form][data-ready]")
    s = leased(annotator).shown_order
    shots = os.environ.get("RLCHF_SCREENSHOT_DIR") or str(tmp_path)
    page.screenshot(path=os.path.join(shots, "annotate-375-before.png"), full_page=True)
    touch_drag(page, s[1], "0")
    touch_drag(page, s[3], "0")  # a filled rank: a tie
    assert page.evaluate(SCREEN_TIERS) == [[s[1], s[3]]]
    overflow = page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"page scrolls sideways by {overflow}px at 375px"
    widget = page.locator(".ranking-widget").bounding_box()
    assert widget["x"] >= 0 and widget["x"] + widget["width"] <= 375
    page.screenshot(path=os.path.join(shots, "annotate-375.png"), full_page=True)
    assert console_errors == [], "\n".join(console_errors)


def test_no_ties_project_reorders_asks_for_rationale_and_keeps_work_when_refused(
    new_page, log_in, live_server, project, annotator, console_errors
):
    Project.objects.filter(pk=project.pk).update(allow_ties=False, rationale=Project.Rationale.REQUIRED)
    page = new_page(1100, 1300)
    log_in(page, "annie", "annie-pass-123")
    page.goto(f"{live_server.url}/annotate/{project.public_id}/")
    page.wait_for_selector("[data-ranking-form][data-ready]")
    first = leased(annotator)
    s = first.shown_order
    drag(page, s[0], "0")
    drag(page, s[1], "0")  # a filled rank: without ties the card takes the rank, the other moves down
    assert page.evaluate(SCREEN_TIERS) == [[s[1]], [s[0]]]
    tab_to(page, s[2])
    page.keyboard.press("3")
    page.keyboard.press("t")  # ignored: this project allows no ties
    tab_to(page, s[3])
    page.keyboard.press("4")
    expected = [[s[1]], [s[0]], [s[2]], [s[3]]]
    assert page.evaluate(SCREEN_TIERS) == expected

    page.keyboard.press("Enter")
    assert "asks for a rationale" in page.inner_text("#ranking-error")
    page.keyboard.type("s1 answers the question")  # the rationale box has the focus now

    # Closed while the annotator worked: the server refuses, the page says so, the work stays.
    Project.objects.filter(pk=project.pk).update(status=Project.Status.CLOSED)
    page.keyboard.press("Control+Enter")
    page.wait_for_function("() => document.getElementById('ranking-error').textContent.includes('closed')")
    assert not Ranking.objects.exists()
    assert page.evaluate(SCREEN_TIERS) == expected

    Project.objects.filter(pk=project.pk).update(status=Project.Status.ACTIVE)
    page.keyboard.press("Control+Enter")
    wait_for_next_item(page, first)
    ranking = Ranking.objects.get(assignment=first)
    assert ranking.order == expected
    assert ranking.rationale == "s1 answers the question"
    assert console_errors == [], "\n".join(console_errors)


def test_revise_a_submitted_ranking_by_keyboard(new_page, log_in, live_server, project, annotator, console_errors):
    """The stored order is on screen when the revision opens; keys change it; saving stores a new
    version with exactly what was on screen and keeps the first."""
    from annotation.services import next_assignment, submit_ranking

    lease = next_assignment(project=project, user=annotator)
    first = submit_ranking(user=annotator, assignment=lease, order=[[r] for r in lease.shown_order])
    page = new_page()
    log_in(page, "annie", "annie-pass-123")
    page.goto(f"{live_server.url}/annotate/{project.public_id}/mine/")
    page.click(f'tr[data-ranking="{first.pk}"] a:has-text("Revise")')
    page.wait_for_selector("form[data-ranking-form][data-ready=true]")
    assert page.evaluate(SCREEN_TIERS) == first.order
    last = lease.shown_order[-1]
    tab_to(page, last)
    page.keyboard.press("1")  # the last response to the top
    page.keyboard.press("s")  # no skip on this page: nothing happens
    on_screen = page.evaluate(SCREEN_TIERS)
    assert on_screen[0] == [last]
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/annotate/{project.public_id}/mine/")
    assert "Ranking revised (version 2)" in page.inner_text(".messages")
    versions = list(Ranking.objects.filter(item=first.item, rater=first.rater).order_by("version"))
    assert [(v.order, v.is_current) for v in versions] == [(first.order, False), (on_screen, True)]
    assert console_errors == []
