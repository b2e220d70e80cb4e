"""REST API of the annotation app, mounted under /api/v1/ (see annotation/api_urls.py).

Every queryset is scoped to the requesting user; the permission rule is in annotation/permissions.py.
The annotation loop is one request per ranking: `POST /projects/{id}/next/` hands out the first
assignment, then `POST /assignments/{id}/submit/` stores a ranking and answers with the next one.
"""
from __future__ import annotations

from datetime import datetime, time
from typing import Any, TypeAlias

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import IntegrityError, transaction
from django.db.models import Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import generics, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response

from annotation import services
from annotation.models import (
    AnnotatorProfile,
    Assignment,
    Item,
    Membership,
    Project,
    Ranking,
    Rater,
)
from annotation.models import Response as ItemResponse
from annotation.permissions import (
    CanCreateProjects,
    IsProjectResearcher,
    member_projects,
    researcher_project,
    researcher_project_ids,
)
from annotation.serializers import (
    AssignmentSerializer,
    BatchError,
    BulkItemsResultSerializer,
    ItemInputSerializer,
    ItemSerializer,
    MemberInputSerializer,
    MemberRemoveSerializer,
    MemberSerializer,
    ProfileSerializer,
    ProjectProgressSerializer,
    ProjectSerializer,
    ProjectWriteSerializer,
    RankingSerializer,
    ReopenResultSerializer,
    SkipResultSerializer,
    SubmitResultSerializer,
    SubmitSerializer,
    validate_item_batch,
)
from annotation.weak_orders import RankingError

UUID_REGEX = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
MAX_BULK_ITEMS = 1000
MAX_REPORTED_ERRORS = 100

User: TypeAlias = AbstractBaseUser | AnonymousUser


# ---------------------------------------------------------------- assignment payloads


def assignment_payload(assignment: Assignment, project: Project) -> dict[str, Any]:
    """The assignment as a client shows it: responses in the shown order, ids and text only.

    A plain dict in the shape of `AssignmentSerializer` (which documents it): this is the hot path
    of the annotation loop, and DRF's JSON encoder already writes UUIDs and datetimes as it would.
    """
    # A fresh lease carries its response texts (services._lease read them anyway); a held one does not.
    texts = getattr(assignment, "response_texts", None)
    if texts is None:
        texts = dict(ItemResponse.objects.filter(item_id=assignment.item_id).values_list("response_id", "text"))
    item = assignment.item
    return {
        "id": assignment.public_id,
        "project": project.public_id,
        "status": assignment.status,
        "expires_at": assignment.expires_at,
        "item": {"prompt": item.prompt, "context": item.context},
        "responses": [{"id": rid, "text": texts.get(rid, "")} for rid in assignment.shown_order],
        "settings": {
            "allow_ties": project.allow_ties,
            "allow_partial": project.allow_partial,
            "rationale": project.rationale,
        },
    }


def next_payload(user: AbstractBaseUser, project: Project, rater: Rater | None = None) -> dict[str, Any] | None:
    """Lease the user's next item in `project`; None when nothing is left or the project is not active.

    `rater`: the user's rater, already known to be a member of `project` (see services.next_assignment).
    """
    try:
        assignment = services.next_assignment(project=project, user=user, rater=rater)
    except services.AssignmentError:
        return None
    return None if assignment is None else assignment_payload(assignment, project)


# ---------------------------------------------------------------- projects


