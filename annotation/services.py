"""Workflows across models: projects, membership, assignment leases and ranking submission.

Concurrency: every change to an item's load (live leases + current rankings) happens while that
item's row is locked (`select_for_update`), so racing annotators can never push an item past its
overlap target, and a retried submit finds the ranking its first attempt stored.
"""
from __future__ import annotations

import random
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet, Subquery, Sum, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotation import live
from annotation.models import (
    MAX_RESPONSES,
    MIN_RESPONSES,
    Assignment,
    Item,
    Membership,
    Project,
    Ranking,
    Rater,
    Response,
)
from annotation.weak_orders import RankingError, validate_shown_order, validate_weak_order

# How many full-but-unlocked candidates one request may pass over before giving up.
_MAX_CANDIDATE_TRIES = 50


class AssignmentError(Exception):
    """The request cannot be served (project closed, not a member, lease not yours)."""


# ---------------------------------------------------------------- raters and membership


def rater_for_user(user: AbstractBaseUser) -> Rater:
    rater, _ = Rater.objects.get_or_create(
        key=f"user:{user.pk}", defaults={"kind": Rater.Kind.HUMAN, "user": user}
    )
    return rater


def synthetic_rater(*, persona: dict[str, Any], model: str) -> Rater:
    """The one rater for a persona judged by a model (`backend:model-name`)."""
    key = f"persona:{persona['id']}@{model}"
    rater, _ = Rater.objects.get_or_create(
        key=key, defaults={"kind": Rater.Kind.SYNTHETIC, "persona": persona, "model": model}
    )
    return rater


@transaction.atomic
def add_member(*, project: Project, user: AbstractBaseUser, role: str) -> Membership:
    membership, created = Membership.objects.get_or_create(project=project, user=user, defaults={"role": role})
    if not created and membership.role != role:
        membership.role = role
        membership.save(update_fields=["role"])
    rater_for_user(user)
    return membership


class MembershipError(Exception):
    """A membership change that would leave the project without its owner, or names no member."""


@transaction.atomic
def remove_member(*, project: Project, user: AbstractBaseUser) -> None:
    """Take `user` off the project; their live leases return to the pool at once."""
    if user.pk == project.owner_id:
        raise MembershipError(f"{user} owns project {project.name!r} and cannot be removed")
    deleted, _ = Membership.objects.filter(project=project, user=user).delete()
    if not deleted:
        raise MembershipError(f"{user} is not a member of project {project.name!r}")
    Assignment.objects.filter(item__project=project, rater__user=user, status=Assignment.Status.LEASED).update(
        status=Assignment.Status.EXPIRED, finished_at=timezone.now()
    )


@transaction.atomic
def create_project(*, owner: AbstractBaseUser, **fields: Any) -> Project:
    project = Project.objects.create(owner=owner, **fields)
    add_member(project=project, user=owner, role=Membership.Role.RESEARCHER)
    return project


# ---------------------------------------------------------------- items


@transaction.atomic
def create_item(
    *,
    project: Project,
    external_id: str,
    prompt: str,
    responses: Sequence[dict[str, str]],
    context: list[dict[str, str]] | None = None,
    metadata: dict[str, Any] | None = None,
) -> Item:
    if not MIN_RESPONSES <= len(responses) <= MAX_RESPONSES:
        raise ValueError(f"an item needs {MIN_RESPONSES} to {MAX_RESPONSES} responses, got {len(responses)}")
    item = Item.objects.create(
        project=project, external_id=external_id, prompt=prompt, context=context or [], metadata=metadata or {}
    )
    Response.objects.bulk_create(
        Response(item=item, response_id=r["id"], text=r["text"], source=r.get("source", ""), position=i)
        for i, r in enumerate(responses)
    )
    return item


# ---------------------------------------------------------------- assignment


def _live_leases(now: Any) -> Subquery:
    live_leases = (
        Assignment.objects.filter(item=OuterRef("pk"), status=Assignment.Status.LEASED, expires_at__gt=now)
        .order_by()
        .values("item")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(live_leases), Value(0))


