"""End to end with the real SmolLM2-135M-Instruct: prepared by `prepare_default_model` into
MODELS_DIR (under var/, so later runs reuse it), three personas rank two items of three
responses through the transformers engine, and the rankings land in the project."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
from django.core.management import call_command

from annotation.models import Ranking, Rater
from annotation.services import create_item, create_project
from jobs.models import Run
from jobs.runner import execute
from synthetic.models import Judgment
from synthetic.services import import_panel, start_synthetic_run

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

PERSONAS = (
    '{"id": "nurse", "description": "A retired nurse from Lyon who values kindness."}\n'
    '{"id": "engineer", "description": "A software engineer who wants short, exact answers."}\n'
    '{"id": "student", "description": "A 19-year-old student who likes examples."}\n'
)


@pytest.fixture(scope="session")
def smollm2_dir(django_db_blocker) -> Path:
    out = io.StringIO()
    with django_db_blocker.unblock():
        call_command("prepare_default_model", stdout=out)
    path = Path(out.getvalue().strip().splitlines()[-1])
    assert (path / "config.json").is_file()
    return path


def test_smollm2_ranks_items_for_three_personas(owner, smollm2_dir):
    project = create_project(owner=owner, name="E2E", status="active", overlap_target=3)
    answers = {
        "capital": ("What is the capital of France?", ["Paris.", "The capital of France is Paris.", "Bananas."]),
        "boil": ("At what temperature does water boil at sea level?", ["100 °C.", "Cold.", "About 100 degrees Celsius."]),
    }
    for external_id, (prompt, texts) in answers.items():
        create_item(project=project, external_id=external_id, prompt=prompt,
                    responses=[{"id": f"r{k}", "text": t} for k, t in enumerate(texts, 1)])
    panel = import_panel(owner=owner, name="Three", text=PERSONAS)
    srun = start_synthetic_run(method="listwise", owner=owner, project=project, panel=panel, engine="transformers",
                               model=str(smollm2_dir), backend_options={"device": "cpu", "batch_size": 6}, seed=1)
    run = execute(srun.run.pk)
    assert run.status == Run.Status.SUCCEEDED, run.log
    judgments = Judgment.objects.filter(run=srun).select_related("ranking", "rater")
    assert judgments.count() == 6
    for judgment in judgments:
        # Constrained decoding: every answer is a complete strict ranking of the three responses.
        assert judgment.error == "", judgment.raw_output
        assert sorted(r for group in judgment.parsed_ranking for r in group) == ["r1", "r2", "r3"]
        assert judgment.ranking.shown_order == judgment.shown_order
        assert judgment.rater.model == "transformers:smollm2-135m-instruct"
    rankings = Ranking.objects.filter(item__project=project, is_current=True)
    assert rankings.count() == 6
    assert set(rankings.values_list("rater__kind", flat=True)) == {Rater.Kind.SYNTHETIC}
    assert {r.persona["id"] for r in Rater.objects.filter(rankings__in=rankings)} == {"nurse", "engineer", "student"}
    srun.refresh_from_db()
    # Three permutations per judgment by default, every one kept raw and counted for position bias.
    assert srun.parse_failures == 0 and srun.bias_decisions == 18
    assert all(len(j.permutations) == 3 for j in judgments)
    assert srun.signal["position_decisions"] == {"3": 18}


def test_smollm2_pointwise_puts_its_mass_on_the_ratings(owner, smollm2_dir):
    """The answer prefix ("Rating: ") is what makes the digits the model's next token: without it
    SmolLM2 put 3-6% of its probability on them (measured), so every judgment was low-confidence."""
    project = create_project(owner=owner, name="Pointwise", status="active", overlap_target=3)
    create_item(project=project, external_id="dog", prompt="How do I stop my neighbour's dog barking at night?",
                responses=[{"id": "r1", "text": "Talk to your neighbour politely; if that fails, contact the council."},
                           {"id": "r2", "text": "Poison it."}])
    panel = import_panel(owner=owner, name="Three", text=PERSONAS)
    srun = start_synthetic_run(owner=owner, project=project, panel=panel, engine="transformers", method="pointwise",
                               model=str(smollm2_dir), backend_options={"device": "cpu", "batch_size": 6})
    run = execute(srun.run.pk)
    assert run.status == Run.Status.SUCCEEDED, run.log
    for judgment in Judgment.objects.filter(run=srun):
        assert judgment.label_mass > 0.5, judgment.raw_output
        assert set(judgment.scores) == {"r1", "r2"} and all(1 <= v <= 5 for v in judgment.scores.values())
    srun.refresh_from_db()
    assert srun.low_confidence == 0 and srun.bias_decisions == 0  # no positions to be biased by