@extend_schema_view(
    list=extend_schema(summary="Projects you belong to (annotators see only what they need)"),
    retrieve=extend_schema(summary="One of your projects"),
    create=extend_schema(request=ProjectWriteSerializer, responses={201: ProjectSerializer},
                         summary="Create a project; you become its owner and researcher",
                         description="Needs the annotation.add_project permission (403 without it)."),
    update=extend_schema(request=ProjectWriteSerializer, responses=ProjectSerializer, summary="Researchers only"),
    partial_update=extend_schema(request=ProjectWriteSerializer, responses=ProjectSerializer,
                                 summary="Researchers only"),
)
class ProjectViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = ProjectSerializer
    lookup_field = "public_id"
    lookup_url_kwarg = "project_id"
    lookup_value_regex = UUID_REGEX
    researcher_actions = frozenset({"update", "partial_update", "members", "progress"})

    def get_queryset(self) -> QuerySet[Project]:
        if getattr(self, "swagger_fake_view", False):
            return Project.objects.none()
        projects = member_projects(self.request.user).select_related("owner")
        if self.action in ("list", "retrieve"):
            projects = services.with_annotator_progress(projects, self.request.user)
        return projects

    def get_permissions(self) -> list[BasePermission]:
        if self.action in self.researcher_actions:
            return [IsAuthenticated(), IsProjectResearcher()]
        if self.action == "create":
            return [IsAuthenticated(), CanCreateProjects()]
        return [IsAuthenticated()]

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        if self.action in ("create", "update", "partial_update"):
            return ProjectWriteSerializer
        return ProjectSerializer

    def _present(self, project: Project, code: int = status.HTTP_200_OK) -> Response:
        fresh = services.with_annotator_progress(member_projects(self.request.user).select_related("owner"), self.request.user)
        return Response(ProjectSerializer(fresh.get(pk=project.pk)).data, status=code)

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = ProjectWriteSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        project = services.create_project(owner=request.user, **serializer.validated_data)
        return self._present(project, status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        project = self.get_object()
        serializer = ProjectWriteSerializer(project, data=request.data, partial=kwargs.get("partial", False))
        serializer.is_valid(raise_exception=True)
        serializer.save()
        return self._present(project)

    @extend_schema(
        methods=["GET"], request=None, responses=MemberSerializer(many=True), summary="Members (researchers only)"
    )
    @extend_schema(methods=["POST"], request=MemberInputSerializer, responses=MemberSerializer,
                   summary="Add a member or change their role")
    @extend_schema(methods=["DELETE"], request=MemberRemoveSerializer, responses={204: None},
                   summary="Remove a member (never the owner)")
    @action(detail=True, methods=["get", "post", "delete"])
    def members(self, request: Request, project_id: str | None = None) -> Response:
        project = self.get_object()
        if request.method == "GET":
            memberships = project.memberships.select_related("user").order_by("user__username")
            return Response(MemberSerializer(memberships, many=True).data)
        if request.method == "POST":
            return self._add_member(project, request.data)
        return self._remove_member(project, request.data or request.query_params)

    def _add_member(self, project: Project, data: Any) -> Response:
        serializer = MemberInputSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        user, role = serializer.validated_data["username"], serializer.validated_data["role"]
        if user.pk == project.owner_id and role != Membership.Role.RESEARCHER:
            raise ValidationError({"role": ["the project's owner always stays a researcher"]})
        membership = services.add_member(project=project, user=user, role=role)
        return Response(MemberSerializer(membership).data, status=status.HTTP_200_OK)

    def _remove_member(self, project: Project, data: Any) -> Response:
        serializer = MemberRemoveSerializer(data={"username": data.get("username", "")})
        serializer.is_valid(raise_exception=True)
        username = serializer.validated_data["username"]
        membership = project.memberships.select_related("user").filter(user__username=username).first()
        if membership is None:
            raise ValidationError({"username": [f"{username!r} is not a member of this project"]})
        try:
            services.remove_member(project=project, user=membership.user)
        except services.MembershipError as error:
            raise ValidationError({"username": [str(error)]}) from None
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses=ProjectProgressSerializer, summary="Rankings against the target (researchers only)")
    @action(detail=True, methods=["get"])
    def progress(self, request: Request, project_id: str | None = None) -> Response:
        return Response(services.project_progress(self.get_object()))

    @extend_schema(
        request=None,
        responses={200: AssignmentSerializer, 204: OpenApiResponse(description="Nothing left to rank."),
                   409: OpenApiResponse(description="The project is not active.")},
        summary="Lease your next item (or the one you already hold)",
    )
    @action(detail=True, methods=["post"], url_path="next")
    def next_assignment(self, request: Request, project_id: str | None = None) -> Response:
        project = self.get_object()
        try:
            assignment = services.next_assignment(project=project, user=request.user)
        except services.AssignmentError as error:
            return Response({"detail": str(error)}, status=status.HTTP_409_CONFLICT)
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(assignment_payload(assignment, project))


# ---------------------------------------------------------------- items (researchers only)


def _bad_batch(errors: list[BatchError]) -> Response:
    first = errors[0]
    where = f"entry {first['index']}" + (f", field {first['field']}" if first["field"] else "")
    detail = f"{len(errors)} problem(s), nothing was created; first: {where}: {first['message']}"
    body = {"detail": detail, "errors": errors[:MAX_REPORTED_ERRORS], "error_count": len(errors)}
    return Response(body, status=status.HTTP_400_BAD_REQUEST)