def _candidates(project: Project, rater: Rater, now: Any) -> QuerySet[Item]:
    """Items below target that this rater has neither ranked nor skipped, fewest rankings first.

    Ordered by the indexed (ranking_count, id) so the database walks the index and stops at the
    first row that passes the per-row checks, instead of computing every item's load to sort.
    """
    skipped = Assignment.objects.filter(rater=rater, item=OuterRef("pk"), status=Assignment.Status.SKIPPED)
    ranked = Ranking.objects.filter(rater=rater, item=OuterRef("pk"))
    return (
        Item.objects.filter(project=project, ranking_count__lt=project.overlap_target)
        .alias(load=F("ranking_count") + _live_leases(now))
        .filter(load__lt=project.overlap_target)
        .exclude(Exists(skipped))
        .exclude(Exists(ranked))
        .order_by("ranking_count", "id")
    )


def current_lease(*, project: Project, rater: Rater) -> Assignment | None:
    return (
        Assignment.objects.filter(
            item__project=project, rater=rater, status=Assignment.Status.LEASED, expires_at__gt=timezone.now()
        )
        .select_related("item")
        .first()
    )


def _member_rater(project: Project, user: AbstractBaseUser) -> Rater:
    """The user's rater, if they may annotate in `project` (one query in the common case)."""
    if project.status != Project.Status.ACTIVE:
        raise AssignmentError(f"project {project.name!r} is {project.status}, not active")
    rater = Rater.objects.filter(user=user, user__memberships__project=project).first()
    if rater is not None:
        return rater
    if not Membership.objects.filter(project=project, user=user).exists():
        raise AssignmentError("you are not a member of this project")
    return rater_for_user(user)


@transaction.atomic
def next_assignment(*, project: Project, user: AbstractBaseUser, seed: int | None = None) -> Assignment | None:
    """Lease the next item to `user`, or return the lease they already hold; None when all is done."""
    rater = _member_rater(project, user)
    held = current_lease(project=project, rater=rater)
    if held is not None:
        return held
    now = timezone.now()
    passed: list[int] = []
    for _ in range(_MAX_CANDIDATE_TRIES):
        item = (
            _candidates(project, rater, now)
            .exclude(pk__in=passed)
            .select_for_update(skip_locked=True, of=("self",))
            .first()
        )
        if item is None:
            return None
        if _has_room(item, project, now):
            return _lease(item, rater, project, now, seed)
        passed.append(item.pk)
    return None


def _has_room(item: Item, project: Project, now: Any) -> bool:
    """Authoritative count, taken while the item row is locked.

    `item.ranking_count` is current: a locking read returns the newest committed row version.
    """
    live = item.assignments.filter(status=Assignment.Status.LEASED, expires_at__gt=now).count()
    return item.ranking_count + live < project.overlap_target


def _lease(item: Item, rater: Rater, project: Project, now: Any, seed: int | None) -> Assignment:
    texts = dict(item.responses.values_list("response_id", "text"))
    ids = list(texts)
    random.Random(seed).shuffle(ids) if seed is not None else random.SystemRandom().shuffle(ids)
    # A lease of this rater on this item that ran out is closed first so the partial unique index holds.
    Assignment.objects.filter(item=item, rater=rater, status=Assignment.Status.LEASED).update(
        status=Assignment.Status.EXPIRED, finished_at=now
    )
    assignment = Assignment.objects.create(
        item=item, rater=rater, shown_order=ids, leased_at=now, expires_at=Assignment.lease_end(project)
    )
    assignment.response_texts = texts  # spares the caller a query when it shows the item
    return assignment


@transaction.atomic
def skip_assignment(*, assignment: Assignment, user: AbstractBaseUser) -> Assignment:
    _own_assignment(assignment, user)
    if assignment.status == Assignment.Status.LEASED:
        assignment.status = Assignment.Status.SKIPPED
        assignment.finished_at = timezone.now()
        assignment.save(update_fields=["status", "finished_at"])
    return assignment


