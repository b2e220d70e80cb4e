"""What a run reports: all-failed runs fail with their cause, partial failures are counted where
the researcher sees them, signal checks and degenerate warnings, raters per method, and deleting
a run's rankings (around the deterministic fake engine)."""
from __future__ import annotations

import pytest
from django.urls import reverse

from annotation.models import Item, Ranking, Rater
from jobs.live import render_status
from jobs.models import Run
from jobs.runner import execute
from synthetic.models import Judgment, SyntheticRun
from synthetic.services import start_synthetic_run

pytestmark = pytest.mark.django_db(transaction=True)


def _start(owner, project, panel, **overrides):
    fields = {"owner": owner, "project": project, "panel": panel, "engine": "test-fake", "model": "fake-model",
              "method": "listwise"}
    return start_synthetic_run(**{**fields, **overrides})


def summary_url(srun):
    return reverse("synthetic-run-summary", args=[srun.project.public_id, srun.pk])


def delete_url(srun):
    return reverse("synthetic-run-delete-rankings", args=[srun.project.public_id, srun.pk])


def test_a_run_where_every_judgment_failed_ends_failed_with_the_first_error(owner, project, panel, fake):
    srun = _start(owner, project, panel, backend_options={"options": {"invalid_every": 1}})
    run = execute(srun.run.pk)
    assert run.status == Run.Status.FAILED
    assert run.error_cause.startswith("every judgment failed (9 of 9); first error (9 time(s)): unparseable ranking")
    assert Judgment.objects.filter(run=srun).count() == 9  # kept for the record
    html = render_status(run)
    assert "Failed:</strong> every judgment failed (9 of 9)" in html


def test_some_failures_succeed_with_a_visible_count(owner, project, panel, fake):
    srun = _start(owner, project, panel, permutations=1, backend_options={"options": {"invalid_every": 2}})
    run = execute(srun.run.pk)
    srun.refresh_from_db()
    assert run.status == Run.Status.SUCCEEDED
    assert 0 < srun.parse_failures < 9
    html = render_status(run)
    assert f'data-failures="{srun.parse_failures}"' in html and f"{srun.parse_failures} failed" in html


def test_an_engine_that_cannot_load_names_the_cause_in_one_line(owner, project, panel, fake):
    srun = _start(owner, project, panel)
    SyntheticRun.objects.filter(pk=srun.pk).update(engine="nope")
    run = execute(srun.run.pk)
    assert run.status == Run.Status.FAILED
    assert run.error_cause.startswith("nope:fake-model: Unknown inference engine 'nope'; choose one of:")
    assert "Traceback" in run.error_details


def test_a_worker_without_vllm_fails_the_run_with_one_line_saying_what_to_use(settings, tmp_path, owner, project,
                                                                               panel, fake):
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    settings.MODELS_DIR = tmp_path  # the run's model path must lie under the model roots
    (tmp_path / "judge").mkdir()
    (tmp_path / "judge" / "config.json").write_text("{}")
    srun = _start(owner, project, panel)  # queued where the web side had vLLM; the worker has not
    SyntheticRun.objects.filter(pk=srun.pk).update(engine="vllm", model=str(tmp_path / "judge"))
    run = execute(srun.run.pk)
    assert run.status == Run.Status.FAILED
    assert run.error_cause == (
        "vllm:judge: The 'vllm' engine needs vllm, which is not installed on this machine: vLLM is an optional "
        "extra for GPU machines (pip install vllm); use the 'transformers' engine here, or the 'openai' engine "
        "against a `vllm serve` server."
    )
    assert "Traceback" in run.error_details and not Judgment.objects.filter(run=srun).exists()


def test_a_degenerate_run_is_flagged_at_the_top_of_its_summary(client, owner, project, panel, fake):
    srun = _start(owner, project, panel, permutations=1, backend_options={"options": {"copy_order": True}})
    assert execute(srun.run.pk).status == Run.Status.SUCCEEDED
    srun.refresh_from_db()
    assert srun.signal["shown_or_reverse"]["value"] == 1.0
    client.force_login(owner)
    page = client.get(summary_url(srun)).content.decode()
    assert page.index('id="degenerate-warning"') < page.index('id="position-bias"')
    assert "100% of the rankings are exactly the shown order or its reverse" in page
    # Every shown position ends at its own rank: the diagonal of the 4 x 4 table is 100%.
    assert page.count("<td>100.0%</td>") == 4


def test_a_fair_run_shows_the_signal_checks_without_a_warning(client, owner, project, panel, fake):
    srun = _start(owner, project, panel, permutations=4)
    assert execute(srun.run.pk).status == Run.Status.SUCCEEDED
    srun.refresh_from_db()
    judgment = Judgment.objects.filter(run=srun).first()
    assert len(judgment.permutations) == 4 and all(p["raw_output"] for p in judgment.permutations)
    client.force_login(owner)
    page = client.get(summary_url(srun)).content.decode()
    assert 'id="degenerate-warning"' not in page
    assert 'id="persona-sensitivity"' in page and "one persona under two orders" in page
    assert "No item of this run has a reference" in page


