"""Blind human evaluation: each model's generations on held-out prompts become a ranking
project whose responses carry no model identity, in a seeded random order per item; the
annotators rank them with the ordinary widget. Results: Chatbot-Arena-style statistics
(`evaluation.benchmarks.arena`), overall and per annotator demographic group (groups of at
least AGGREGATE_MIN_GROUP annotators, consented fields only).

The "blind-generation" run kind generates the responses (greedy, batched, one model at a time)
and creates the project when every model is done.
"""
from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction

from annotation.models import Membership, Project, Ranking, Rater
from annotation.services import add_member, create_item, create_project
from evaluation.models import BlindComparison
from evaluation.runs import clean_model, is_reward_model
from jobs import registry
from jobs.models import Run
from jobs.runner import RunContext

GUIDELINES = (
    "Rank the responses from best to worst for the prompt. They were written by different AI models; "
    "which model wrote which response is hidden, and the order is random."
)
MAX_PROMPTS = 500


class BlindError(ValueError):
    """A blind comparison cannot be created as asked; the message says why."""


@transaction.atomic
def create_blind_project(
    *, owner: AbstractBaseUser, source_project: Project, name: str, prompts: Sequence[dict[str, Any]],
    generations: dict[str, Sequence[str]], seed: int = 0, run: Run | None = None,
) -> BlindComparison:
    """`prompts`: [{"id", "prompt", "context"?}]; `generations`: model name -> one text per prompt."""
    if len(generations) < 2:
        raise BlindError("a blind comparison needs at least two models")
    for model, texts in generations.items():
        if len(texts) != len(prompts):
            raise BlindError(f"model {model!r} has {len(texts)} generations for {len(prompts)} prompts")
    project = create_project(owner=owner, name=name, guidelines=GUIDELINES, overlap_target=source_project.overlap_target,
                             allow_ties=True, status=Project.Status.ACTIVE)
    annotators = Membership.objects.filter(project=source_project, role=Membership.Role.ANNOTATOR).select_related("user")
    for membership in annotators:
        add_member(project=project, user=membership.user, role=Membership.Role.ANNOTATOR)
    rng = random.Random(seed)
    models = list(generations)
    assignment: dict[str, dict[str, str]] = {}
    for n, prompt in enumerate(prompts):
        order = models[:]
        rng.shuffle(order)
        external_id = f"p{n + 1}"
        responses = [{"id": f"r{k + 1}", "text": generations[m][n] or "(empty response)", "source": ""} for k, m in enumerate(order)]
        create_item(project=project, external_id=external_id, prompt=prompt["prompt"], responses=responses,
                    context=prompt.get("context") or [])
        assignment[external_id] = {f"r{k + 1}": m for k, m in enumerate(order)}
    return BlindComparison.objects.create(project=project, source_project=source_project, run=run, model_names=models,
                                          assignment=assignment, seed=seed)


def blind_results(comparison: BlindComparison, *, n_boot: int = 200) -> dict[str, Any]:
    """Arena statistics of the current human rankings, overall and per demographic group."""
    from evaluation.benchmarks import arena

    rankings = Ranking.objects.filter(item__project=comparison.project, is_current=True, rater__kind=Rater.Kind.HUMAN)
    rows = []
    for r in rankings.select_related("item", "rater__user__profile"):
        mapping = comparison.assignment.get(r.item.external_id, {})
        order = [[mapping[x] for x in group if x in mapping] for group in r.order]
        profile = getattr(r.rater.user, "profile", None) if r.rater.user_id else None
        rows.append(([g for g in order if g], str(r.rater_id), profile.consented_values() if profile else {}))
    min_group = int(getattr(settings, "AGGREGATE_MIN_GROUP", 5))
    return {
        "overall": arena.compare([o for o, _, _ in rows], comparison.model_names, n_boot=n_boot, seed=comparison.seed),
        "groups": arena.compare_by_group(rows, comparison.model_names, min_group=min_group, n_boot=n_boot, seed=comparison.seed),
        "min_group": min_group, "annotators": len({r for _, r, _ in rows}),
    }


# ---------------------------------------------------------------- the generation run


def clean_blind_config(config: dict[str, Any]) -> dict[str, Any]:
    models = config.get("models")
    if not isinstance(models, list) or len(models) < 2:
        raise ValueError("models: a blind comparison needs at least two models")
    cleaned = [clean_model(m, n) for n, m in enumerate(models)]
    for n, model in enumerate(cleaned):
        if is_reward_model(model):
            raise ValueError(f"models[{n}].kind: {model['name']} is a reward model, which writes no responses to compare")
    if len({m["name"] for m in cleaned}) != len(cleaned):
        raise ValueError("models: two models have the same name")
    limit = config.get("limit", 20)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_PROMPTS:
        raise ValueError(f"limit must be an integer from 1 to {MAX_PROMPTS}")
    tokens = config.get("max_new_tokens", 128)
    if not isinstance(tokens, int) or isinstance(tokens, bool) or not 1 <= tokens <= 2048:
        raise ValueError("max_new_tokens must be an integer from 1 to 2048")
    seed = config.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError("seed must be an integer")
    name = config.get("name") or "Blind comparison"
    if not isinstance(name, str) or len(name) > 200:
        raise ValueError("name must be text of at most 200 characters")
    return {"models": cleaned, "limit": limit, "max_new_tokens": tokens, "seed": seed, "name": name,
            "device": config.get("device", "auto") if config.get("device", "auto") in ("auto", "cpu", "cuda") else "auto"}


def held_out_prompts(project: Project, limit: int) -> list[dict[str, Any]]:
    """The source project's prompts, in item order (its items are the held-out prompts)."""
    items = project.items.order_by("id")[:limit]
    return [{"id": i.external_id, "prompt": i.prompt, "context": i.context} for i in items]


@registry.register("blind-generation", label="Blind comparison", validate=clean_blind_config)
def run_blind_generation(run: Run, ctx: RunContext) -> None:
    from evaluation.engine import ScoringEngine

    config = run.config
    prompts = held_out_prompts(run.project, config["limit"])
    if not prompts:
        raise BlindError(f"project {run.project} has no items to take prompts from")
    generations: dict[str, list[str]] = {}
    ctx.progress(0, len(prompts) * len(config["models"]))
    for n, model in enumerate(config["models"]):
        ctx.check_cancelled()
        engine = ScoringEngine(model["path"], device=config["device"])
        rendered = [engine.render_chat([*((t["role"], t["content"]) for t in p["context"]), ("user", p["prompt"])]) for p in prompts]
        generations[model["name"]] = engine.generate(rendered, max_new_tokens=config["max_new_tokens"])
        ctx.progress((n + 1) * len(prompts))
        ctx.log(f"{model['name']}: {len(prompts)} responses generated")
        del engine
    comparison = create_blind_project(owner=run.owner, source_project=run.project, name=config["name"], prompts=prompts,
                                      generations=generations, seed=config["seed"], run=run)
    ctx.log(f"blind ranking project {comparison.project.public_id} created")
