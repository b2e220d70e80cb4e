"""Annotators list their own rankings in a project and revise one; the earlier version is kept."""
from __future__ import annotations

import json
import uuid

import pytest
from django.urls import reverse

from annotation.models import Item, Project, Ranking
from annotation.services import next_assignment, submit_ranking

pytestmark = pytest.mark.django_db


def ranked(project, user, order_of=lambda shown: [[r] for r in shown]) -> Ranking:
    lease = next_assignment(project=project, user=user)
    return submit_ranking(user=user, assignment=lease, order=order_of(lease.shown_order), rationale="first go")


def revise_url(ranking: Ranking) -> str:
    return reverse("annotation-revise-ranking", args=[ranking.pk])


def mine_url(project: Project) -> str:
    return reverse("annotation-my-rankings", args=[project.public_id])


def post(order, **extra):
    return {"ranking": json.dumps(order), "seconds": "3", "submission_id": str(uuid.uuid4()), **extra}


def test_my_rankings_lists_only_my_current_rankings(client, project, annotator, annotator2):
    mine = ranked(project, annotator)
    theirs = ranked(project, annotator2)
    client.force_login(annotator)
    page = client.get(mine_url(project)).content.decode()
    assert f'data-ranking="{mine.pk}"' in page and f'data-ranking="{theirs.pk}"' not in page
    assert revise_url(mine) in page and revise_url(theirs) not in page


def test_revise_page_starts_from_the_stored_order_in_the_shown_order(client, project, annotator):
    ranking = ranked(project, annotator, lambda shown: [[shown[2]], [shown[0], shown[1]], [shown[3]]])
    client.force_login(annotator)
    response = client.get(revise_url(ranking))
    assert response.status_code == 200
    page = response.content.decode()
    assert f'value="{json.dumps(ranking.order).replace(chr(34), "&quot;")}"' in page
    positions = [page.index(f'data-response="{rid}"') for rid in ranking.shown_order]
    assert positions == sorted(positions)
    assert "first go" in page and "data-skip" not in page


def test_saving_a_revision_adds_a_version_and_keeps_the_earlier_one(client, project, annotator):
    ranking = ranked(project, annotator)
    client.force_login(annotator)
    new_order = [list(reversed(ranking.shown_order))]  # all tied
    body = post(new_order, rationale="on reflection", flags=["harmful"])
    response = client.post(revise_url(ranking), body)
    assert response.status_code == 302 and response["Location"] == mine_url(project)
    versions = list(Ranking.objects.filter(item=ranking.item, rater=ranking.rater).order_by("version"))
    assert [(v.version, v.is_current) for v in versions] == [(1, False), (2, True)]
    assert versions[0].order == ranking.order and versions[0].rationale == "first go"
    assert versions[1].order == new_order and versions[1].shown_order == ranking.shown_order
    assert (versions[1].rationale, versions[1].flags) == ("on reflection", ["harmful"])
    assert Item.objects.get(pk=ranking.item_id).ranking_count == 1  # still one rater's ranking
    assert client.post(revise_url(ranking), body).status_code == 404  # v1 is no longer current
    assert client.post(revise_url(versions[1]), body).status_code == 302  # a double submit
    assert Ranking.objects.filter(item=ranking.item, rater=ranking.rater).count() == 2


def test_an_invalid_revision_changes_nothing_and_says_why(client, project, annotator):
    ranking = ranked(project, annotator)
    client.force_login(annotator)
    response = client.post(revise_url(ranking), post([["r1"], ["nope"]]))
    assert response.status_code == 422 and "Not saved" in response.content.decode()
    assert Ranking.objects.filter(item=ranking.item).count() == 1


def test_closed_projects_are_final(client, project, annotator):
    ranking = ranked(project, annotator)
    Project.objects.filter(pk=project.pk).update(status=Project.Status.CLOSED)
    client.force_login(annotator)
    assert "Revise</a>" not in client.get(mine_url(project)).content.decode()
    response = client.post(revise_url(ranking), post([[r] for r in ranking.shown_order]))
    assert response.status_code == 409 and Ranking.objects.filter(item=ranking.item).count() == 1


def test_others_and_outsiders_get_404(client, project, annotator, annotator2, outsider, owner):
    ranking = ranked(project, annotator)
    for user in (annotator2, outsider, owner):
        client.force_login(user)
        assert client.get(revise_url(ranking)).status_code == 404
        assert client.post(revise_url(ranking), post([[r] for r in ranking.shown_order])).status_code == 404
    client.force_login(outsider)
    assert client.get(mine_url(project)).status_code == 404
    client.logout()
    assert client.get(revise_url(ranking)).status_code == 302  # to the login page
    assert Ranking.objects.count() == 1
