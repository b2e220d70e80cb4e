"""Evaluation runs with a reward model as the scorer: config validation naming the field, a run
end to end (preference, RewardBench best-of-4, distributional) with the scorer stored on every
result, resume from stored chunks, the engine child process, and the report showing the scorer."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from evaluation import runs
from evaluation.models import EvaluationResult, ScoreChunk
from evaluation.runs import evaluate_run
from evaluation.services import start_evaluation
from jobs.models import Run
from jobs.runner import Cancelled, execute
from jobs.services import RunError
from tests.evaluation.snapshots import pair, write_snapshot
from tests.jobs.conftest import _migrated_sqlite_template, shared_db  # noqa: F401  (fixtures)

BUILT, SWAPPED = "5eed0000aaaa1111", "5eed0000bbbb2222"


def _write_reward_snapshots(root) -> None:
    """Two snapshots whose test pairs the exclaiming reward model answers: in BUILT the chosen
    response carries "!", in SWAPPED the rejected one (groups in BUILT: DE and KE)."""
    for sid, (good, bad) in ((BUILT, ("Yes{}!", "No{}.")), (SWAPPED, ("No{}.", "Yes{}!"))):
        rows = [pair("t0", "Fine!", "fine", split="train")]
        rows += [pair(f"i{n}", good.format(n), bad.format(n)) for n in range(4)]
        path = root / sid
        (path / "groups").mkdir(parents=True)
        (path / "pairs.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n")
        for group, items in (("country=DE", ("i0", "i1")), ("country=KE", ("i2", "i3"))):
            lines = [json.dumps({**r, "group": {"country": group[-2:]}}) for r in rows if r["item"] in items]
            (path / "groups" / f"{group}.jsonl").write_text("\n".join(lines) + "\n")


@pytest.fixture
def dirs(settings, tmp_path, tiny_model_dir, reward_models_dir):
    settings.EVALUATION_ENGINE_SUBPROCESS = False
    settings.MODELS_DIR = reward_models_dir
    settings.EXTRA_MODEL_DIRS = [str(tiny_model_dir.parent)]
    settings.ARTIFACTS_DIR = tmp_path / "artifacts"
    settings.SNAPSHOTS_DIR = tmp_path / "snapshots"
    settings.VAR_DIR = tmp_path
    _write_reward_snapshots(tmp_path / "snapshots")
    write_snapshot(tmp_path / "snapshots", "3f9a0c1d2e4b5a69")
    rows = [{"prompt": "Pick one.", "chosen": "Yes!", "rejected": ["No.", "Maybe.", "Perhaps."], "subset": "built"},
            {"prompt": "Pick again.", "chosen": "Sure!", "rejected": "Nope.", "subset": "built"},
            {"prompt": "Pick one.", "chosen": "No.", "rejected": ["Yes!", "Maybe.", "Perhaps."], "subset": "swapped"}]
    (tmp_path / "benchmarks").mkdir()
    (tmp_path / "benchmarks" / "rb.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    return tmp_path


def _rm(reward_models_dir, name="exclaiming", **extra) -> dict:
    return {"name": "rm", "path": str(reward_models_dir / name), "kind": "reward_model", **extra}


def _config(tiny_model_dir, reward_models_dir, **over) -> dict:
    config = {
        "models": [{"name": "tiny", "path": str(tiny_model_dir)}, _rm(reward_models_dir)],
        "benchmarks": [{"name": "preference", "snapshots": {"built": BUILT, "swapped": SWAPPED}}],
        "chunk_size": 4, "device": "cpu",
    }
    config.update(over)
    return config


# ---------------------------------------------------------------- validation


def _escaped(message: str) -> str:
    return message.replace("[", r"\[").replace("]", r"\]").replace("(", r"\(").replace(")", r"\)")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"models": [{"name": "rm", "path": "<random>", "kind": "classifier"}]},
         "models[0].kind must be causal_lm or reward_model, not 'classifier'"),
        ({"benchmarks": [{"name": "bbq", "per_category": 1}]},
         "models[1].kind: rm is a reward model, which cannot score benchmarks[0] (bbq)"),
        ({"benchmarks": [{"name": "preference", "snapshots": {"h": BUILT}}, {"name": "crows_pairs", "limit": 2}]},
         "models[1].kind: rm is a reward model, which cannot score benchmarks[1] (crows_pairs)"),
        ({"benchmarks": [{"name": "winogenerated", "limit": 2}]},
         "models[1].kind: rm is a reward model, which cannot score benchmarks[0] (winogenerated)"),
        ({"benchmarks": [{"name": "lm_eval", "tasks": ["hellaswag"]}]},
         "models[1].kind: rm is a reward model, which cannot score benchmarks[0] (lm_eval)"),
        ({"models": [{"name": "rm", "path": "<random>", "kind": "reward_model", "reference": "<tiny>"}]},
         "models[0].reference: a reward model is scored by its own reward and takes no reference"),
        ({"models": [{"name": "lm", "path": "<tiny>", "kind": "reward_model"}]},
         "models[0].kind: <tiny> is not a sequence-classification model, so not a reward model"),
        ({"models": [{"name": "rm", "path": "<random>"}]},
         'models[0].kind: <random> is a sequence-classification model: declare "kind": "reward_model"'),
        ({"benchmarks": [{"name": "rewardbench", "path": "<rb>", "score": "reward"}]},
         "benchmarks[0].score: reward is not chosen per benchmark"),
    ],
)
def test_bad_reward_model_config_is_refused_naming_the_field(dirs, tiny_model_dir, reward_models_dir, change, message):
    where = {"<random>": str(reward_models_dir / "random"), "<tiny>": str(tiny_model_dir.resolve()),
             "<rb>": str(dirs / "benchmarks" / "rb.jsonl")}
    text = json.dumps(change)
    for marker, path in where.items():
        text, message = text.replace(marker, path), message.replace(marker, path)
    with pytest.raises(ValueError, match=_escaped(message)):
        runs.clean_config(_config(tiny_model_dir, reward_models_dir, **json.loads(text)))


def test_a_reward_model_beside_a_dpo_policy_needs_no_reference(dirs, tiny_model_dir, reward_models_dir):
    policy = {"name": "tiny", "path": str(tiny_model_dir), "reference": str(tiny_model_dir)}
    config = _config(tiny_model_dir, reward_models_dir, models=[policy, _rm(reward_models_dir)],
                     benchmarks=[{"name": "preference", "snapshots": {"built": BUILT}, "score": "dpo"}])
    cleaned = runs.clean_config(config)
    assert cleaned["models"][1] == {"name": "rm", "path": str(reward_models_dir / "exclaiming"), "reference": None,
                                    "kind": "reward_model"}
    assert "kind" not in cleaned["models"][0]  # a causal LM's entry hashes as it did before reward models


def test_a_blind_comparison_refuses_a_reward_model(dirs, tiny_model_dir, reward_models_dir):
    from evaluation.blind import clean_blind_config

    config = {"models": [{"name": "tiny", "path": str(tiny_model_dir)}, _rm(reward_models_dir)]}
    with pytest.raises(ValueError, match=_escaped("models[1].kind: rm is a reward model, which writes no responses")):
        clean_blind_config(config)


# ---------------------------------------------------------------- end to end


def _result(erun, model, benchmark, metric, scope="overall", value=""):
    return EvaluationResult.objects.get(evaluation=erun, model_name=model, benchmark=benchmark, metric=metric,
                                        scope=scope, scope_value=value)


@pytest.mark.django_db(transaction=True)
def test_a_run_scores_with_the_reward_model_end_to_end(owner, project, dirs, tiny_model_dir, reward_models_dir,
                                                       django_user_model):
    from annotation.models import Item
    from annotation.services import rater_for_user, record_ranking

    for n in range(4):
        rater = rater_for_user(django_user_model.objects.create_user(f"r{n}"))
        for item in Item.objects.filter(project=project):
            record_ranking(item=item, rater=rater, order=[["r1"], ["r2"], ["r3"], ["r4"]])
    benchmarks = [{"name": "preference", "snapshots": {"built": BUILT, "swapped": SWAPPED}},
                  {"name": "rewardbench", "path": str(dirs / "benchmarks" / "rb.jsonl")},
                  {"name": "distributional", "min_raters": 4}]
    erun = start_evaluation(owner=owner, project=project, config=_config(tiny_model_dir, reward_models_dir, benchmarks=benchmarks))
    run = execute(erun.run.pk)
    assert run.status == Run.Status.SUCCEEDED, run.error
    # preference: (4 + 4 collective pairs + 4 group pairs) x 2 responses; rewardbench 4 + 2 + 4; distributional 3 x 4; twice
    assert run.progress_done == run.progress_total == 2 * (24 + 10 + 12)

    for scope, value, expected in (("collective", "built", 1.0), ("collective", "swapped", 0.0),
                                   ("group", "country=DE", 1.0), ("group", "country=KE", 1.0)):
        assert _result(erun, "rm", "preference", "accuracy", scope, value).value == expected, value
    assert _result(erun, "rm", "preference", "group_gap").value == 0.0
    assert _result(erun, "rm", "rewardbench", "accuracy", "subset", "built").value == 1.0
    assert _result(erun, "rm", "rewardbench", "accuracy", "subset", "swapped").value == 0.0
    # every response of the project's items lacks "!": equal rewards, a uniform split, the uniform baseline exactly
    assert _result(erun, "rm", "distributional", "alignment").value == pytest.approx(
        _result(erun, "rm", "distributional", "uniform_baseline").value)

    scorers = dict(EvaluationResult.objects.filter(evaluation=erun).values_list("model_name", "scorer").distinct())
    assert scorers == {"tiny": "loglik", "rm": "reward"}
    roles = set(ScoreChunk.objects.filter(evaluation=erun).values_list("model_name", "role"))
    assert roles == {("tiny", "policy"), ("rm", "reward")}
    stored = json.loads(Path(next(a for a in run.artifacts if a.endswith("results.json"))).read_text())
    assert {r["scorer"] for r in stored["results"] if r["model_name"] == "rm"} == {"reward"}


@pytest.mark.django_db(transaction=True)
def test_a_stopped_reward_run_resumes_from_its_stored_chunks(owner, project, dirs, tiny_model_dir, reward_models_dir):
    from tests.evaluation.test_runs import _StopAfter

    config = _config(tiny_model_dir, reward_models_dir, models=[_rm(reward_models_dir)], chunk_size=4)
    erun = start_evaluation(owner=owner, project=project, config=config)
    with pytest.raises(Cancelled):
        evaluate_run(erun, _StopAfter(2))
    first = {c.index: c.pk for c in ScoreChunk.objects.filter(evaluation=erun, role="reward")}
    assert sorted(first) == [0, 1]
    run = execute(erun.run.pk)
    assert run.status == Run.Status.SUCCEEDED, run.error
    chunks = {c.index: c.pk for c in ScoreChunk.objects.filter(evaluation=erun, role="reward")}
    assert len(chunks) == 6 and all(chunks[i] == pk for i, pk in first.items())  # 24 requests in chunks of 4
    assert _result(erun, "rm", "preference", "accuracy", "collective", "built").value == 1.0


@pytest.mark.django_db(transaction=True)
def test_start_evaluation_refuses_a_reward_model_on_bbq_and_creates_nothing(owner, project, dirs, tiny_model_dir,
                                                                             reward_models_dir):
    with pytest.raises(RunError, match=_escaped("models[1].kind: rm is a reward model, which cannot score benchmarks[0] (bbq)")):
        start_evaluation(owner=owner, project=project,
                         config=_config(tiny_model_dir, reward_models_dir, benchmarks=[{"name": "bbq", "per_category": 1}]))
    assert not Run.objects.exists()


# ---------------------------------------------------------------- the engine child process


@pytest.fixture
def child_mode(settings, shared_db, monkeypatch, tmp_path, reward_models_dir):  # noqa: F811
    models = tmp_path / "models"
    shutil.copytree(reward_models_dir / "exclaiming", models / "exclaiming")
    snapshots = tmp_path / "snapshots"
    _write_reward_snapshots(snapshots)
    settings.EVALUATION_ENGINE_SUBPROCESS = True
    settings.MODELS_DIR, settings.ARTIFACTS_DIR, settings.SNAPSHOTS_DIR = models, tmp_path / "artifacts", snapshots
    monkeypatch.setenv("DATABASE_URL", shared_db)  # the child opens the test's database
    monkeypatch.setenv("RLCHF_MODELS_DIR", str(models))
    monkeypatch.setenv("RLCHF_ARTIFACTS_DIR", str(tmp_path / "artifacts"))
    monkeypatch.setenv("RLCHF_SNAPSHOTS_DIR", str(snapshots))
    return models


@pytest.mark.django_db(transaction=True)
def test_the_child_process_scores_with_the_reward_model(child_mode):
    from django.contrib.auth import get_user_model

    from annotation.services import create_project

    owner = get_user_model().objects.create_user("res", password="x")
    project = create_project(owner=owner, name="Eval", status="active")
    config = {"models": [{"name": "rm", "path": str(child_mode / "exclaiming"), "kind": "reward_model"}],
              "benchmarks": [{"name": "preference", "snapshots": {"built": BUILT}}], "chunk_size": 8, "device": "cpu"}
    erun = start_evaluation(owner=owner, project=project, config=config)
    run = execute(erun.run.pk)
    assert run.status == Run.Status.SUCCEEDED, run.log
    assert "evaluation_engine" in run.log and "loading reward model" in run.log
    assert set(ScoreChunk.objects.filter(evaluation=erun).values_list("role", flat=True)) == {"reward"}
    result = _result(erun, "rm", "preference", "accuracy", "collective", "built")
    assert (result.value, result.scorer) == (1.0, "reward")
