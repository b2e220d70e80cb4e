"""The "synthetic" and "generation" run handlers around a deterministic fake engine."""
from __future__ import annotations

import pytest

from annotation.models import Item, Ranking, Rater
from jobs.models import Run
from jobs.runner import RunContext, execute
from jobs.services import cancel_run, resume_run
from synthetic.models import Judgment
from synthetic.runs import judge_run
from synthetic.services import start_generation_run, start_synthetic_run

# execute() closes connections that are inside a transaction: these tests commit for real.
pytestmark = pytest.mark.django_db(transaction=True)


def _start(owner, project, panel, **overrides):
    fields = {"owner": owner, "project": project, "panel": panel, "engine": "test-fake", "model": "fake-model",
              "method": "listwise"}
    return start_synthetic_run(**{**fields, **overrides})


def test_every_judgment_is_stored_and_rankings_land_as_synthetic_raters(owner, project, panel, fake):
    srun = _start(owner, project, panel, seed=7)
    run = execute(srun.run.pk)
    assert run.status == Run.Status.SUCCEEDED, run.error
    assert (run.progress_done, run.progress_total) == (9, 9)
    judgments = list(Judgment.objects.filter(run=srun).select_related("ranking", "rater"))
    assert len(judgments) == 9  # 3 items x 3 personas
    for judgment in judgments:
        assert judgment.rater.kind == Rater.Kind.SYNTHETIC
        assert judgment.rater.model == "test-fake:fake-model"
        assert judgment.ranking.order == judgment.parsed_ranking
        assert judgment.ranking.shown_order == judgment.shown_order
        assert sorted(judgment.shown_order) == ["r1", "r2", "r3", "r4"]
    rankings = Ranking.objects.filter(item__project=project, rater__kind=Rater.Kind.SYNTHETIC, is_current=True)
    assert rankings.count() == 9
    # Synthetic rankings leave the human overlap target untouched.
    assert set(Item.objects.filter(project=project).values_list("ranking_count", "synthetic_count")) == {(0, 3)}
    personas = {r.persona["id"] for r in Rater.objects.filter(kind=Rater.Kind.SYNTHETIC)}
    assert "p1" in personas and len(personas) == 3
    srun.refresh_from_db()
    assert (srun.judgments_done, srun.parse_failures) == (9, 0)
    assert srun.expected_first_rate == pytest.approx(0.25)
    # Three permutations per judgment by default: each is a position-bias decision.
    assert srun.bias_decisions == 27 and srun.first_shown_win_rate is not None
    assert all(len(j.permutations) == 3 for j in judgments)


def test_parse_failures_are_stored_and_counted_never_dropped(owner, project, panel, fake):
    srun = _start(owner, project, panel, permutations=1, backend_options={"options": {"invalid_every": 2}})
    run = execute(srun.run.pk)
    assert run.status == Run.Status.SUCCEEDED, run.error
    failures = Judgment.objects.filter(run=srun, parsed_ranking__isnull=True)
    srun.refresh_from_db()
    assert 0 < failures.count() < 9
    assert srun.judgments_done == 9 and srun.parse_failures == failures.count()
    for failure in failures:
        assert failure.raw_output == "I cannot decide."
        assert "unparseable ranking" in failure.error
        assert failure.ranking is None
    assert Ranking.objects.filter(rater__kind=Rater.Kind.SYNTHETIC).count() == 9 - failures.count()
    assert f"{failures.count()} failed" in run.log


def test_the_position_bias_of_a_first_preferring_rater_is_reported(owner, project, panel, fake):
    srun = _start(owner, project, panel, backend_options={"options": {"prefer_first": True}})
    execute(srun.run.pk)
    srun.refresh_from_db()
    assert srun.first_shown_win_rate == 1.0 and srun.expected_first_rate == pytest.approx(0.25)
    assert srun.bias_z > 3


