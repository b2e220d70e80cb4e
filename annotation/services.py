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
from django.db import connection, transaction
from django.db.models import (
    BooleanField,
    Count,
    Exists,
    ExpressionWrapper,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce
from django.utils import timezone

from annotation import live
from annotation import loop_sql as sql
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
MAX_CANDIDATE_TRIES = 50


class AssignmentError(Exception):
    """The request cannot be served (project closed, not a member, lease not yours)."""


# ---------------------------------------------------------------- raters and membership


def rater_for_user(user: AbstractBaseUser) -> Rater:
    rater, _ = Rater.objects.get_or_create(
        key=f"user:{user.pk}", defaults={"kind": Rater.Kind.HUMAN, "user": user}
    )
    return rater


def synthetic_rater(*, persona: dict[str, Any], model: str, judge: str = "") -> Rater:
    """The one rater for a persona judged by a model (`backend:model-name`) in one way (`judge`,
    e.g. "listwise/listwise_v2": method and prompt version), so that rankings made by another
    method or prompt are another rater's and never replace these."""
    key = f"persona:{persona['id']}@{model}" + (f"#{judge}" if judge else "")
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
    _close_leases(Assignment.objects.filter(item__project=project, rater__user=user, status=Assignment.Status.LEASED),
                  timezone.now())


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
#
# next_assignment and submit_ranking are the annotation loop's hot path (one of each per ranking):
# their statements are written out in annotation.loop_sql, shared with annotation.fast_submit.


def _fetch(statement: sql.Statement) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(*statement)
        return cursor.fetchall()


def _execute(statement: sql.Statement) -> None:
    with connection.cursor() as cursor:
        cursor.execute(*statement)


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


def next_assignment(
    *, project: Project, user: AbstractBaseUser, seed: int | None = None, rater: Rater | None = None
) -> Assignment | None:
    """Lease the next item to `user`, or return the lease they already hold; None when all is done.

    `rater` may be passed by a caller that has already checked it is `user`'s rater and a member
    of `project` (the API's submit, which found it through the member-scoped assignment); it saves
    a query. Errors are raised before any write, so a caller's surrounding transaction stays usable.
    """
    if rater is None:
        rater = _member_rater(project, user)
    elif project.status != Project.Status.ACTIVE or rater.user_id != user.pk:
        raise AssignmentError("no assignment can be made for this user in this project")
    now = timezone.now()
    with transaction.atomic(savepoint=False):
        held = _fetch(sql.held_leases(project.pk, rater.pk, now))
        if held and held[0][1]:
            return current_lease(project=project, rater=rater)
        for item_id, _ in held:
            # This rater's leases that ran out: closed now, so their items are counted as free
            # again (the first of them is usually the one still on the annotator's screen).
            _fetch(sql.lock_item(item_id))
            _execute(sql.close_lapsed_leases(item_id, now))
            _execute(sql.recount_leases(item_id))
        passed: list[int] = []
        for _ in range(MAX_CANDIDATE_TRIES):
            found = next(((rows[0], candidate is not sql.next_candidate) for candidate in sql.CANDIDATES
                          if (rows := _fetch(candidate(project.pk, project.overlap_target, rater.pk, now, passed)))),
                         None)
            if found is None:
                return None
            (item_id, external_id, prompt, context, ranking_count), counted_wrong = found
            responses = _fetch(sql.lease_state_and_responses(item_id, rater.pk, now))
            live, lapsed = responses[0][2:4]
            if ranking_count + live < project.overlap_target:
                item = Item(id=item_id, project=project, external_id=external_id, prompt=prompt,
                            context=_json_value(Item, "context", context), ranking_count=ranking_count)
                texts = {response_id: text for response_id, text, *_ in responses}
                return _lease(item, rater, project, now, seed, texts, recount=bool(lapsed) or counted_wrong)
            passed.append(item_id)
    return None


def _json_value(model: type, name: str, raw: Any) -> Any:
    """A JSON column read by raw SQL, decoded as the model field would decode it."""
    if not isinstance(raw, str | bytes):
        return raw
    return model._meta.get_field(name).from_db_value(raw, None, connection)


def _lease(item: Item, rater: Rater, project: Project, now: Any, seed: int | None, texts: dict[str, str], *,
           recount: bool) -> Assignment:
    ids = list(texts)
    random.Random(seed).shuffle(ids) if seed is not None else random.SystemRandom().shuffle(ids)
    if recount:
        # Leases on the item ran out, or it was found by the row-by-row walk (its lease count said
        # full): they are closed, and the count is made exact again.
        _execute(sql.close_lapsed_leases(item.pk, now))
        _execute(sql.recount_leases(item.pk))
    assignment = Assignment.objects.create(
        item=item, rater=rater, shown_order=ids, leased_at=now, expires_at=Assignment.lease_end(project)
    )
    _execute(sql.count_lease(item.pk))
    assignment.response_texts = texts  # spares the caller a query when it shows the item
    return assignment


@transaction.atomic
def skip_assignment(*, assignment: Assignment, user: AbstractBaseUser) -> Assignment:
    _own_assignment(assignment, user)
    if assignment.status == Assignment.Status.LEASED:
        _execute(sql.release_lease(assignment.pk))
        assignment.status = Assignment.Status.SKIPPED
        assignment.finished_at = timezone.now()
        assignment.save(update_fields=["status", "finished_at"])
    return assignment


@transaction.atomic
def reopen_skipped(*, assignment: Assignment, user: AbstractBaseUser) -> Assignment:
    """Take back a skip: the item returns to the annotator's pool (next_candidate passes over
    skipped items only). Refused, changing nothing, when the project is not active, the assignment
    was not skipped, or the item already has the human rankings it needs."""
    _own_assignment(assignment, user)
    item = Item.objects.select_for_update(of=("self",)).select_related("project").get(pk=assignment.item_id)
    project = item.project
    if project.status != Project.Status.ACTIVE:
        raise AssignmentError(f"project {project.name!r} is {project.status}; skipped items can no longer be reopened")
    if assignment.status != Assignment.Status.SKIPPED:
        raise AssignmentError(f"this item is {assignment.get_status_display().lower()}, not skipped")
    if item.ranking_count >= project.overlap_target:
        raise AssignmentError(f"this item already has the {project.overlap_target} ranking(s) it needs")
    Assignment.objects.filter(item=item, rater_id=assignment.rater_id, status=Assignment.Status.SKIPPED).update(
        status=Assignment.Status.REOPENED
    )
    assignment.status = Assignment.Status.REOPENED
    return assignment


def skipped_items(*, project: Project, user: AbstractBaseUser) -> QuerySet[Assignment]:
    """The user's skips in `project` that still stand (one per item, latest first), each annotated
    `reopenable`: the item is below its human target, so reopening returns it to the pool."""
    skips = Assignment.objects.filter(
        item__project=project, rater__user=user.pk, status=Assignment.Status.SKIPPED
    ).exclude(Exists(Ranking.objects.filter(item=OuterRef("item"), rater=OuterRef("rater"))))
    return skips.select_related("item").annotate(
        reopenable=ExpressionWrapper(Q(item__ranking_count__lt=project.overlap_target), output_field=BooleanField())
    ).order_by("-finished_at", "-pk")


def _own_assignment(assignment: Assignment, user: AbstractBaseUser) -> None:
    if assignment.rater.user_id != user.pk:
        raise AssignmentError("this assignment belongs to someone else")


def expire_leases(*, now: Any = None) -> int:
    """Mark leases past their end as expired (housekeeping; counting already ignores them)."""
    now = now or timezone.now()
    return _close_leases(Assignment.objects.filter(status=Assignment.Status.LEASED, expires_at__lte=now), now)


@transaction.atomic
def _close_leases(leases: QuerySet[Assignment], now: Any) -> int:
    """Expire these `leased` assignments and take them off their items' lease counts, one item
    at a time in id order (the order the annotation loop's locks follow as well as it can)."""
    closed = 0
    for item_id in sorted(set(leases.values_list("item_id", flat=True))):
        _fetch(sql.lock_item(item_id))
        closed += leases.filter(item_id=item_id, status=Assignment.Status.LEASED).update(
            status=Assignment.Status.EXPIRED, finished_at=now)
        _execute(sql.recount_leases(item_id))
    return closed


# ---------------------------------------------------------------- rankings


def effective_rationale(project: Project, rationale: str) -> str:
    """What an annotator's submission keeps of its rationale: nothing where the project asks for none."""
    return rationale if project.rationale != Project.Rationale.OFF else ""


def check_ranking(project: Project, ids: list[str], order: object, shown_order: object | None, flags: Iterable[str],
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

    The ranking is checked before the transaction starts (it depends only on the lease and the
    project's settings), so a caller may run this inside its own transaction, as the API's submit
    does to store the ranking and lease the next item with one commit.
    """
    _own_assignment(assignment, user)
    project = assignment.item.project
    rationale = effective_rationale(project, rationale)
    # The shown order is a permutation of the item's response ids, fixed when the lease was made.
    normalised, partial, shown, flag_list = check_ranking(
        project, assignment.shown_order, order, assignment.shown_order, flags, rationale
    )
    refused: RankingError | None = None
    ranking: Ranking | None = None
    with transaction.atomic(savepoint=False):
        _fetch(sql.lock_item(assignment.item_id))
        try:
            existing, previous = _earlier(assignment.item, assignment.rater, submission_id)
        except RankingError as error:
            # Raised once the block has ended: nothing was written, and an exception leaving a
            # savepoint-less block would doom the caller's transaction.
            existing, refused = None, error
        if existing is None and refused is None:
            ranking = _store_version(
                item=assignment.item, rater=assignment.rater, assignment=assignment, order=normalised,
                shown=shown, partial=partial, rationale=rationale, flags=flag_list, seconds=seconds,
                submission_id=submission_id, previous=previous,
            )
            _execute(sql.release_lease(assignment.pk))
            _execute(sql.mark_submitted(assignment.pk, timezone.now()))
            stored = ranking
            transaction.on_commit(lambda: live.ranking_stored(stored))
    if refused is not None:
        raise refused
    return existing if existing is not None else ranking  # type: ignore[return-value]


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
    normalised, partial, shown, flag_list = check_ranking(item.project, ids, order, shown_order, flags, rationale)
    ranking = _store_version(
        item=item, rater=rater, assignment=None, order=normalised, shown=shown, partial=partial,
        rationale=rationale, flags=flag_list, seconds=seconds, submission_id=submission_id, previous=previous,
    )
    transaction.on_commit(lambda: live.ranking_stored(ranking))
    return ranking


def revise_ranking(
    *,
    user: AbstractBaseUser,
    ranking: Ranking,
    order: object,
    rationale: str = "",
    flags: Iterable[str] = (),
    seconds: float | None = None,
    submission_id: uuid.UUID | str | None = None,
) -> Ranking:
    """A new version of the user's own current ranking, over the responses as they were shown.

    The earlier version is kept (not current); the item's count is unchanged. Only while the
    project is active: a closed project's rankings are final. A repeated `submission_id` returns
    the version it stored.
    """
    if ranking.rater.user_id != user.pk:
        raise AssignmentError("this ranking belongs to someone else")
    project = ranking.item.project
    if project.status != Project.Status.ACTIVE:
        raise AssignmentError(f"project {project.name!r} is {project.status}; its rankings can no longer change")
    if not ranking.is_current:
        raise RankingError("a newer version of this ranking exists; revise that one", field="ranking")
    return record_ranking(item=ranking.item, rater=ranking.rater, order=order, shown_order=ranking.shown_order,
                          rationale=effective_rationale(project, rationale), flags=flags, seconds=seconds,
                          submission_id=submission_id)


def _earlier(
    item: Item, rater: Rater, submission_id: uuid.UUID | str | None
) -> tuple[Ranking | None, tuple[int, int] | None]:
    """In one query: the ranking already stored under `submission_id` (a retry), and the (id, version)
    of the rater's current ranking of the item (which a new submission supersedes). Called with the
    item locked.
    """
    wanted = None if submission_id is None else _as_uuid(submission_id)
    existing_id = previous = None
    for pk, item_id, rater_id, is_current, version, stored_id in _fetch(sql.earlier_rankings(item.pk, rater.pk, wanted)):
        if wanted is not None and _as_uuid(stored_id) == wanted:
            if (item_id, rater_id) != (item.pk, rater.pk):
                raise RankingError("this submission id was already used for another ranking", field="submission_id")
            existing_id = pk
        if (item_id, rater_id) == (item.pk, rater.pk) and is_current:
            previous = (pk, version)
    existing = Ranking.objects.select_related("item__project", "rater").get(pk=existing_id) if existing_id else None
    return existing, previous


def _as_uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _store_version(*, item: Item, rater: Rater, assignment: Assignment | None, order: list[list[str]],
                   shown: list[str], partial: bool, rationale: str, flags: list[str], seconds: float | None,
                   submission_id: uuid.UUID | str | None, previous: tuple[int, int] | None) -> Ranking:
    if previous is not None:
        _execute(sql.retire_ranking(previous[0]))
    else:
        _execute(sql.count_ranking(item.pk, human=rater.kind == Rater.Kind.HUMAN))
    return Ranking.objects.create(
        item=item, rater=rater, assignment=assignment, order=order, shown_order=shown, is_partial=partial,
        rationale=rationale, flags=flags, seconds=seconds, submission_id=submission_id or uuid.uuid4(),
        version=(previous[1] + 1) if previous else 1,
    )


# ---------------------------------------------------------------- progress


def annotator_progress(*, project: Project, user: AbstractBaseUser) -> dict[str, int]:
    """This annotator's done, remaining and skipped items (as with_annotator_progress: one definition
    for the annotate page, the home page and the API)."""
    counted = with_annotator_progress(Project.objects.filter(pk=project.pk), user).get()
    return {"done": counted.my_done, "remaining": counted.my_remaining, "skipped": counted.my_skipped}


def with_annotator_progress(projects: QuerySet[Project], user: AbstractBaseUser) -> QuerySet[Project]:
    """Annotate `my_done`, `my_remaining` and `my_skipped` in the projects' own query.

    done: items the user has a current ranking of. skipped: items they skipped (and have not
    reopened or ranked since). remaining: items below their human target that the user has neither
    ranked nor skipped, the one on their screen included: the items next_assignment may still hand
    them (some may be held by other annotators for now).
    """
    ranked = Ranking.objects.filter(item=OuterRef("pk"), rater__user=user.pk)
    skipped = Assignment.objects.filter(item=OuterRef("pk"), rater__user=user.pk, status=Assignment.Status.SKIPPED)

    def per_project(items: QuerySet[Item]) -> Coalesce:
        counted = items.order_by().values("project").annotate(n=Count("pk")).values("n")
        return Coalesce(Subquery(counted), Value(0))

    mine = Item.objects.filter(project=OuterRef("pk"))
    return projects.annotate(
        my_done=per_project(mine.filter(Exists(ranked.filter(is_current=True)))),
        my_remaining=per_project(mine.filter(ranking_count__lt=OuterRef("overlap_target"))
                                 .exclude(Exists(ranked)).exclude(Exists(skipped))),
        my_skipped=per_project(mine.filter(Exists(skipped)).exclude(Exists(ranked))),
    )


def project_progress(project: Project) -> dict[str, int]:
    """Human rankings stored against the overlap target (and synthetic ones beside them), for the
    researcher's live project page."""
    items = Item.objects.filter(project=project)
    totals = items.aggregate(n=Count("pk"), rankings=Coalesce(Sum("ranking_count"), Value(0)),
                             synthetic=Coalesce(Sum("synthetic_count"), Value(0)))
    complete = items.filter(ranking_count__gte=project.overlap_target).count()
    return {
        "items": totals["n"],
        "rankings": totals["rankings"],
        "synthetic": totals["synthetic"],
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
