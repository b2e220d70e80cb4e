"""Skipped items are counted as skipped (not remaining) everywhere: the annotate page, the home
page and the API agree; an annotator reopens a skip while the project is open and the item still
needs rankings, and it comes back to them."""
from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from annotation.models import Assignment, Project
from annotation.services import (
    AssignmentError,
    annotator_progress,
    next_assignment,
    reopen_skipped,
    skip_assignment,
    submit_ranking,
)

pytestmark = pytest.mark.django_db


def rank(project, user):
    lease = next_assignment(project=project, user=user)
    return submit_ranking(user=user, assignment=lease, order=[[r] for r in lease.shown_order])


def skip(project, user) -> Assignment:
    return skip_assignment(assignment=next_assignment(project=project, user=user), user=user)


def api_progress(user, project) -> dict[str, int]:
    client = APIClient()
    client.force_authenticate(user)
    return client.get(f"/api/v1/projects/{project.public_id}/").json()["my_progress"]


def test_a_skip_counts_as_skipped_and_every_page_agrees_with_the_api(client, project, annotator):
    rank(project, annotator)
    skip(project, annotator)
    skip(project, annotator)
    expected = {"done": 1, "remaining": 0, "skipped": 2}
    assert annotator_progress(project=project, user=annotator) == expected
    assert api_progress(annotator, project) == expected
    client.force_login(annotator)
    home = client.get(reverse("annotation-home")).content.decode()
    assert "Done <strong>1</strong> · Remaining <strong>0</strong> · Skipped <strong>2</strong>" in home
    page = client.get(reverse("annotation-annotate", args=[project.public_id])).content.decode()
    assert 'data-state="all-done"' in page and 'data-progress="remaining">0<' in page
    assert 'data-progress="skipped">2<' in page and "Reopen a skipped item" in page


def test_an_item_held_by_others_is_remaining_not_all_done(client, project, annotator, annotator2, owner):
    """Overlap 2 and one item, leased by two others: nothing is free for now, but work remains."""
    project.items.exclude(external_id="item-0").delete()
    next_assignment(project=project, user=annotator2)
    next_assignment(project=project, user=owner)
    assert next_assignment(project=project, user=annotator) is None
    assert annotator_progress(project=project, user=annotator) == {"done": 0, "remaining": 1, "skipped": 0}
    client.force_login(annotator)
    page = client.get(reverse("annotation-annotate", args=[project.public_id])).content.decode()
    assert 'data-state="waiting"' in page and "All done" not in page
    assert "other annotators hold it at the moment" in page


def test_reopen_returns_the_item_to_the_pool_and_it_comes_back(project, annotator):
    skipped = skip(project, annotator)
    rank(project, annotator)
    rank(project, annotator)
    assert next_assignment(project=project, user=annotator) is None
    reopen_skipped(assignment=skipped, user=annotator)
    assert annotator_progress(project=project, user=annotator) == {"done": 2, "remaining": 1, "skipped": 0}
    again = next_assignment(project=project, user=annotator)
    assert again is not None and again.item_id == skipped.item_id
    skipped.refresh_from_db()
    assert skipped.status == Assignment.Status.REOPENED  # the skip stays on record


@pytest.mark.parametrize("why", ["not skipped", "target met", "closed", "someone else's"])
def test_reopen_is_refused_and_changes_nothing(project, annotator, annotator2, owner, why):
    skipped = skip(project, annotator)
    user = annotator
    if why == "not skipped":
        skipped = next_assignment(project=project, user=annotator)
    elif why == "target met":
        for other in (annotator2, owner):
            lease = next_assignment(project=project, user=other)
            while lease.item_id != skipped.item_id:
                submit_ranking(user=other, assignment=lease, order=[[r] for r in lease.shown_order])
                lease = next_assignment(project=project, user=other)
            submit_ranking(user=other, assignment=lease, order=[[r] for r in lease.shown_order])
    elif why == "closed":
        Project.objects.filter(pk=project.pk).update(status=Project.Status.CLOSED)
    else:
        user = annotator2
    before = list(Assignment.objects.order_by("pk").values_list("status", flat=True))
    with pytest.raises(AssignmentError):
        reopen_skipped(assignment=Assignment.objects.select_related("rater", "item__project").get(pk=skipped.pk),
                       user=user)
    assert list(Assignment.objects.order_by("pk").values_list("status", flat=True)) == before


# ---------------------------------------------------------------- the pages and the API


def test_my_rankings_lists_skips_with_a_reopen_button_that_works(client, project, annotator):
    skipped = skip(project, annotator)
    client.force_login(annotator)
    page = client.get(reverse("annotation-my-rankings", args=[project.public_id])).content.decode()
    reopen_url = reverse("annotation-reopen-assignment", args=[skipped.public_id])
    assert f'data-skipped="{skipped.item.external_id}"' in page and reopen_url in page
    response = client.post(reopen_url)
    assert response.status_code == 302
    assert response["Location"] == reverse("annotation-annotate", args=[project.public_id])
    assert annotator_progress(project=project, user=annotator)["skipped"] == 0
    again = client.post(reopen_url, follow=True)  # no longer skipped: refused, with the reason shown once
    body = again.content.decode()
    assert body.count("Not reopened: this item is skipped, then reopened, not skipped.") == 1
    assert '<li class="error">Not reopened' in body


def test_reopen_page_refuses_wrong_method_outsider_and_other_annotator(client, project, annotator, annotator2,
                                                                       outsider):
    skipped = skip(project, annotator)
    url = reverse("annotation-reopen-assignment", args=[skipped.public_id])
    client.force_login(annotator)
    assert client.get(url).status_code == 405
    for other in (outsider, annotator2):
        client.force_login(other)
        assert client.post(url).status_code == 404
    assert Assignment.objects.get(pk=skipped.pk).status == Assignment.Status.SKIPPED


def test_api_reopen(project, annotator, annotator2):
    skipped = skip(project, annotator)
    api = APIClient()
    api.force_authenticate(annotator2)
    assert api.post(f"/api/v1/assignments/{skipped.public_id}/reopen/").status_code == 404
    api.force_authenticate(annotator)
    answer = api.post(f"/api/v1/assignments/{skipped.public_id}/reopen/")
    assert answer.status_code == 200
    assert answer.json() == {"reopened": str(skipped.public_id), "my_progress": {"done": 0, "remaining": 3, "skipped": 0}}
    refused = api.post(f"/api/v1/assignments/{skipped.public_id}/reopen/")
    assert refused.status_code == 409 and "not skipped" in refused.json()["detail"]
