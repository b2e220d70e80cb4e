"""Starting runs: every problem is reported before anything is stored or queued."""
from __future__ import annotations

import pytest

from jobs.models import Run
from synthetic.models import GenerationRun, SyntheticRun
from synthetic.services import SyntheticRunError, start_generation_run, start_synthetic_run

pytestmark = pytest.mark.django_db


def _start(owner, project, panel, **overrides):
    fields = {"owner": owner, "project": project, "panel": panel, "engine": "test-fake", "model": "fake-model"}
    return start_synthetic_run(**{**fields, **overrides})


def test_a_valid_run_is_queued_with_its_items_frozen(owner, project, panel, fake):
    srun = _start(owner, project, panel, items="random", sample_size=2, sample_seed=1)
    assert srun.run.kind == "synthetic" and srun.run.status == Run.Status.QUEUED
    assert srun.run.project == project and srun.run.owner == owner
    assert len(srun.item_ids) == 2 and set(srun.item_ids) <= {"item-0", "item-1", "item-2"}
    assert srun.judgments_total == 2 * 3
    assert srun.method == "pointwise" and srun.prompt_version == "pointwise_v1"  # the default method


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"engine": "transformers", "model": "var/models/no-such-model"}, "no-such-model' does not exist"),
        ({"engine": "transformers", "model": "/etc/passwd"}, "model: '/etc/passwd' is outside the allowed directories"),
        ({"engine": "nope"}, "Unknown inference engine 'nope'"),
        ({"backend_options": {"batch_sise": 4}}, "unknown backend option(s) batch_sise"),
        ({"items": "list", "item_ids": ["item-0", "ghost"]}, "no item with external id 'ghost'"),
        ({"method": "borda"}, "unknown method 'borda'"),
        ({"method": "listwise", "prompt_version": "listwise_v99"}, "no prompt template 'listwise_v99'"),
        ({"method": "pairwise_logprob", "prompt_version": "listwise_v1"}, "not a pairwise_logprob prompt"),
        ({"tie_margin": 0.7}, "tie margin"),
    ],
)
def test_bad_configs_are_refused_and_nothing_is_queued(owner, project, panel, fake, overrides, message):
    with pytest.raises(SyntheticRunError) as excinfo:
        _start(owner, project, panel, **overrides)
    assert message in str(excinfo.value)
    assert not Run.objects.exists()
    assert not SyntheticRun.objects.exists()


def test_vllm_missing_is_reported_before_queueing(owner, project, panel, fake):
    import importlib.util

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is installed here")
    with pytest.raises(SyntheticRunError, match="needs vllm"):
        _start(owner, project, panel, engine="vllm", model="var/models/x")
    assert not Run.objects.exists()


def test_ties_need_a_project_that_allows_them(owner, project, panel, fake):
    project.allow_ties = False
    project.save(update_fields=["allow_ties"])
    with pytest.raises(SyntheticRunError, match="does not allow ties"):
        _start(owner, project, panel, allow_ties=True)


def test_generation_run_checks_prompts_models_and_k(owner, project, fake):
    models = [{"engine": "test-fake", "model": "m"}]
    prompts = [{"id": "new-1", "prompt": "Hi?"}]
    with pytest.raises(SyntheticRunError, match="temperature"):
        start_generation_run(owner=owner, project=project, prompts=prompts, models=models, k=3, temperature=0)
    with pytest.raises(SyntheticRunError, match="already has item"):
        start_generation_run(owner=owner, project=project, prompts=[{"id": "item-0", "prompt": "x"}], models=models)
    with pytest.raises(SyntheticRunError, match="between 2 and 16"):
        start_generation_run(owner=owner, project=project, prompts=prompts, models=models, k=1)
    assert not Run.objects.exists()
    grun = start_generation_run(owner=owner, project=project, prompts=prompts, models=models, k=3)
    assert grun.run.kind == "generation" and GenerationRun.objects.count() == 1