def _own_assignment(assignment: Assignment, user: AbstractBaseUser) -> None:
    if assignment.rater.user_id != user.pk:
        raise AssignmentError("this assignment belongs to someone else")


def expire_leases(*, now: Any = None) -> int:
    """Mark leases past their end as expired (housekeeping; counting already ignores them)."""
    now = now or timezone.now()
    return Assignment.objects.filter(status=Assignment.Status.LEASED, expires_at__lte=now).update(
        status=Assignment.Status.EXPIRED, finished_at=now
    )


# ---------------------------------------------------------------- rankings


def _validate(project: Project, ids: list[str], order: object, shown_order: object | None, flags: Iterable[str],
              rationale: str) -> tuple[list[list[str]], bool, list[str], list[str]]:
    normalised, partial = validate_weak_order(
        order, ids, allow_ties=project.allow_ties, allow_partial=project.allow_partial
    )
    shown = validate_shown_order(shown_order, ids) if shown_order is not None else ids
    flag_list = list(flags)
    unknown = [f for f in flag_list if f not in Ranking.Flag.values]
    if unknown:
        raise RankingError(f"unknown flag {unknown[0]!r}; use one of {', '.join(Ranking.Flag.values)}", field="flags")
    if project.rationale == Project.Rationale.REQUIRED and not rationale.strip():
        raise RankingError("this project requires a rationale", field="rationale")
    return normalised, partial, shown, flag_list


@transaction.atomic
def submit_ranking(
    *,
    user: AbstractBaseUser,
    assignment: Assignment,
    order: object,
    rationale: str = "",
    flags: Iterable[str] = (),
    seconds: float | None = None,
    submission_id: uuid.UUID | str | None = None,
) -> Ranking:
    """Store the ranking for a leased item. A repeat of the same `submission_id` returns the first.

    A submission on a lease that has expired is still kept (work is never thrown away); a later
    submission by the same rater on the same item becomes a new version of their ranking.
    """
    _own_assignment(assignment, user)
    item = Item.objects.select_for_update(of=("self",)).select_related("project").get(pk=assignment.item_id)
    existing, previous = _earlier(item, assignment.rater, submission_id)
    if existing is not None:
        return existing
    project = item.project
    rationale = rationale if project.rationale != Project.Rationale.OFF else ""
    # The shown order is a permutation of the item's response ids, fixed when the lease was made.
    normalised, partial, shown, flag_list = _validate(
        project, assignment.shown_order, order, assignment.shown_order, flags, rationale
    )
    ranking = _store_version(
        item=item, rater=assignment.rater, assignment=assignment, order=normalised, shown=shown, partial=partial,
        rationale=rationale, flags=flag_list, seconds=seconds, submission_id=submission_id, previous=previous,
    )
    Assignment.objects.filter(pk=assignment.pk).update(status=Assignment.Status.SUBMITTED, finished_at=timezone.now())
    transaction.on_commit(lambda: live.ranking_stored(ranking))
    return ranking


@transaction.atomic
def record_ranking(
    *,
    item: Item,
    rater: Rater,
    order: object,
    shown_order: object | None = None,
    rationale: str = "",
    flags: Iterable[str] = (),
    seconds: float | None = None,
    submission_id: uuid.UUID | str | None = None,
) -> Ranking:
    """Store a ranking without a lease: synthetic raters, imports, and edits of one's own ranking."""
    item = Item.objects.select_for_update(of=("self",)).select_related("project").get(pk=item.pk)
    existing, previous = _earlier(item, rater, submission_id)
    if existing is not None:
        return existing
    ids = list(item.responses.values_list("response_id", flat=True))
    normalised, partial, shown, flag_list = _validate(item.project, ids, order, shown_order, flags, rationale)
    ranking = _store_version(
        item=item, rater=rater, assignment=None, order=normalised, shown=shown, partial=partial,
        rationale=rationale, flags=flag_list, seconds=seconds, submission_id=submission_id, previous=previous,
    )
    transaction.on_commit(lambda: live.ranking_stored(ranking))
    return ranking