def test_agreement_with_imported_chosen_and_rejected(client, owner, project, panel, fake):
    from annotation.services import create_item

    create_item(project=project, external_id="hh-1", prompt="Q?", metadata={"pairwise": {"chosen": "r1", "rejected": "r2"}},
                responses=[{"id": "r1", "text": "good", "source": "chosen"}, {"id": "r2", "text": "bad", "source": "rejected"}])
    srun = _start(owner, project, panel, items="list", item_ids=["hh-1"], permutations=2)
    execute(srun.run.pk)
    srun.refresh_from_db()
    reference = srun.signal["reference"]
    assert reference["n"] == 3 and srun.signal["reference_items"] == 1
    rankings = [j.parsed_ranking for j in Judgment.objects.filter(run=srun)]
    expected = sum(1.0 if r == [["r1"], ["r2"]] else 0.0 if r == [["r2"], ["r1"]] else 0.5 for r in rankings) / 3
    assert reference["value"] == pytest.approx(expected)
    client.force_login(owner)
    assert "of the reference's pairs ordered the same way" in client.get(summary_url(srun)).content.decode()


def test_runs_with_other_methods_are_other_raters_and_never_replace_rankings(owner, project, panel, fake):
    listwise = _start(owner, project, panel)
    pointwise = _start(owner, project, panel, method="pointwise")
    assert execute(listwise.run.pk).status == Run.Status.SUCCEEDED
    assert execute(pointwise.run.pk).status == Run.Status.SUCCEEDED, pointwise.run.error
    current = Ranking.objects.filter(rater__kind=Rater.Kind.SYNTHETIC, is_current=True)
    assert current.count() == 18 and not current.filter(version__gt=1).exists()
    keys = set(Rater.objects.filter(kind=Rater.Kind.SYNTHETIC).values_list("key", flat=True))
    assert len(keys) == 6
    assert sum(k.endswith("#listwise/listwise_v2") for k in keys) == 3
    assert sum(k.endswith("#pointwise/pointwise_v1") for k in keys) == 3
    # The run that produced each ranking is on record.
    assert {j.ranking.pk for j in Judgment.objects.filter(run=pointwise)} <= set(current.values_list("pk", flat=True))


def test_deleting_a_runs_rankings_restores_the_earlier_run_and_keeps_counts(client, owner, project, panel, fake):
    first = _start(owner, project, panel, seed=1)
    execute(first.run.pk)
    second = _start(owner, project, panel, seed=2)  # same method and prompt: new versions
    execute(second.run.pk)
    counts = dict(Item.objects.filter(project=project).values_list("pk", "synthetic_count"))
    assert set(counts.values()) == {3}
    assert Ranking.objects.filter(rater__kind=Rater.Kind.SYNTHETIC, version=2, is_current=True).count() == 9
    client.force_login(owner)
    response = client.post(delete_url(second))
    assert response.status_code == 302 and response["Location"] == summary_url(second)
    assert not Ranking.objects.filter(judgments__run=second).exists()
    assert Judgment.objects.filter(run=second).count() == 9  # the judgments stay
    restored = Ranking.objects.filter(judgments__run=first)
    assert restored.count() == 9 and all(r.is_current for r in restored)
    assert dict(Item.objects.filter(project=project).values_list("pk", "synthetic_count")) == counts
    second.refresh_from_db()
    assert second.rankings_deleted == 9 and second.rankings_rejected == 0
    # Deleting the first run's rankings too empties the items' synthetic counts.
    client.post(delete_url(first))
    assert not Ranking.objects.filter(rater__kind=Rater.Kind.SYNTHETIC).exists()
    assert set(Item.objects.filter(project=project).values_list("synthetic_count", flat=True)) == {0}
    assert set(Item.objects.filter(project=project).values_list("ranking_count", flat=True)) == {0}  # human


def test_only_researchers_delete_a_runs_rankings(client, owner, annotator, outsider, project, panel, fake):
    srun = _start(owner, project, panel)
    execute(srun.run.pk)
    client.force_login(outsider)
    assert client.post(delete_url(srun)).status_code == 404
    client.force_login(annotator)
    assert client.post(delete_url(srun)).status_code == 403
    client.force_login(owner)
    assert client.get(delete_url(srun)).status_code == 405
    assert Ranking.objects.filter(judgments__run=srun).count() == 9


def test_a_running_run_keeps_its_rankings(client, owner, project, panel, fake):
    srun = _start(owner, project, panel)
    execute(srun.run.pk)
    Run.objects.filter(pk=srun.run.pk).update(status=Run.Status.RUNNING)
    client.force_login(owner)
    page = client.post(delete_url(srun), follow=True).content.decode()
    assert "cancel it before deleting its rankings" in page
    assert Ranking.objects.filter(judgments__run=srun).count() == 9
