"""Random projects for the aggregation tests: humans with consented demographics, personas, rankings.

Rankings are written with `bulk_create` (the annotation services are tested elsewhere and are
slow per row); the rows look exactly like the services' rows (current, version 1).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth import get_user_model

from annotation.models import AnnotatorProfile, Item, Membership, Project, Ranking, Rater, Response
from annotation.services import add_member, create_project, rater_for_user


@dataclass
class World:
    project: Project
    owner: Any
    items: list[Item]
    humans: list[Rater] = field(default_factory=list)
    synthetic: list[Rater] = field(default_factory=list)
    orders: dict[tuple[int, int], list[list[str]]] = field(default_factory=dict)  # (item pk, rater pk)


def random_weak_order(rng: random.Random, ids: list[str], ties: bool = True, partial: bool = False) -> list[list[str]]:
    ids = list(ids)
    rng.shuffle(ids)
    if partial and len(ids) > 2 and rng.random() < 0.3:
        ids = ids[: rng.randint(1, len(ids) - 1)]
    groups: list[list[str]] = []
    for rid in ids:
        if groups and ties and rng.random() < 0.25:
            groups[-1].append(rid)
        else:
            groups.append([rid])
    return groups


def make_project(owner: Any, *, name: str = "Agg", n_items: int = 6, ks: tuple[int, ...] = (4,),
                 allow_partial: bool = False) -> tuple[Project, list[Item]]:
    project = create_project(owner=owner, name=name, status=Project.Status.ACTIVE, allow_partial=allow_partial)
    items = Item.objects.bulk_create(
        [Item(project=project, external_id=f"i{n:03d}", prompt=f"Prompt {n}?") for n in range(n_items)]
    )
    responses = []
    for n, item in enumerate(items):
        k = ks[n % len(ks)]
        responses += [Response(item=item, response_id=f"r{j}", text=f"Answer {j} of {n}", position=j) for j in range(k)]
    Response.objects.bulk_create(responses)
    return project, items


def add_human(project: Project, username: str, demographics: dict[str, str], consented: list[str] | None = None) -> Rater:
    user = get_user_model().objects.create_user(username, password="x")
    add_member(project=project, user=user, role=Membership.Role.ANNOTATOR)
    consented = list(demographics) if consented is None else consented
    AnnotatorProfile.objects.create(user=user, consented_fields=consented, **demographics)
    return rater_for_user(user)


def add_persona(persona_id: str, attributes: dict[str, Any], model: str = "transformers:tiny") -> Rater:
    persona = {"id": persona_id, "description": f"persona {persona_id}", "attributes": attributes}
    return Rater.objects.create(kind=Rater.Kind.SYNTHETIC, persona=persona, model=model,
                                key=f"persona:{persona_id}@{model}")


def rank_all(world: World, raters: list[Rater], seed: int = 0, ties: bool = True, partial: bool = False,
             coverage: float = 1.0, flags: list[str] | None = None) -> None:
    rng = random.Random(seed)
    rows = []
    for item in world.items:
        ids = list(item.responses.values_list("response_id", flat=True))
        for rater in raters:
            if rng.random() > coverage:
                continue
            order = random_weak_order(rng, ids, ties, partial)
            world.orders[(item.pk, rater.pk)] = order
            rows.append(Ranking(item=item, rater=rater, order=order, shown_order=ids,
                                is_partial=sum(map(len, order)) < len(ids), flags=list(flags or [])))
    Ranking.objects.bulk_create(rows)


def random_world(owner: Any, *, seed: int = 0, n_items: int = 6, n_humans: int = 4, n_personas: int = 3,
                 ks: tuple[int, ...] = (3, 4, 5), partial: bool = False) -> World:
    rng = random.Random(seed)
    project, items = make_project(owner, name=f"Random {seed}", n_items=n_items, ks=ks, allow_partial=partial)
    world = World(project, owner, items)
    for h in range(n_humans):
        demo = {"age_band": rng.choice(["18-29", "30-49"]), "gender": rng.choice(["f", "m"]),
                "country": rng.choice(["DE", "FR"])}
        world.humans.append(add_human(project, f"h{seed}_{h}", demo))
    for p in range(n_personas):
        world.synthetic.append(add_persona(f"p{seed}_{p}", {"political_leaning": rng.choice(["left", "right"])}))
    rank_all(world, world.humans + world.synthetic, seed=seed, partial=partial, coverage=0.85)
    return world