def _earlier(item: Item, rater: Rater, submission_id: uuid.UUID | str | None) -> tuple[Ranking | None, Ranking | None]:
    """In one query: the ranking already stored under `submission_id` (a retry), and the rater's
    current ranking of the item (which a new submission supersedes). Called with the item locked.
    """
    wanted = Q(item=item, rater=rater, is_current=True)
    if submission_id is not None:
        wanted |= Q(submission_id=submission_id)
    existing = previous = None
    for ranking in Ranking.objects.filter(wanted):
        if submission_id is not None and str(ranking.submission_id) == str(submission_id):
            existing = ranking
        if ranking.item_id == item.pk and ranking.rater_id == rater.pk and ranking.is_current:
            previous = ranking
    if existing is not None and (existing.item_id, existing.rater_id) != (item.pk, rater.pk):
        raise RankingError("this submission id was already used for another ranking", field="submission_id")
    return existing, previous


def _store_version(*, item: Item, rater: Rater, assignment: Assignment | None, order: list[list[str]],
                   shown: list[str], partial: bool, rationale: str, flags: list[str], seconds: float | None,
                   submission_id: uuid.UUID | str | None, previous: Ranking | None) -> Ranking:
    if previous is not None:
        Ranking.objects.filter(pk=previous.pk).update(is_current=False)
    else:
        Item.objects.filter(pk=item.pk).update(ranking_count=F("ranking_count") + 1)
    return Ranking.objects.create(
        item=item, rater=rater, assignment=assignment, order=order, shown_order=shown, is_partial=partial,
        rationale=rationale, flags=flags, seconds=seconds, submission_id=submission_id or uuid.uuid4(),
        version=(previous.version + 1) if previous else 1,
    )


# ---------------------------------------------------------------- progress


def annotator_progress(*, project: Project, user: AbstractBaseUser) -> dict[str, int]:
    """Done by this annotator, and how many more items they could still rank."""
    rater = rater_for_user(user)
    done = Ranking.objects.filter(item__project=project, rater=rater, is_current=True).count()
    open_items = Item.objects.filter(project=project, ranking_count__lt=project.overlap_target).exclude(
        rankings__rater=rater
    ).count()
    return {"done": done, "remaining": open_items}


def project_progress(project: Project) -> dict[str, int]:
    """Rankings stored against the target, for the researcher's live project page."""
    items = Item.objects.filter(project=project)
    totals = items.aggregate(n=Count("pk"), rankings=Coalesce(Sum("ranking_count"), Value(0)))
    complete = items.filter(ranking_count__gte=project.overlap_target).count()
    return {
        "items": totals["n"],
        "rankings": totals["rankings"],
        "target": totals["n"] * project.overlap_target,
        "complete_items": complete,
    }


def rater_progress(project: Project) -> list[dict[str, Any]]:
    """Current rankings per rater, most first; members who have ranked nothing yet are listed with 0.

    Humans are labelled by username, synthetic raters by persona id and model. Two queries.
    """
    counts = (
        Ranking.objects.filter(item__project=project, is_current=True)
        .values("rater__kind", "rater__user__username", "rater__persona", "rater__model")
        .annotate(n=Count("pk"))
        .order_by()
    )
    rows: dict[str, dict[str, Any]] = {}
    for row in counts:
        human = row["rater__kind"] == Rater.Kind.HUMAN
        label = row["rater__user__username"] if human else f"{(row['rater__persona'] or {}).get('id', '?')} · {row['rater__model']}"
        rows[label] = {"label": label, "kind": row["rater__kind"], "role": "", "rankings": row["n"]}
    for username, role in Membership.objects.filter(project=project).values_list("user__username", "role"):
        rows.setdefault(username, {"label": username, "kind": Rater.Kind.HUMAN, "rankings": 0})["role"] = role
    return sorted(rows.values(), key=lambda r: (-r["rankings"], r["label"]))
