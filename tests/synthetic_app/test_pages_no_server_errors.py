"""No page shows a server error: every HTML page, with real ids, for every kind of user, with
hostile query strings and ids far beyond 64 bits (the API's side: tests/annotation/test_api_no_server_errors.py)."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.test import Client
from django.urls import reverse

from annotation.services import next_assignment, submit_ranking
from jobs.runner import execute

pytestmark = pytest.mark.django_db(transaction=True)

HUGE = 10**30
PAGING = ["page=99999999999999999999999", "page=-1", "page=abc", "page=0", "failures=1&page=2"]
EXPORT = ["format=datasets&since=2999-01-01", "format=xlsx", "since=2024-13-45", "until=soon", "rater_kind=alien",
          "versions=x", "format=jsonl&since=9999-12-31T23:59:59%2B99:00", "format=parquet&until=2999-01-01"]


@pytest.fixture
def world(owner, annotator, annotator2, project, panel, fake):
    from synthetic.services import start_synthetic_run

    owner.user_permissions.add(Permission.objects.get(codename="add_project", content_type__app_label="annotation"))
    ranking = submit_ranking(user=annotator, assignment=next_assignment(project=project, user=annotator),
                             order=[["r1"], ["r2"], ["r3"], ["r4"]])
    lease = next_assignment(project=project, user=annotator2)
    srun = start_synthetic_run(method="listwise", owner=owner, project=project, panel=panel, engine="test-fake", model="m")
    execute(srun.run.pk)
    return {"project": project, "ranking": ranking, "lease": lease, "panel": panel, "srun": srun,
            "item": project.items.order_by("pk").first()}


def _pages(w: dict) -> list[tuple[str, list[str]]]:
    """(page, the query strings to try on it): hostile paging where a page reads it."""
    pid = w["project"].public_id
    plain = [
        reverse("annotation-home"), reverse("annotation-project-create"), reverse("annotation-profile"),
        reverse("annotation-project-detail", args=[pid]), reverse("annotation-project-edit", args=[pid]),
        reverse("annotation-project-members", args=[pid]), reverse("annotation-item-detail", args=[pid, w["item"].pk]),
        reverse("annotation-item-detail", args=[pid, HUGE]), reverse("annotation-annotate", args=[pid]),
        reverse("annotation-revise-ranking", args=[w["ranking"].pk]), reverse("annotation-revise-ranking", args=[HUGE]),
        reverse("annotation-import-items", args=[pid]), reverse("synthetic-panel-list", args=[pid]),
        reverse("synthetic-panel-detail", args=[pid, w["panel"].pk]), reverse("synthetic-panel-detail", args=[pid, HUGE]),
        reverse("synthetic-run-list", args=[pid]), reverse("synthetic-run-create", args=[pid]),
        reverse("synthetic-run-summary", args=[pid, HUGE]), reverse("synthetic-generation-create", args=[pid]),
        reverse("jobs-run-detail", args=[w["srun"].run.public_id]),
        f"/api/v1/projects/{pid}/items/{HUGE}/", f"/api/v1/rankings/{HUGE}/", "/api/v1/rankings/abc/",
    ]
    paged = [reverse("annotation-project-items", args=[pid]), reverse("annotation-my-rankings", args=[pid]),
             reverse("synthetic-run-summary", args=[pid, w["srun"].pk]), reverse("jobs-run-list")]
    return ([(page, [""]) for page in plain] + [(page, ["", *PAGING]) for page in paged]
            + [(reverse("annotation-export-rankings", args=[pid]), EXPORT)])


@pytest.mark.parametrize("who", ["owner", "annotator", "outsider", "anonymous"])
def test_no_page_answers_a_server_error(request, world, who):
    client = Client(raise_request_exception=False)
    if who != "anonymous":
        client.force_login(request.getfixturevalue(who))
    errors = []
    for page, queries in _pages(world):
        for query in queries:
            response = client.get(f"{page}?{query}" if query else page)
            if response.status_code >= 500:
                errors.append(f"GET {page}?{query} -> {response.status_code}")
    assert not errors, "\n".join(errors)


def test_posts_with_huge_ids_and_garbage_are_never_a_server_error(world, owner, annotator):
    pid = world["project"].public_id
    client = Client(raise_request_exception=False)
    errors = []
    for user in (owner, annotator):
        client.force_login(user)
        for url, data in [
            (reverse("annotation-project-member-remove", args=[pid, HUGE]), {}),
            (reverse("annotation-submit-ranking", args=[world["lease"].public_id]), {"ranking": "[[\"r9\"]]"}),
            (reverse("annotation-submit-ranking", args=[world["lease"].public_id]), {"ranking": "{" * 50}),
            (reverse("annotation-skip-assignment", args=[world["lease"].public_id]), {}),
            (reverse("annotation-revise-ranking", args=[world["ranking"].pk]), {"ranking": "null", "seconds": "1e999"}),
            (reverse("annotation-project-members", args=[pid]), {"username": "x" * 500, "role": "king"}),
            (reverse("annotation-project-create"), {"name": "x", "overlap_target": str(HUGE), "lease_seconds": "-1"}),
            (reverse("annotation-project-edit", args=[pid]), {"name": "", "overlap_target": "1e9"}),
            (reverse("annotation-profile"), {"age_band": "999", "consented_fields": "nope"}),
            (reverse("synthetic-run-create", args=[pid]), {"panel": str(HUGE), "engine": "openai", "seed": str(HUGE),
                                                          "sample_size": str(HUGE), "tie_margin": "nan"}),
            (reverse("synthetic-panel-generate", args=[pid]), {"name": "p", "size": str(HUGE), "seed": str(HUGE)}),
            (reverse("synthetic-generation-create", args=[pid]), {"text": '{"prompt": "x"}', "k": "3", "seed": str(HUGE),
                                                                  "engine": "transformers", "model": "/nope"}),
            (reverse("annotation-import-items", args=[pid]), {"format": "jsonl"}),
        ]:
            response = client.post(url, data)
            if response.status_code >= 500:
                errors.append(f"{user} POST {url} {data} -> {response.status_code}")
    assert not errors, "\n".join(errors)


def test_a_nul_character_in_uploaded_text_is_an_error_naming_the_line(client, world, owner):
    """PostgreSQL stores no NUL: every JSONL a user sends says so by line instead of failing."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    pid = world["project"].public_id
    client.force_login(owner)
    nul = '{"prompt": "fine"}\n{"id": "x", "prompt": "bad \\u0000 text"}\n'
    response = client.post(reverse("synthetic-generation-create", args=[pid]),
                           {"text": nul, "k": 2, "temperature": 0.8, "top_p": 0.9, "max_new_tokens": 8, "seed": 0,
                            "engine": "transformers", "model": "var/models/nope", "device": "auto", "batch_size": 8})
    assert response.status_code == 400 and "line 2: field &#x27;prompt&#x27; contains a NUL character" in response.content.decode()
    response = client.post(reverse("synthetic-panel-import", args=[pid]),
                           {"name": "n", "text": '{"persona": "ok"}\n{"persona": "a\\u0000b"}\n'})
    assert response.status_code == 400 and "line 2" in response.content.decode()
    assert "NUL character" in response.content.decode()
    upload = SimpleUploadedFile("items.jsonl", b'{"prompt": "p", "responses": ["a", "b\\u0000"]}\n')
    response = client.post(reverse("annotation-import-items", args=[pid]), {"file": upload})
    assert response.status_code == 400 and "NUL character" in response.content.decode()
