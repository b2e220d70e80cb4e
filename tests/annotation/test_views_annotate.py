from __future__ import annotations

import json
import uuid

import pytest
from django.urls import reverse

from annotation.models import Assignment, Item, Membership, Project, Ranking
from annotation.services import add_member, create_project, next_assignment

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def annotate_url(project: Project) -> str:
    return reverse("annotation-annotate", args=[project.public_id])


def submit_url(assignment: Assignment) -> str:
    return reverse("annotation-submit-ranking", args=[assignment.public_id])


def skip_url(assignment: Assignment) -> str:
    return reverse("annotation-skip-assignment", args=[assignment.public_id])


def ranking_post(order: list[list[str]], **extra: object) -> dict[str, object]:
    return {"ranking": json.dumps(order), "seconds": "4.5", "submission_id": str(uuid.uuid4()), **extra}


def leased(client, project: Project, user) -> Assignment:
    client.force_login(user)
    client.get(annotate_url(project))
    return Assignment.objects.get(rater__user=user, status=Assignment.Status.LEASED)


# ---------------------------------------------------------------- home


def test_home_lists_my_projects_with_progress(client, project, annotator, owner):
    other = create_project(owner=owner, name="Not mine", status=Project.Status.ACTIVE)
    client.force_login(annotator)
    response = client.get(reverse("annotation-home"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Demo" in page and "Not mine" not in page
    assert "Done <strong>0</strong> · Remaining <strong>3</strong>" in page
    assert annotate_url(project) in page
    assert reverse("annotation-annotate", args=[other.public_id]) not in page


def test_home_costs_the_same_queries_for_one_project_or_many(client, project, owner, annotator):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client.force_login(annotator)

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(reverse("annotation-home")).status_code == 200
        return len(ctx.captured_queries)

    one = queries()
    for n in range(4):
        extra = create_project(owner=owner, name=f"More {n}", status=Project.Status.ACTIVE)
        add_member(project=extra, user=annotator, role=Membership.Role.ANNOTATOR)
    assert queries() == one
    lease = next_assignment(project=project, user=annotator)
    from annotation.services import submit_ranking

    submit_ranking(user=annotator, assignment=lease, order=[[r] for r in lease.shown_order])
    assert "Done <strong>1</strong> · Remaining <strong>2</strong>" in client.get(reverse("annotation-home")).content.decode()


def test_home_hides_draft_projects_from_annotators_but_not_researchers(client, owner, annotator):
    draft = create_project(owner=owner, name="Secret draft")
    add_member(project=draft, user=annotator, role=Membership.Role.ANNOTATOR)
    client.force_login(annotator)
    assert "Secret draft" not in client.get(reverse("annotation-home")).content.decode()
    client.force_login(owner)
    assert "Secret draft" in client.get(reverse("annotation-home")).content.decode()


def test_home_links_researchers_to_their_project_page_and_annotators_not(client, project, owner, annotator):
    manage = reverse("annotation-project-detail", args=[project.public_id])
    client.force_login(owner)
    assert manage in client.get(reverse("annotation-home")).content.decode()
    client.force_login(annotator)
    assert manage not in client.get(reverse("annotation-home")).content.decode()


def test_home_needs_login_and_get(client, annotator):
    assert client.get(reverse("annotation-home")).status_code == 302
    client.force_login(annotator)
    assert client.post(reverse("annotation-home")).status_code == 405


# ---------------------------------------------------------------- annotate page


def test_annotate_page_shows_guidelines_and_responses_in_shown_order(client, project, annotator):
    project.guidelines = "Rank **helpfulness**.\n\n<script>alert('x')</script>"
    project.save(update_fields=["guidelines"])
    client.force_login(annotator)
    response = client.get(annotate_url(project))
    assert response.status_code == 200
    page = response.content.decode()
    assert "<strong>helpfulness</strong>" in page
    assert "<script>alert" not in page
    assignment = Assignment.objects.get(rater__user=annotator)
    positions = [page.index(f'data-response="{rid}"') for rid in assignment.shown_order]
    assert positions == sorted(positions)
    assert assignment.item.prompt in page


def test_outsider_gets_404_everywhere(client, project, annotator, outsider):
    assignment = leased(client, project, annotator)
    client.force_login(outsider)
    assert client.get(annotate_url(project)).status_code == 404
    assert client.post(submit_url(assignment), ranking_post([["r1"], ["r2"], ["r3"], ["r4"]])).status_code == 404
    assert client.post(skip_url(assignment)).status_code == 404
    assert not Ranking.objects.exists()
    assignment.refresh_from_db()
    assert assignment.status == Assignment.Status.LEASED


def test_other_annotator_cannot_submit_my_assignment(client, project, annotator, annotator2):
    assignment = leased(client, project, annotator)
    client.force_login(annotator2)
    assert client.post(submit_url(assignment), ranking_post([["r1"], ["r2"], ["r3"], ["r4"]])).status_code == 404
    assert not Ranking.objects.exists()


def test_wrong_methods_are_405(client, project, annotator):
    assignment = leased(client, project, annotator)
    assert client.post(annotate_url(project)).status_code == 405
    assert client.get(submit_url(assignment)).status_code == 405
    assert client.get(skip_url(assignment)).status_code == 405


@pytest.mark.parametrize(("status", "text"), [
    (Project.Status.DRAFT, "not open for annotation yet"),
    (Project.Status.CLOSED, "closed and takes no more rankings"),
])
def test_draft_and_closed_projects_lease_nothing(client, project, annotator, status, text):
    project.status = status
    project.save(update_fields=["status"])
    client.force_login(annotator)
    response = client.get(annotate_url(project))
    assert response.status_code == 200
    assert text in response.content.decode()
    assert not Assignment.objects.exists()


def test_submit_on_a_project_closed_meanwhile_is_refused_and_stores_nothing(client, project, annotator):
    assignment = leased(client, project, annotator)
    Project.objects.filter(pk=project.pk).update(status=Project.Status.CLOSED)
    response = client.post(submit_url(assignment), ranking_post([["r1"], ["r2"], ["r3"], ["r4"]]), **HTMX)
    assert response.status_code == 200  # htmx swaps it in
    assert "Not saved: This project is closed" in response.content.decode()
    plain = client.post(submit_url(assignment), ranking_post([["r1"], ["r2"], ["r3"], ["r4"]]))
    assert plain.status_code == 409
    assert "Not saved: This project is closed" in plain.content.decode()
    assert not Ranking.objects.exists()


# ---------------------------------------------------------------- submit


def test_htmx_submit_stores_ranking_and_returns_next_item_fragment(client, project, annotator):
    first = leased(client, project, annotator)
    data = ranking_post([["r2"], ["r1", "r3"], ["r4"]], rationale="r2 is clearest", flags=["harmful"])
    response = client.post(submit_url(first), data, **HTMX)
    assert response.status_code == 200
    page = response.content.decode()
    assert 'id="annotate-item"' in page
    assert "<html" not in page  # a fragment, not a page
    ranking = Ranking.objects.get()
    assert ranking.order == [["r2"], ["r1", "r3"], ["r4"]]
    assert ranking.shown_order == first.shown_order
    assert ranking.rationale == "r2 is clearest"
    assert ranking.flags == ["harmful"]
    assert ranking.seconds == 4.5
    assert str(ranking.submission_id) == data["submission_id"]
    second = Assignment.objects.get(rater__user=annotator, status=Assignment.Status.LEASED)
    assert second.item_id != first.item_id
    assert second.item.prompt in page
    assert "Done <strong data-progress=\"done\">1</strong>" in page
    assert "Ranking saved" in page


def test_plain_form_submit_redirects_to_the_annotate_page(client, project, annotator):
    assignment = leased(client, project, annotator)
    response = client.post(submit_url(assignment), ranking_post([["r1"], ["r2"], ["r3"], ["r4"]]))
    assert response.status_code == 302
    assert response["Location"] == annotate_url(project)
    assert Ranking.objects.count() == 1


@pytest.mark.parametrize(("order", "message"), [
    ([["r1"], ["r9"], ["r2"], ["r3"]], "names &#x27;r9&#x27;, which is not a response of this item"),
    ([["r1"], ["r2"]], "this project needs every response ranked"),
    ([["r1"], ["r1"], ["r2"], ["r3"], ["r4"]], "response r1 appears more than once"),
])
def test_invalid_ranking_rerenders_same_item_with_error_and_stores_nothing(client, project, annotator, order, message):
    assignment = leased(client, project, annotator)
    response = client.post(submit_url(assignment), ranking_post(order, rationale="kept"), **HTMX)
    assert response.status_code == 200
    page = response.content.decode()
    assert "<html" not in page
    assert "Not saved: ranking:" in page and message in page
    assert submit_url(assignment) in page  # the same item again
    assert ">kept</textarea>" in page  # what was typed is not lost
    assert not Ranking.objects.exists()
    assert Item.objects.get(pk=assignment.item_id).ranking_count == 0
    assignment.refresh_from_db()
    assert assignment.status == Assignment.Status.LEASED
    plain = client.post(submit_url(assignment), ranking_post(order))
    assert plain.status_code == 422
    assert "<html" in plain.content.decode() and message in plain.content.decode()
    assert not Ranking.objects.exists()


def test_ties_refused_when_project_disallows_them(client, project, annotator):
    Project.objects.filter(pk=project.pk).update(allow_ties=False)
    assignment = leased(client, project, annotator)
    response = client.post(submit_url(assignment), ranking_post([["r1", "r2"], ["r3"], ["r4"]]))
    assert response.status_code == 422
    assert "this project allows no ties" in response.content.decode()
    assert not Ranking.objects.exists()


def test_malformed_fields_are_named(client, project, annotator):
    assignment = leased(client, project, annotator)
    response = client.post(submit_url(assignment), {"ranking": "[[r1", "seconds": "-3"})
    assert response.status_code == 422
    assert "Not saved: ranking: ranking is not valid JSON" in response.content.decode()
    response = client.post(submit_url(assignment), ranking_post([["r1"], ["r2"], ["r3"], ["r4"]], flags=["nope"]), **HTMX)
    assert "Not saved: flags:" in response.content.decode()
    assert not Ranking.objects.exists()


def test_required_rationale_missing_is_refused(client, project, annotator):
    Project.objects.filter(pk=project.pk).update(rationale=Project.Rationale.REQUIRED)
    assignment = leased(client, project, annotator)
    response = client.post(submit_url(assignment), ranking_post([["r1"], ["r2"], ["r3"], ["r4"]], rationale="  "))
    assert response.status_code == 422
    assert "Not saved: rationale: this project requires a rationale" in response.content.decode()
    assert not Ranking.objects.exists()


def test_double_submit_with_same_submission_id_stores_once(client, project, annotator):
    assignment = leased(client, project, annotator)
    data = ranking_post([["r4"], ["r3"], ["r2"], ["r1"]])
    first = client.post(submit_url(assignment), data, **HTMX)
    again = client.post(submit_url(assignment), data, **HTMX)
    assert first.status_code == again.status_code == 200
    assert Ranking.objects.count() == 1
    assert Item.objects.get(pk=assignment.item_id).ranking_count == 1
    # The retry shows the same next item instead of leasing yet another one.
    assert Assignment.objects.filter(rater__user=annotator, status=Assignment.Status.LEASED).count() == 1


def test_last_submit_shows_all_done(client, project, annotator):
    client.force_login(annotator)
    for _ in range(3):
        assignment = next_assignment(project=project, user=annotator)
        response = client.post(submit_url(assignment), ranking_post([["r1"], ["r2"], ["r3"], ["r4"]]), **HTMX)
    page = response.content.decode()
    assert "All done" in page
    assert "Done <strong data-progress=\"done\">3</strong> · Remaining <strong data-progress=\"remaining\">0</strong>" in page
    assert "All done" in client.get(annotate_url(project)).content.decode()


# ---------------------------------------------------------------- skip


def test_skip_moves_on_without_storing(client, project, annotator):
    first = leased(client, project, annotator)
    response = client.post(skip_url(first), **HTMX)
    assert response.status_code == 200
    first.refresh_from_db()
    assert first.status == Assignment.Status.SKIPPED
    assert not Ranking.objects.exists()
    second = Assignment.objects.get(rater__user=annotator, status=Assignment.Status.LEASED)
    assert second.item_id != first.item_id
    assert second.item.prompt in response.content.decode()
    plain = client.post(skip_url(second))
    assert plain.status_code == 302 and plain["Location"] == annotate_url(project)


def test_home_offers_new_project_only_to_researchers(client, owner, annotator):
    from django.contrib.auth.models import Permission

    owner.user_permissions.add(Permission.objects.get(codename="add_project"))
    client.force_login(owner)
    assert reverse("annotation-project-create") in client.get(reverse("annotation-home")).content.decode()
    client.force_login(annotator)
    assert reverse("annotation-project-create") not in client.get(reverse("annotation-home")).content.decode()
