"""Blind human evaluation: the project hides which model wrote what (nowhere in the annotator's
HTML), orders responses at random, and its results map rankings back to models."""
from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from annotation.models import AnnotatorProfile, Item
from annotation.services import rater_for_user, record_ranking
from evaluation.blind import BlindError, blind_results, create_blind_project
from evaluation.models import BlindComparison
from jobs.models import Run
from jobs.runner import execute
from jobs.services import start_run

NAMES = ("secret-alpha-dpo", "secret-beta-sft")
PROMPTS = [{"id": f"q{n}", "prompt": f"How do I keep plant {n} alive?"} for n in range(8)]


def _comparison(owner, project, seed=3) -> BlindComparison:
    generations = {NAMES[0]: [f"Water plant {n} weekly." for n in range(8)], NAMES[1]: [f"Give plant {n} light." for n in range(8)]}
    return create_blind_project(owner=owner, source_project=project, name="Blind round 1", prompts=PROMPTS,
                                generations=generations, seed=seed)


@pytest.mark.django_db
def test_annotator_html_never_names_a_model_and_order_is_random(client, owner, project, annotator):
    comparison = _comparison(owner, project)
    client.force_login(annotator)
    pages = [client.get(reverse("annotation-annotate", args=[comparison.project.public_id])).content.decode()]
    pages.append(client.get(reverse("annotation-home")).content.decode())
    assert "Water plant" in pages[0] or "Give plant" in pages[0]  # the item is really there
    for page in pages:
        for name in (*NAMES, "alpha", "dpo", "sft"):
            assert name not in page.lower(), name
    responses = [r for item in Item.objects.filter(project=comparison.project) for r in item.responses.all()]
    assert {r.source for r in responses} == {""} and {r.response_id for r in responses} == {"r1", "r2"}
    first = [comparison.assignment[f"p{n + 1}"]["r1"] for n in range(8)]
    assert len(set(first)) == 2  # both models appear first somewhere
    again = _comparison(owner, project)
    assert again.assignment == comparison.assignment  # seeded


@pytest.mark.django_db
def test_results_map_rankings_to_models_with_groups_above_threshold(owner, project, django_user_model, settings):
    settings.AGGREGATE_MIN_GROUP = 3
    comparison = _comparison(owner, project)
    for n in range(4):
        user = django_user_model.objects.create_user(f"rater{n}")
        AnnotatorProfile.objects.create(user=user, country="DE" if n < 3 else "KE", consented_fields=["country"])
        rater = rater_for_user(user)
        for item in Item.objects.filter(project=comparison.project):
            winner = next(r for r, m in comparison.assignment[item.external_id].items() if m == NAMES[0])
            loser = "r2" if winner == "r1" else "r1"
            record_ranking(item=item, rater=rater, order=[[winner], [loser]] if n != 3 else [[loser], [winner]])
    results = blind_results(comparison, n_boot=50)
    overall = results["overall"]
    assert overall["rankings"] == 32 and results["annotators"] == 4
    assert overall["win_rate"][NAMES[0]] == 0.75
    assert overall["bt"][NAMES[0]] > overall["bt"][NAMES[1]]
    assert overall["battle_matrix"] == [[0, 32], [32, 0]]
    assert list(results["groups"]) == ["country=DE"]  # KE has one annotator, below the threshold
    assert results["groups"]["country=DE"]["win_rate"][NAMES[0]] == 1.0


@pytest.mark.django_db
def test_one_model_or_missing_generations_are_refused(owner, project):
    with pytest.raises(BlindError, match="at least two models"):
        create_blind_project(owner=owner, source_project=project, name="x", prompts=PROMPTS, generations={"a": ["t"] * 8})
    with pytest.raises(BlindError, match="'b' has 1 generations for 8 prompts"):
        create_blind_project(owner=owner, source_project=project, name="x", prompts=PROMPTS, generations={"a": ["t"] * 8, "b": ["t"]})
    assert not BlindComparison.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_generation_run_creates_the_blind_project(owner, project, tiny_model_dir, settings):
    settings.MODELS_DIR = tiny_model_dir.parent
    config = {"models": [{"name": "m1", "path": str(tiny_model_dir)}, {"name": "m2", "path": str(tiny_model_dir)}],
              "limit": 2, "max_new_tokens": 4, "seed": 1, "name": "Tiny blind", "device": "cpu"}
    run = execute(start_run("blind-generation", owner, project, config).pk)
    assert run.status == Run.Status.SUCCEEDED, run.error
    comparison = BlindComparison.objects.get(run=run)
    assert comparison.project.items.count() == 2 and comparison.model_names == ["m1", "m2"]
    assert comparison.project.memberships.filter(user__username="annie").exists()


@pytest.mark.django_db
def test_pages_are_for_researchers_only(client, owner, project, outsider, annotator):
    comparison = _comparison(owner, project)
    urls = [reverse("evaluation-blind-create", args=[project.public_id]),
            reverse("evaluation-blind-detail", args=[project.public_id, comparison.pk])]
    for user in (outsider, annotator):
        client.force_login(user)
        assert all(client.get(u).status_code == 404 for u in urls)
        assert client.post(urls[0], {"config": "{}"}).status_code == 404
    owner.user_permissions.add(Permission.objects.get(codename="add_project"))
    client.force_login(owner)
    page = client.get(urls[1]).content.decode()
    assert NAMES[0] in page and "No rankings yet" in page
    bad = client.post(urls[0], {"config": '{"models": [{"name": "a", "path": "/etc"}]}'})
    assert bad.status_code == 400 and "at least two models" in bad.content.decode()
    assert not Run.objects.exists()
