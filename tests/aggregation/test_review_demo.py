"""The review demo that `seed_demo` creates: simulated annotators with consented demographics,
the shipped SmolLM2 judgments as one finished synthetic run, twins linked, idempotent."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.urls import reverse

from aggregation.management.commands.seed_review_demo import DEMO_POOLS, PROJECT, simulate_ranking
from annotation.models import Project, Ranking, Rater
from synthetic.models import Judgment, SyntheticRun

pytestmark = pytest.mark.django_db
DEMO = Path(settings.BASE_DIR) / "data" / "demo"


def _lines(name: str) -> list[dict]:
    return [json.loads(line) for line in (DEMO / name).read_text(encoding="utf-8").splitlines() if line.strip()]


def test_review_demo_has_simulated_humans_and_stored_model_judgments(client, capsys):
    call_command("seed_demo")
    project = Project.objects.get(name=PROJECT)
    items, judgments = _lines("review_items.jsonl"), _lines("review_judgments.jsonl")
    annotators = json.loads((DEMO / "review_annotators.json").read_text())["annotators"]
    assert project.items.count() == len(items) >= 20
    human = Ranking.objects.filter(item__project=project, rater__kind=Rater.Kind.HUMAN, is_current=True)
    assert human.count() == len(items) * len(annotators)
    assert all(u.startswith("demo-sim-") for u in human.values_list("rater__user__username", flat=True))
    srun = SyntheticRun.objects.get(project=project)
    assert srun.run.status == "succeeded" and srun.judgments.count() == len(judgments)
    # Its summary is a finished run's: the signal checks, which call the shipped (old-prompt)
    # judgments what they are, and the warning in the log; one shown order per judgment.
    assert srun.permutations == 1
    assert any("shown order or its reverse" in reason for reason in srun.signal["degenerate"])
    assert "WARNING: " in srun.run.log
    parsed = [j for j in judgments if j["ranking"] is not None]
    stored = Ranking.objects.filter(item__project=project, rater__kind=Rater.Kind.SYNTHETIC)
    assert stored.count() == srun.judgments.filter(ranking__isnull=False).count() > 0
    assert stored.count() <= len(parsed)
    # The stored judgments are the file's, one for one (no invented rankings).
    key = lambda item, shown, raw, ranking: (item, tuple(shown), raw, json.dumps(ranking))  # noqa: E731
    expected = sorted(key(j["item"], j["shown_order"], j["raw_output"], j["ranking"]) for j in judgments)
    got = sorted(key(j.item.external_id, j.shown_order, j.raw_output, j.parsed_ranking)
                 for j in Judgment.objects.filter(run=srun).select_related("item"))
    assert got == expected
    twins = srun.panel.personas.filter(persona_id__startswith="twin-")
    assert twins.count() == len(annotators)
    assert all("demo-sim" not in t.persona_id for t in twins)  # the id does not name the annotator

    counts = (Ranking.objects.count(), Judgment.objects.count(), SyntheticRun.objects.count())
    call_command("seed_demo")
    assert (Ranking.objects.count(), Judgment.objects.count(), SyntheticRun.objects.count()) == counts

    client.login(username="researcher", password="researcher-demo")
    html = client.get(reverse("aggregation-project-review", args=[project.public_id])).content.decode()
    assert "political_leaning = left" in html and "gender = female" in html
    assert "country = India" not in html  # 3 simulated annotators: below the threshold of 5
    assert "demo-sim-01" in html  # the twin chart names the annotator (researchers only)

    # Pools to review under, made once (the second seed above added none).
    assert sorted(project.pools.values_list("name", flat=True)) == sorted(DEMO_POOLS)
    review = reverse("aggregation-project-review", args=[project.public_id])
    humans = client.get(review, {"pool": "humans", "csv": "agreement"}).content.decode()
    assert "synthetic raters,0,0" in humans and "everyone,12," in humans
    raked = client.get(review, {"pool": "humans raked by age"})
    assert raked.status_code == 200 and "effective sample size" in raked.content.decode()


def test_simulated_rankings_are_seeded_and_complete():
    profile = {"age_band": "18-29"}
    first = simulate_ranking("hh-x", ["r1", "r2", "r3"], profile, "demo-sim-01")
    assert first == simulate_ranking("hh-x", ["r1", "r2", "r3"], profile, "demo-sim-01")
    order, shown, seconds = first
    assert sorted(r for group in order for r in group) == ["r1", "r2", "r3"] and sorted(shown) == ["r1", "r2", "r3"]
    assert seconds > 0
