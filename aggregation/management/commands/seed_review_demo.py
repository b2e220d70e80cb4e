"""Create the review demo: a project with stored human and persona rankings (idempotent, no model).

Called by `manage.py seed_demo` after the annotation demo. What it stores:

* items: `data/demo/review_items.jsonl` (hh-rlhf prompts with hh-rlhf's two answers and one
  SmolLM2 answer, made by `scripts/make_demo_review_data.py`);
* simulated demo annotators `demo-sim-01` ... from `data/demo/review_annotators.json`: invented
  people with consented demographics, who cannot log in; their rankings are SIMULATED here from a
  seeded random-utility model (below), labelled so on the project page and in data/README.md;
* the persona panel of `data/demo/review_personas.jsonl` (twins of the simulated annotators and a
  small stratified panel) and one finished synthetic run whose judgments are
  `data/demo/review_judgments.jsonl`: real SmolLM2-135M-Instruct outputs made once by the script,
  stored through the same code a live synthetic run uses;
* three pools to review under (`DEMO_POOLS`): the simulated annotators only, the personas only,
  and the annotators raked to age-band targets.

The simulation: each response gets a utility (hh-rlhf's chosen answer 1, its rejected answer 0,
the model's answer a seeded per-item value), plus a group taste (raters aged 18-29 like the model
answer more, raters leaning right like hh-rlhf's rejected answer a bit more), plus a bonus for the
response shown first (position bias), plus Gumbel noise; the ranking orders responses by the sum
(a Plackett-Luce draw). Nothing about it is a finding.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from aggregation.management.commands._demo_synthetic import store_demo_run
from aggregation.models import Pool
from aggregation.services import save_pool
from annotation.models import AnnotatorProfile, Item, Membership, Project, Ranking
from annotation.services import (
    add_member,
    create_item,
    create_project,
    rater_for_user,
    record_ranking,
)

PROJECT = "Demo: collective review (simulated annotators, SmolLM2 personas)"
PANEL = "Demo persona panel (SmolLM2 judgments)"
DESCRIPTION = (
    "Review demo. The human rankings come from SIMULATED demo annotators (demo-sim-*), not from people; "
    "the persona rankings are real SmolLM2-135M-Instruct judgments made once by "
    "scripts/make_demo_review_data.py. See data/README.md."
)
POSITION_BONUS = 0.35
TASTES = {("age_band", "18-29"): {"r3": 0.6}, ("political_leaning", "right"): {"r2": 0.4}}
DEMO_POOLS: dict[str, dict[str, Any]] = {
    "humans": {"description": "The simulated demo annotators only.", "kinds": "humans"},
    "personas": {"description": "The SmolLM2 personas only.", "kinds": "synthetic"},
    "humans raked by age": {
        "description": "The simulated annotators, raked so the age bands weigh 40/35/25 %.",
        "kinds": "humans", "raking_targets": {"age_band": {"18-29": 0.4, "30-44": 0.35, "45-59": 0.25}},
    },
}


def _demo_file(name: str) -> Path:
    return Path(settings.BASE_DIR) / "data" / "demo" / name


def _jsonl(name: str) -> list[dict[str, Any]]:
    with _demo_file(name).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def _rng(*parts: object) -> np.random.Generator:
    digest = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
    return np.random.default_rng(int.from_bytes(digest[:8], "little"))


def simulate_ranking(item_id: str, response_ids: list[str], profile: dict[str, str], username: str
                     ) -> tuple[list[list[str]], list[str], float]:
    """(weak order, shown order, seconds) of one simulated annotator on one item (seeded)."""
    item_rng, rng = _rng("item", item_id), _rng("rank", username, item_id)
    base = {"r1": 1.0, "r2": 0.0}
    utility = np.array([base.get(r, float(item_rng.normal(0.3, 0.8))) for r in response_ids])
    for (field, value), bonus in TASTES.items():
        if profile.get(field) == value:
            utility += np.array([bonus.get(r, 0.0) for r in response_ids])
    shown = [response_ids[i] for i in rng.permutation(len(response_ids))]
    utility[response_ids.index(shown[0])] += POSITION_BONUS
    noisy = utility + rng.gumbel(size=len(response_ids))
    ranked = [response_ids[i] for i in np.argsort(-noisy, kind="stable")]
    order = [[r] for r in ranked]
    if rng.random() < 0.08:  # now and then a simulated annotator cannot separate the last two
        order = [*order[:-2], [*order[-2], *order[-1]]]
    return order, shown, round(float(rng.lognormal(3.0, 0.5)), 1)


class Command(BaseCommand):
    help = "Create the review demo project with simulated annotators and stored SmolLM2 persona rankings."

    def handle(self, *args: Any, **options: Any) -> None:
        researcher = get_user_model().objects.filter(username="researcher").first()
        if researcher is None:
            raise CommandError("run `manage.py seed_demo` first: it creates the researcher who owns the demo")
        with transaction.atomic():
            project = self._project(researcher)
            items = self._items(project)
            humans = self._annotators(project)
            added = self._human_rankings(items, humans)
            judged = self._synthetic(project, researcher, items, humans)
            self._pools(project, researcher)
        self.stdout.write(self.style.SUCCESS(
            f"Review demo {project.name!r}: {len(items)} items, {len(humans)} simulated annotators "
            f"({added} rankings added), {judged} persona judgments added"))

    def _project(self, researcher: Any) -> Project:
        project = Project.objects.filter(name=PROJECT, owner=researcher).first()
        if project is None:
            project = create_project(
                owner=researcher, name=PROJECT, guidelines=DESCRIPTION, overlap_target=12, allow_ties=True,
                status=Project.Status.ACTIVE, rationale=Project.Rationale.OPTIONAL,
                consent_text="Simulated demo annotators: invented profiles, no real person.",
            )
        return project

    def _items(self, project: Project) -> dict[str, Item]:
        existing = {i.external_id: i for i in project.items.all()}
        for row in _jsonl("review_items.jsonl"):
            if row["id"] not in existing:
                existing[row["id"]] = create_item(project=project, external_id=row["id"], prompt=row["prompt"],
                                                  responses=row["responses"], metadata=row.get("metadata", {}))
        return existing

    def _annotators(self, project: Project) -> dict[str, tuple[Any, dict[str, str]]]:
        spec = json.loads(_demo_file("review_annotators.json").read_text(encoding="utf-8"))
        users = {}
        for person in spec["annotators"]:
            user, created = get_user_model().objects.get_or_create(username=person["username"])
            if created:
                user.set_unusable_password()  # simulated: nobody logs in as them
                user.save(update_fields=["password"])
            profile, _ = AnnotatorProfile.objects.get_or_create(user=user)
            for field in AnnotatorProfile.FIELDS:
                setattr(profile, field, person["profile"].get(field, ""))
            profile.consented_fields = person["consented"]
            profile.consented_at = profile.consented_at or timezone.now()
            profile.drop_unconsented()
            profile.save()
            add_member(project=project, user=user, role=Membership.Role.ANNOTATOR)
            users[person["username"]] = (user, profile.consented_values())
        return users

    def _human_rankings(self, items: dict[str, Item], humans: dict[str, tuple[Any, dict[str, str]]]) -> int:
        added = 0
        for username, (user, profile) in humans.items():
            rater = rater_for_user(user)
            done = set(Ranking.objects.filter(rater=rater, item__in=items.values()).values_list("item__external_id", flat=True))
            for external_id, item in items.items():
                if external_id in done:
                    continue
                ids = list(item.responses.values_list("response_id", flat=True))
                order, shown, seconds = simulate_ranking(external_id, ids, profile, username)
                record_ranking(item=item, rater=rater, order=order, shown_order=shown, seconds=seconds)
                added += 1
        return added

    def _synthetic(self, project: Project, owner: Any, items: dict[str, Item],
                   humans: dict[str, tuple[Any, dict[str, str]]]) -> int:
        return store_demo_run(project, owner, items, {name: user for name, (user, _) in humans.items()},
                              _jsonl("review_personas.jsonl"), _jsonl("review_judgments.jsonl"), PANEL)

    def _pools(self, project: Project, owner: Any) -> None:
        existing = set(Pool.objects.filter(project=project).values_list("name", flat=True))
        for name, data in DEMO_POOLS.items():
            if name not in existing:
                save_pool(project=project, user=owner, data={"name": name, **data})