def test_cancel_between_chunks_then_resume_skips_stored_judgments(owner, project, panel, fake, monkeypatch):
    monkeypatch.setattr("jobs.runner.CANCEL_POLL", 0)  # look at the cancel flag on every check
    srun = _start(owner, project, panel, permutations=1)
    srun.sampling = {**srun.sampling, "chunk_size": 4}
    srun.save(update_fields=["sampling"])
    fake.after_call = lambda n: cancel_run(srun.run) if n == 1 else None
    run = execute(srun.run.pk)
    assert run.status == Run.Status.CANCELLED
    assert fake.calls == [4]  # the second chunk was never sent
    assert fake.closed == 1  # the engine is released on cancel
    assert run.progress_done == 4
    first = {(j.item_id, j.persona_id): j.parsed_ranking for j in Judgment.objects.filter(run=srun)}
    assert len(first) == 4

    fake.reset()
    resume_run(run)
    run = execute(run.pk)
    assert run.status == Run.Status.SUCCEEDED, run.error
    assert sum(fake.calls) == 5  # only the 5 pending judgments went to the engine
    judgments = Judgment.objects.filter(run=srun)
    assert judgments.count() == 9 and run.progress_done == 9
    kept = {(j.item_id, j.persona_id): j.parsed_ranking for j in judgments if (j.item_id, j.persona_id) in first}
    assert kept == first  # the stored judgments were not redone
    # Nothing was ranked twice: every synthetic ranking is a first version.
    assert not Ranking.objects.filter(rater__kind=Rater.Kind.SYNTHETIC, version__gt=1).exists()


def test_a_run_resumed_after_completion_does_no_work(owner, project, panel, fake):
    srun = _start(owner, project, panel)
    execute(srun.run.pk)
    fake.reset()
    judge_run(srun, RunContext(srun.run))
    assert fake.calls == []
    assert Judgment.objects.filter(run=srun).count() == 9


def test_rankings_the_project_rejects_are_kept_as_judgments(owner, project, panel, fake):
    srun = _start(owner, project, panel, allow_ties=True, backend_options={"options": {"invalid_every": 0}})
    project.allow_ties = False  # changed after the run started
    project.save(update_fields=["allow_ties"])
    execute(srun.run.pk)
    srun.refresh_from_db()
    tied = [j for j in Judgment.objects.filter(run=srun) if any(len(g) > 1 for g in j.parsed_ranking)]
    assert tied, "the fake engine writes some ties when they are allowed"
    assert all(j.ranking is None and "rejected by the project" in j.error for j in tied)
    assert srun.rankings_rejected == len(tied) and srun.judgments_done == 9


def test_pairwise_judgments_store_every_pair(owner, project, panel, fake):
    srun = _start(owner, project, panel, method="pairwise_logprob", both_orders=True, items="list", item_ids=["item-1"])
    run = execute(srun.run.pk)
    assert run.status == Run.Status.SUCCEEDED, run.error
    judgment = Judgment.objects.filter(run=srun).first()
    assert len(judgment.pairs) == 12  # 6 pairs of 4 responses, both orders
    assert judgment.ranking is not None and judgment.prompt_version == "pairwise_v2"
    srun.refresh_from_db()
    assert srun.expected_first_rate == 0.5


def test_an_engine_that_fails_to_load_fails_the_run_with_its_error(owner, project, panel, fake):
    srun = _start(owner, project, panel)
    srun.engine = "nope"
    srun.save(update_fields=["engine"])
    run = execute(srun.run.pk)
    assert run.status == Run.Status.FAILED
    assert "Unknown inference engine 'nope'" in run.error


def test_generation_run_stores_items_with_k_labelled_responses(owner, project, fake):
    prompts = [{"id": f"gen-{n}", "prompt": f"Tell me about {n}."} for n in range(3)]
    models = [{"engine": "test-fake", "model": "alpha"}, {"engine": "test-fake", "model": "beta"}]
    grun = start_generation_run(owner=owner, project=project, prompts=prompts, models=models, k=3, seed=5)
    run = execute(grun.run.pk)
    assert run.status == Run.Status.SUCCEEDED, run.error
    items = Item.objects.filter(project=project, external_id__startswith="gen-").prefetch_related("responses")
    assert items.count() == 3
    for item in items:
        responses = list(item.responses.all())
        assert [r.response_id for r in responses] == ["r1", "r2", "r3"]
        assert [r.source for r in responses] == ["test-fake:alpha", "test-fake:alpha", "test-fake:beta"]
    # Resumed: the stored prompts are skipped.
    fake.reset()
    from synthetic.runs import generate_run

    generate_run(grun, RunContext(grun.run))
    assert fake.calls == []
