"""Researcher pages: project create/edit, members, items, an item's rankings, the project page."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from annotation.models import AnnotatorProfile, Assignment, Membership, Project
from annotation.services import (
    add_member,
    create_item,
    create_project,
    next_assignment,
    rater_for_user,
    record_ranking,
    synthetic_rater,
)

pytestmark = pytest.mark.django_db

VALID = {
    "name": "Helpfulness round 2",
    "status": "active",
    "guidelines": "Prefer **honest** answers.",
    "overlap_target": "4",
    "synthetic_target": "5",
    "allow_ties": "on",
    "rationale": "required",
    "consent_text": "We keep only what you tick.",
    "demographics_export": "individual",
    "lease_seconds": "600",
}

# Every researcher page with the methods it refuses.
PAGES = [
    ("annotation-project-detail", "post"),
    ("annotation-project-edit", "delete"),
    ("annotation-project-members", "put"),
    ("annotation-project-items", "post"),
]


def url(name, project, *args):
    return reverse(name, args=[project.public_id, *args])


def login(client, user):
    client.force_login(user)
    return client


def rank(project, user, order):
    item = project.items.get(external_id="item-0")
    return record_ranking(item=item, rater=rater_for_user(user), order=order)


# ---------------------------------------------------------------- access, shared by every page


@pytest.mark.parametrize(("name", "bad_method"), PAGES)
def test_outsider_gets_404_and_annotator_403(client, project, outsider, annotator, name, bad_method):
    assert login(client, outsider).get(url(name, project)).status_code == 404
    assert login(client, annotator).get(url(name, project)).status_code == 403


@pytest.mark.parametrize(("name", "bad_method"), PAGES)
def test_wrong_method_is_405(client, project, owner, name, bad_method):
    assert getattr(login(client, owner), bad_method)(url(name, project)).status_code == 405


@pytest.mark.parametrize(("name", "bad_method"), PAGES)
def test_anonymous_is_sent_to_login(client, project, name, bad_method):
    response = client.get(url(name, project))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_unknown_project_is_404(client, owner):
    response = login(client, owner).get(reverse("annotation-project-detail", args=["6f1c2b1e-0000-4000-8000-000000000000"]))
    assert response.status_code == 404


# ---------------------------------------------------------------- create


@pytest.fixture
def researcher(django_user_model):
    user = django_user_model.objects.create_user("rita", password="rita-pass-123")
    user.user_permissions.add(Permission.objects.get(codename="add_project"))
    return user


def test_create_project_with_every_setting(client, researcher):
    response = login(client, researcher).post(reverse("annotation-project-create"), VALID)
    project = Project.objects.get(name="Helpfulness round 2")
    assert response.status_code == 302 and response["Location"] == url("annotation-project-detail", project)
    assert (project.owner, project.status, project.overlap_target, project.lease_seconds) == (researcher, "active", 4, 600)
    assert project.synthetic_target == 5
    assert project.allow_ties and not project.allow_partial
    assert (project.rationale, project.demographics_export) == ("required", "individual")
    assert project.memberships.get(user=researcher).role == Membership.Role.RESEARCHER


def test_create_with_bad_values_names_the_fields_and_creates_nothing(client, researcher):
    bad = VALID | {"overlap_target": "0", "lease_seconds": "5", "status": "paused", "name": "", "synthetic_target": "-1"}
    response = login(client, researcher).post(reverse("annotation-project-create"), bad)
    assert response.status_code == 200
    errors = response.context["form"].errors
    assert set(errors) == {"overlap_target", "lease_seconds", "status", "name", "synthetic_target"}
    assert "greater than or equal to 1" in errors["overlap_target"][0]
    assert "greater than or equal to 60" in errors["lease_seconds"][0]
    assert not Project.objects.exists()


def test_create_form_offers_every_setting(client, researcher):
    response = login(client, researcher).get(reverse("annotation-project-create"))
    assert response.status_code == 200
    body = response.content.decode()
    for field in VALID:
        assert f'name="{field}"' in body
    assert 'name="allow_partial"' in body and 'hx-post="/projects/guidelines-preview/"' in body


def test_create_needs_the_add_project_permission(client, annotator):
    assert login(client, annotator).get(reverse("annotation-project-create")).status_code == 403
    assert login(client, annotator).post(reverse("annotation-project-create"), VALID).status_code == 403
    assert not Project.objects.exists()


def test_create_wrong_method_is_405(client, researcher):
    assert login(client, researcher).put(reverse("annotation-project-create")).status_code == 405


# ---------------------------------------------------------------- edit and preview


def test_edit_saves_every_setting(client, project, owner):
    data = VALID | {"name": "Demo (closed)", "status": "closed", "allow_partial": "on"}
    data.pop("allow_ties")
    response = login(client, owner).post(url("annotation-project-edit", project), data)
    assert response.status_code == 302
    project.refresh_from_db()
    assert (project.name, project.status, project.overlap_target) == ("Demo (closed)", "closed", 4)
    assert project.allow_partial and not project.allow_ties
    assert project.guidelines == "Prefer **honest** answers."


def test_edit_with_bad_value_changes_nothing(client, project, owner):
    response = login(client, owner).post(url("annotation-project-edit", project), VALID | {"overlap_target": "-2"})
    assert response.status_code == 200
    assert "overlap_target" in response.context["form"].errors
    project.refresh_from_db()
    assert (project.name, project.overlap_target) == ("Demo", 2)


def test_edit_page_shows_rendered_guidelines_preview(client, project, owner):
    body = login(client, owner).get(url("annotation-project-edit", project)).content.decode()
    assert 'id="guidelines-preview"' in body and "<strong>helpfulness</strong>" in body


def test_annotator_cannot_edit(client, project, annotator):
    response = login(client, annotator).post(url("annotation-project-edit", project), VALID)
    assert response.status_code == 403
    project.refresh_from_db()
    assert project.name == "Demo"


def test_guidelines_preview_renders_markdown_without_scripts(client, owner):
    text = "**bold** <script>alert('x')</script> [x](javascript:alert(1)) <img src=x onerror=alert(1)>"
    response = login(client, owner).post(reverse("annotation-guidelines-preview"), {"guidelines": text})
    body = response.content.decode()
    assert response.status_code == 200 and body.startswith('<div id="guidelines-preview"')
    assert "<strong>bold</strong>" in body
    assert "<script" not in body and "javascript:" not in body and "onerror" not in body
    assert client.get(reverse("annotation-guidelines-preview")).status_code == 405


# ---------------------------------------------------------------- project page


def test_project_page_shows_progress_guidelines_and_live_socket(client, project, owner, annotator, annotator2):
    rank(project, annotator, [["r1"], ["r2"], ["r3"], ["r4"]])
    body = login(client, owner).get(url("annotation-project-detail", project)).content.decode()
    assert "<strong>helpfulness</strong>" in body
    assert 'id="project-progress"' in body
    assert '<strong class="progress-rankings">1</strong> of 6 human rankings' in body
    assert '<strong class="progress-complete">0</strong> of 3 items complete' in body
    assert f'ws-connect="/ws/projects/{project.public_id}/"' in body
    assert "django_htmx/ext/hx-ws-2" in body
    # Per-rater counts: annie ranked one item, bob none yet.
    rows = [(r["label"], r["rankings"]) for r in client.get(url("annotation-project-detail", project)).context["raters"]]
    assert ("annie", 1) in rows and ("bob", 0) in rows


def test_project_page_links_import_and_export(client, project, owner):
    body = login(client, owner).get(url("annotation-project-detail", project)).content.decode()
    for name in ("annotation-import-items", "annotation-export-rankings"):
        assert f'href="{url(name, project)}"' in body


# ---------------------------------------------------------------- members


def test_add_member_by_username_and_change_role(client, project, owner, outsider):
    members = url("annotation-project-members", project)
    response = login(client, owner).post(members, {"username": "mallory", "role": "annotator"})
    assert response.status_code == 302
    assert project.memberships.get(user=outsider).role == "annotator"
    client.post(members, {"username": "mallory", "role": "researcher"})
    assert project.memberships.get(user=outsider).role == "researcher"
    body = client.get(members).content.decode()
    assert "mallory" in body and "Researcher" in body


def test_add_unknown_username_names_it_and_changes_nothing(client, project, owner):
    before = project.memberships.count()
    response = login(client, owner).post(url("annotation-project-members", project), {"username": "ghost", "role": "annotator"})
    assert response.status_code == 200
    assert "There is no user named “ghost”." in response.content.decode()
    assert project.memberships.count() == before


def test_owner_cannot_be_demoted_or_removed(client, project, owner):
    login(client, owner)
    response = client.post(url("annotation-project-members", project), {"username": "owner", "role": "annotator"})
    assert response.status_code == 200 and "owns this project and stays a researcher" in response.content.decode()
    response = client.post(url("annotation-project-member-remove", project, owner.pk), follow=True)
    assert "cannot be removed" in response.content.decode()
    assert project.memberships.get(user=owner).role == "researcher"


def test_remove_member_frees_their_lease(client, project, owner, annotator):
    lease = next_assignment(project=project, user=annotator)
    response = login(client, owner).post(url("annotation-project-member-remove", project, annotator.pk))
    assert response.status_code == 302
    assert not project.memberships.filter(user=annotator).exists()
    lease.refresh_from_db()
    assert lease.status == Assignment.Status.EXPIRED


def test_remove_member_access(client, project, owner, annotator, annotator2, outsider):
    remove = url("annotation-project-member-remove", project, annotator2.pk)
    assert login(client, owner).get(remove).status_code == 405
    assert login(client, outsider).post(remove).status_code == 404
    assert login(client, annotator).post(remove).status_code == 403
    assert project.memberships.filter(user=annotator2).exists()
    # A user who is not a member of this project is not found here either.
    assert login(client, owner).post(url("annotation-project-member-remove", project, outsider.pk)).status_code == 404


# ---------------------------------------------------------------- items


def _many_items(project, n):
    for i in range(n):
        create_item(project=project, external_id=f"bulk-{i:03}", prompt=f"Bulk {i}?",
                    responses=[{"id": f"r{k}", "text": f"A{k}"} for k in range(1, 4)])


def test_items_are_paginated_with_counts_against_target(client, project, owner, annotator, annotator2):
    _many_items(project, 57)  # 60 in all with the three of the fixture
    rank(project, annotator, [["r1"], ["r2"], ["r3"], ["r4"]])
    rank(project, annotator2, [["r2"], ["r1"], ["r3"], ["r4"]])
    first = login(client, owner).get(url("annotation-project-items", project))
    body = first.content.decode()
    assert len(first.context["page"].object_list) == 50
    assert "Page 1 of 2" in body and "item-0" in body and "2 / 2 ✓" in body and "0 / 2" in body
    assert "<td>4</td>" in body  # responses of a fixture item
    second = client.get(url("annotation-project-items", project), {"page": 2})
    assert len(second.context["page"].object_list) == 10 and "bulk-056" in second.content.decode()


def test_items_page_queries_do_not_grow_with_items(client, project, owner, django_assert_max_num_queries):
    _many_items(project, 47)
    login(client, owner)
    with django_assert_max_num_queries(8):
        response = client.get(url("annotation-project-items", project))
    assert len(response.context["page"].object_list) == 50


# ---------------------------------------------------------------- item detail


@pytest.fixture
def ranked_item(project, annotator, annotator2):
    AnnotatorProfile.objects.create(user=annotator, country="Kenya", religion="Quaker", consented_fields=["country"])
    rank(project, annotator, [["r2"], ["r1", "r3"], ["r4"]])
    rank(project, annotator2, [["r4"], ["r3"], ["r2"], ["r1"]])
    persona = {"id": "p-042", "description": "A retired nurse", "attributes": {"age": 67}}
    item = project.items.get(external_id="item-0")
    record_ranking(item=item, rater=synthetic_rater(persona=persona, model="fake:echo"), order=[["r1"], ["r2"], ["r3"], ["r4"]])
    return item


def test_researcher_sees_every_raters_ranking(client, project, owner, ranked_item):
    response = login(client, owner).get(url("annotation-item-detail", project, ranked_item.pk))
    body = response.content.decode()
    assert response.status_code == 200 and "Question 0?" in body and "Answer 3 to 0" in body
    assert "annie" in body and "bob" in body and "p-042 · fake:echo" in body
    assert "r2 &gt; r1 = r3 &gt; r4" in body and "r4 &gt; r3 &gt; r2 &gt; r1" in body


def test_item_page_hides_demographics_unless_exported_per_ranking(client, project, owner, ranked_item):
    login(client, owner)
    body = client.get(url("annotation-item-detail", project, ranked_item.pk)).content.decode()
    assert "Kenya" not in body and "Profile (consented)" not in body
    Project.objects.filter(pk=project.pk).update(demographics_export=Project.DemographicsExport.INDIVIDUAL)
    body = client.get(url("annotation-item-detail", project, ranked_item.pk)).content.decode()
    assert "country: Kenya" in body
    assert "Quaker" not in body  # never consented


def test_item_page_access(client, project, owner, annotator, outsider, ranked_item, django_assert_max_num_queries):
    page = url("annotation-item-detail", project, ranked_item.pk)
    assert login(client, outsider).get(page).status_code == 404
    assert login(client, annotator).get(page).status_code == 403
    assert login(client, owner).post(page).status_code == 405
    with django_assert_max_num_queries(8):
        assert client.get(page).status_code == 200


def test_item_of_another_project_is_404(client, project, owner):
    other = create_project(owner=owner, name="Other")
    foreign = create_item(project=other, external_id="x", prompt="?", responses=[{"id": "a", "text": "a"}, {"id": "b", "text": "b"}])
    assert login(client, owner).get(url("annotation-item-detail", project, foreign.pk)).status_code == 404


def test_researcher_added_by_membership_sees_pages(client, project, outsider):
    add_member(project=project, user=outsider, role=Membership.Role.RESEARCHER)
    assert login(client, outsider).get(url("annotation-project-items", project)).status_code == 200