@extend_schema_view(
    list=extend_schema(summary="Items of a project with their responses (researchers only)"),
    retrieve=extend_schema(summary="One item with its responses (researchers only)"),
)
class ItemViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = ItemSerializer

    def get_project(self) -> Project:
        if not hasattr(self, "_project"):
            self._project = researcher_project(self.request.user, self.kwargs["project_id"])
        return self._project

    def get_queryset(self) -> QuerySet[Item]:
        if getattr(self, "swagger_fake_view", False):
            return Item.objects.none()
        return Item.objects.filter(project=self.get_project()).prefetch_related("responses")

    @extend_schema(
        request=ItemInputSerializer(many=True),
        responses={201: BulkItemsResultSerializer, 400: OpenApiResponse(description="Errors by index and field.")},
        summary="Create many items at once; one bad entry and nothing is created",
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        project = self.get_project()
        entries = request.data
        if not isinstance(entries, list) or not entries:
            raise ValidationError({"detail": "expected a non-empty JSON list of items"})
        if len(entries) > MAX_BULK_ITEMS:
            raise ValidationError({"detail": f"at most {MAX_BULK_ITEMS} items per request, got {len(entries)}"})
        cleaned, errors = validate_item_batch(project, entries)
        if errors:
            return _bad_batch(errors)
        try:
            with transaction.atomic():
                items = [services.create_item(project=project, **entry) for entry in cleaned if entry is not None]
        except IntegrityError:
            # Another request created one of these external ids between our check and our insert.
            raise ValidationError({"detail": "an external_id was created concurrently; nothing was created"}) from None
        body = {"created": len(items), "items": [{"id": i.pk, "external_id": i.external_id} for i in items]}
        return Response(body, status=status.HTTP_201_CREATED)


# ---------------------------------------------------------------- assignments


@extend_schema_view(retrieve=extend_schema(summary="One of your assignments, responses in the shown order"))
class AssignmentViewSet(mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = AssignmentSerializer
    lookup_field = "public_id"
    lookup_value_regex = UUID_REGEX

    def get_queryset(self) -> QuerySet[Assignment]:
        if getattr(self, "swagger_fake_view", False):
            return Assignment.objects.none()
        user = self.request.user.pk
        return Assignment.objects.filter(rater__user=user, item__project__memberships__user=user).select_related(
            "item__project", "rater"
        )

    def retrieve(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        assignment = self.get_object()
        return Response(assignment_payload(assignment, assignment.item.project))

    @extend_schema(
        request=SubmitSerializer,
        responses={201: SubmitResultSerializer, 200: SubmitResultSerializer,
                   400: OpenApiResponse(description="{field: [message]} naming what is wrong in the ranking.")},
        summary="Store your ranking; the answer carries your next assignment",
        description="201 with the stored ranking; a retry with the same submission_id answers 200 with the "
        "ranking stored the first time and stores nothing new.",
    )
    @action(detail=True, methods=["post"])
    def submit(self, request: Request, public_id: str | None = None) -> Response:
        assignment = self.get_object()
        serializer = SubmitSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        started = timezone.now()
        project = assignment.item.project
        try:
            # One transaction, one commit: the ranking and the lease on the next item.
            with transaction.atomic():
                ranking = services.submit_ranking(
                    user=request.user, assignment=assignment, order=data["ranking"], rationale=data["rationale"],
                    flags=data["flags"], seconds=data["seconds"], submission_id=data["submission_id"],
                )
                if ranking.created_at < started:
                    return self._repeated(ranking, assignment)
                body = {"ranking": RankingSerializer(ranking).data,
                        "next": next_payload(request.user, project, rater=assignment.rater)}
        except RankingError as error:
            raise ValidationError({error.field: [str(error)]}) from None
        except services.AssignmentError as error:
            raise PermissionDenied(str(error)) from None
        return Response(body, status=status.HTTP_201_CREATED)

    def _repeated(self, ranking: Ranking, assignment: Assignment) -> Response:
        """A retry: the service handed back the ranking stored under this submission id before.

        Checked after the fact so that the common, first submission costs no extra query.
        """
        if (ranking.rater_id, ranking.item_id) != (assignment.rater_id, assignment.item_id):
            raise ValidationError({"submission_id": ["this submission id was already used for another ranking"]})
        ranking = Ranking.objects.select_related("item__project", "rater", "assignment").get(pk=ranking.pk)
        body = {"ranking": RankingSerializer(ranking).data, "next": next_payload(self.request.user, assignment.item.project)}
        return Response(body, status=status.HTTP_200_OK)

    @extend_schema(request=None, responses=SkipResultSerializer, summary="Skip this item; answers with the next one")
    @action(detail=True, methods=["post"])
    def skip(self, request: Request, public_id: str | None = None) -> Response:
        assignment = self.get_object()
        try:
            services.skip_assignment(assignment=assignment, user=request.user)
        except services.AssignmentError as error:
            raise PermissionDenied(str(error)) from None
        return Response({"skipped": assignment.public_id, "next": next_payload(request.user, assignment.item.project)})

    @extend_schema(
        request=None, responses={200: ReopenResultSerializer, 409: OpenApiResponse(description="Why it cannot be reopened.")},
        summary="Take back a skip: the item returns to your pool while it still needs rankings",
    )
    @action(detail=True, methods=["post"])
    def reopen(self, request: Request, public_id: str | None = None) -> Response:
        assignment = self.get_object()
        try:
            services.reopen_skipped(assignment=assignment, user=request.user)
        except services.AssignmentError as error:
            return Response({"detail": str(error)}, status=status.HTTP_409_CONFLICT)
        progress = services.annotator_progress(project=assignment.item.project, user=request.user)
        return Response({"reopened": assignment.public_id, "my_progress": progress})


# ---------------------------------------------------------------- rankings


def _parse_moment(name: str, value: str, *, end: bool) -> datetime:
    """An ISO date (a whole day: `until` includes it) or date-time from a query parameter."""
    try:
        moment = parse_datetime(value)
        day = parse_date(value) if moment is None else None
    except ValueError:  # well formed but impossible, such as month 13
        moment = day = None
    if moment is None:
        if day is None:
            raise ValidationError({name: [f"expected an ISO-8601 date or date-time, got {value!r}"]})
        moment = datetime.combine(day, time.max if end else time.min)
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


RANKING_FILTERS = [
    OpenApiParameter("project", OpenApiTypes.UUID, description="Only rankings of this project."),
    OpenApiParameter("rater_kind", OpenApiTypes.STR, enum=Rater.Kind.values, description="human or synthetic."),
    OpenApiParameter("since", OpenApiTypes.DATETIME, description="Created at or after (ISO date or date-time)."),
    OpenApiParameter("until", OpenApiTypes.DATETIME, description="Created at or before (a date includes the day)."),
]


@extend_schema_view(
    list=extend_schema(parameters=RANKING_FILTERS,
                       summary="Current rankings: all of your projects' for researchers, your own otherwise"),
    retrieve=extend_schema(summary="One ranking you may see"),
)
class RankingViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    serializer_class = RankingSerializer

    def get_queryset(self) -> QuerySet[Ranking]:
        if getattr(self, "swagger_fake_view", False):
            return Ranking.objects.none()
        user = self.request.user
        visible = Q(item__project__in=researcher_project_ids(user)) | Q(rater__user=user.pk)
        rankings = Ranking.objects.filter(visible, is_current=True).select_related("item__project", "rater", "assignment")
        return self._filtered(rankings) if self.action == "list" else rankings

    def _filtered(self, rankings: QuerySet[Ranking]) -> QuerySet[Ranking]:
        params = self.request.query_params
        if "project" in params:
            try:
                rankings = rankings.filter(item__project__public_id=serializers.UUIDField().to_internal_value(params["project"]))
            except serializers.ValidationError:
                raise ValidationError({"project": [f"expected a project id (UUID), got {params['project']!r}"]}) from None
        if "rater_kind" in params:
            if params["rater_kind"] not in Rater.Kind.values:
                raise ValidationError({"rater_kind": [f"expected one of {', '.join(Rater.Kind.values)}"]})
            rankings = rankings.filter(rater__kind=params["rater_kind"])
        if "since" in params:
            rankings = rankings.filter(created_at__gte=_parse_moment("since", params["since"], end=False))
        if "until" in params:
            rankings = rankings.filter(created_at__lte=_parse_moment("until", params["until"], end=True))
        return rankings


# ---------------------------------------------------------------- profile


@extend_schema_view(
    get=extend_schema(summary="Your own demographic profile"),
    put=extend_schema(summary="Set your profile; a value needs its field in consented_fields (else 400)"),
    patch=extend_schema(summary="Change part of your profile; withdrawn consent erases the field's value"),
)
class ProfileView(generics.RetrieveUpdateAPIView):
    serializer_class = ProfileSerializer

    def get_object(self) -> AnnotatorProfile:
        user = self.request.user
        profile = AnnotatorProfile.objects.filter(user=user.pk).first()
        if profile is not None:
            return profile
        if self.request.method in SAFE_METHODS:
            return AnnotatorProfile(user=user)  # nothing is written by reading
        return AnnotatorProfile.objects.get_or_create(user=user)[0]
