"""The admin: every annotation model has a working changelist and change page; rankings stay evidence."""
from __future__ import annotations

import pytest
from django.contrib import admin
from django.urls import reverse

from annotation.models import (
    AnnotatorProfile,
    Assignment,
    Item,
    Membership,
    Project,
    Ranking,
    Rater,
    Response,
)
from annotation.services import next_assignment, submit_ranking

pytestmark = pytest.mark.django_db

MODELS = [Project, Membership, Item, Response, Rater, AnnotatorProfile, Assignment, Ranking]


@pytest.fixture
def superuser(django_user_model):
    return django_user_model.objects.create_superuser("root", "root@example.org", "root-pass-123")


@pytest.fixture
def ranking(project, annotator):
    AnnotatorProfile.objects.create(user=annotator, country="Chile", consented_fields=["country"])
    lease = next_assignment(project=project, user=annotator)
    next_assignment(project=project, user=project.owner)  # a live lease too
    return submit_ranking(user=annotator, assignment=lease, order=[["r2"], ["r1", "r3"], ["r4"]], rationale="r2 is right")


def admin_url(model, view, *args):
    return reverse(f"admin:annotation_{model._meta.model_name}_{view}", args=args)


def test_every_annotation_model_is_registered():
    assert all(admin.site.is_registered(model) for model in MODELS)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_changelist_search_and_change_page_load(client, superuser, ranking, model):
    client.force_login(superuser)
    listing = client.get(admin_url(model, "changelist"))
    assert listing.status_code == 200
    assert listing.context["cl"].result_count >= 1
    assert client.get(admin_url(model, "changelist"), {"q": "a"}).status_code == 200
    obj = model.objects.first()
    assert client.get(admin_url(model, "change", obj.pk)).status_code == 200


def test_project_page_has_membership_inline_and_item_page_responses(client, superuser, project):
    client.force_login(superuser)
    body = client.get(admin_url(Project, "change", project.pk)).content.decode()
    assert "memberships-TOTAL_FORMS" in body
    item = project.items.first()
    body = client.get(admin_url(Item, "change", item.pk)).content.decode()
    assert "responses-TOTAL_FORMS" in body and "Answer 1 to 0" in body


def test_ranking_flags_editable_everything_else_read_only(client, superuser, ranking):
    client.force_login(superuser)
    response = client.post(
        admin_url(Ranking, "change", ranking.pk),
        {"flags": '["harmful"]', "order": '[["r4"], ["r3"], ["r2"], ["r1"]]', "rationale": "tampered"},
    )
    assert response.status_code == 302
    ranking.refresh_from_db()
    assert ranking.flags == ["harmful"]
    assert ranking.order == [["r2"], ["r1", "r3"], ["r4"]] and ranking.rationale == "r2 is right"


def test_ranking_unknown_flag_is_refused_with_its_name(client, superuser, ranking):
    client.force_login(superuser)
    response = client.post(admin_url(Ranking, "change", ranking.pk), {"flags": '["boring"]'})
    assert response.status_code == 200
    assert "unknown flag &#x27;boring&#x27;" in response.content.decode()
    ranking.refresh_from_db()
    assert ranking.flags == []


def test_rankings_cannot_be_added_or_deleted(client, superuser, ranking):
    client.force_login(superuser)
    assert client.get(admin_url(Ranking, "add")).status_code == 403
    assert client.post(admin_url(Ranking, "delete", ranking.pk), {"post": "yes"}).status_code == 403
    assert Ranking.objects.filter(pk=ranking.pk).exists()


def test_staff_without_permissions_cannot_see_rankings(client, django_user_model, ranking):
    staff = django_user_model.objects.create_user("staff", password="staff-pass-123", is_staff=True)
    client.force_login(staff)
    assert client.get(admin_url(Ranking, "changelist")).status_code == 403
