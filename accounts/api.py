"""API: teams (reseller keys), members and Flex assignments (team keys).

Thin like the browser views: scope through ``ApiView.get_team``, parse with a serializer
(400), call the services (whose ``ValidationError`` is a 422), answer with a serializer.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ObjectDoesNotExist
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import selectors, services
from accounts.models import Membership, Plan, Role, Team, validate_time_zone
from flexadmin.api import RETRY_AFTER, ApiError, ApiView, AwareDateTimeField, error_responses, has_bad_text, parse

SLUG = OpenApiParameter("slug", OpenApiTypes.STR, OpenApiParameter.PATH, description="The team's slug.")
EMAIL = OpenApiParameter(
    "email", OpenApiTypes.EMAIL, OpenApiParameter.PATH, description="The person's e-mail address (case-insensitive)."
)


# --- Teams ------------------------------------------------------------------------------------


class TeamCreateSerializer(serializers.Serializer):
    slug = serializers.SlugField(max_length=50, help_text="Unique across FlexAdmin; used in every team URL.")
    name = serializers.CharField(max_length=200)
    plan = serializers.ChoiceField(choices=Plan.choices, help_text="`premium` adds the By User report.")
    time_zone = serializers.CharField(max_length=64, help_text="An IANA time zone; report days are the team's days.")
    contract_start = serializers.DateField()
    contract_end = serializers.DateField(help_text="After contract_start. Packs can be bought within the contract.")

    def validate_time_zone(self, value: str) -> str:
        try:
            validate_time_zone(value)
        except DjangoValidationError:
            raise serializers.ValidationError(
                f"“{value}” is not a known time zone (for example Europe/Berlin)."
            ) from None
        return value


class TeamSerializer(serializers.Serializer):
    slug = serializers.SlugField()
    name = serializers.CharField()
    plan = serializers.ChoiceField(choices=Plan.choices)
    time_zone = serializers.CharField()
    contract_start = serializers.DateField()
    contract_end = serializers.DateField()
    reseller = serializers.SlugField(source="reseller.slug", help_text="The reseller that serves the team.")
    created_at = AwareDateTimeField()


TEAM_EXAMPLE = {
    "slug": "acme",
    "name": "Acme Engineering",
    "plan": "standard",
    "time_zone": "Europe/Berlin",
    "contract_start": "2026-01-01",
    "contract_end": "2026-12-31",
}


def _same_team(team: Team, data: dict) -> bool:
    return (team.name, team.plan, team.time_zone, team.contract_start, team.contract_end) == (
        data["name"].strip(),
        data["plan"],
        data["time_zone"],
        data["contract_start"],
        data["contract_end"],
    )


class TeamsView(ApiView):
    @extend_schema(
        operation_id="teams_create",
        tags=["teams"],
        summary="Create a customer team (reseller key)",
        description=(
            "A new team served by the key's reseller. Its primary admin is added with "
            "`PUT /teams/{slug}/members/{email}`. Sending the same team again answers 200 with it; "
            "a slug already taken (with other data, or by another reseller) is a 409."
        ),
        request=TeamCreateSerializer,
        responses={
            201: OpenApiResponse(TeamSerializer, description="Created."),
            200: OpenApiResponse(TeamSerializer, description="The same team was created before; nothing changed."),
            **error_responses(400, 403, 409, 422, e403="A team key can't create teams."),
        },
        parameters=[RETRY_AFTER],
        examples=[
            OpenApiExample("A Standard team", value=TEAM_EXAMPLE, request_only=True),
            OpenApiExample(
                "Created",
                value={**TEAM_EXAMPLE, "reseller": "alder", "created_at": "2026-03-02T09:00:00+01:00"},
                response_only=True,
                status_codes=["201", "200"],
            ),
        ],
    )
    def post(self, request: Request) -> Response:
        reseller = self.require_reseller()
        data = parse(TeamCreateSerializer, request.data)
        existing = Team.objects.select_related("reseller").filter(slug=data["slug"]).first()
        if existing is not None:
            if existing.reseller_id == reseller.pk and _same_team(existing, data):
                with timezone.override(existing.tz):
                    return Response(TeamSerializer(existing).data, status=200)
            message = f"A team with the slug “{data['slug']}” already exists."
            raise ApiError(409, "conflict", message, {"slug": message})
        team = services.create_team(reseller=reseller, actor=None, **data)
        with timezone.override(team.tz):
            return Response(TeamSerializer(team).data, status=201)


# --- Members -----------------------------------------------------------------------------------


class MemberRequestSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")


class MemberSerializer(serializers.Serializer):
    team = serializers.SlugField(source="team.slug")
    email = serializers.EmailField(source="user.email")
    first_name = serializers.CharField(source="user.first_name")
    last_name = serializers.CharField(source="user.last_name")
    role = serializers.ChoiceField(choices=Role.choices)
    invitation_pending = serializers.SerializerMethodField(
        help_text="True until the person has set a password with the link e-mailed to them."
    )

    def get_invitation_pending(self, membership: Membership) -> bool:
        try:
            invitation = membership.invitation
        except ObjectDoesNotExist:
            return False
        return invitation.accepted_at is None and not membership.user.has_usable_password()


def _email(value: str) -> str:
    """The e-mail of a URL, checked like a field (a bad one is a 400 naming ``email``)."""
    field = serializers.EmailField(max_length=254)
    try:
        return field.run_validation(value).strip().lower()
    except serializers.ValidationError as exc:
        raise serializers.ValidationError({"email": exc.detail}) from None


def _member_or_404(team: Team, email: str) -> Membership:
    membership = selectors.member_by_email(team=team, email=email)
    if membership is None:
        raise ApiError(404, "not_found", f"{email} is not a member of {team.slug}.")
    return membership


MEMBER_EXAMPLE = {
    "team": "acme",
    "email": "dana.kim@acme.example",
    "first_name": "Dana",
    "last_name": "Kim",
    "role": "member",
    "invitation_pending": True,
}


class MemberView(ApiView):
    @extend_schema(
        operation_id="members_put",
        tags=["members"],
        summary="Add a person to the team, or change their role (team key)",
        description=(
            "Somebody new is invited (an e-mail with a link to set a password) with the role; `first_name` "
            "and `last_name` are used only then. For a member the role changes. `primary_admin` is handed "
            "over: the previous primary admin becomes a secondary admin (a team without one gets it directly). "
            "The primary admin's own role can't be lowered: hand it over first (422)."
        ),
        parameters=[SLUG, EMAIL, RETRY_AFTER],
        request=MemberRequestSerializer,
        responses={
            201: OpenApiResponse(MemberSerializer, description="Invited."),
            200: OpenApiResponse(MemberSerializer, description="Already a member; the role is now as asked."),
            **error_responses(400, 403, 404, 422, e403="A reseller key can't manage members."),
        },
        examples=[
            OpenApiExample("Invite a member", value={"role": "member", "first_name": "Dana", "last_name": "Kim"}),
            OpenApiExample("Invited", value=MEMBER_EXAMPLE, response_only=True, status_codes=["201"]),
        ],
    )
    def put(self, request: Request, slug: str, email: str) -> Response:
        team = self.get_team(slug)
        email = _email(email)
        data = parse(MemberRequestSerializer, request.data)
        role = data["role"]
        with transaction.atomic():
            membership = selectors.member_by_email(team=team, email=email)
            if membership is None:
                status = 201
                has_primary = team.memberships.filter(role=Role.PRIMARY_ADMIN).exists()
                first_role = Role.SECONDARY_ADMIN if role == Role.PRIMARY_ADMIN and has_primary else role
                membership = services.invite_user(
                    team=team,
                    email=email,
                    role=first_role,
                    first_name=data["first_name"],
                    last_name=data["last_name"],
                    actor=None,
                )
            else:
                status = 200
            if membership.role != role:
                if role == Role.PRIMARY_ADMIN:
                    membership = services.transfer_primary_admin(team=team, to=membership, actor=None)
                else:
                    membership = services.change_role(membership=membership, role=role, actor=None)
        membership = selectors.member_by_email(team=team, email=email)
        return Response(MemberSerializer(membership).data, status=status)


# --- Flex assignments -------------------------------------------------------------------------------


@extend_schema_field(
    {
        "oneOf": [
            {"type": "string", "enum": ["all"], "description": "Every Flex product, new ones included."},
            {
                "type": "array",
                "items": {"type": "string", "minLength": 1, "maxLength": 64},
                "minItems": 1,
                "maxItems": 500,
                "description": "Product codes (see GET /rates).",
            },
        ]
    }
)
class ProductsField(serializers.Field):
    default_error_messages = {"invalid": "Give “all” or a non-empty list of product codes."}

    def to_internal_value(self, data: Any) -> str | list[str]:
        if data == "all":
            return "all"
        if (
            isinstance(data, list)
            and 1 <= len(data) <= 500
            and all(isinstance(code, str) and 1 <= len(code) <= 64 for code in data)
            and not has_bad_text(data)
        ):
            return data
        self.fail("invalid")

    def to_representation(self, value: Any) -> Any:
        return value


class AssignmentRequestSerializer(serializers.Serializer):
    products = ProductsField()


class AssignmentSerializer(serializers.Serializer):
    team = serializers.SlugField(source="team.slug")
    email = serializers.EmailField(source="user.email")
    products = ProductsField(source="scope")
    assigned_at = AwareDateTimeField()


class AssignmentView(ApiView):
    @extend_schema(
        operation_id="assignments_put",
        tags=["members"],
        summary="Let a member spend tokens: all products or a list (team key)",
        description=(
            "Sets the member's Flex assignment. A change ends the current assignment and starts a new one "
            "(the history is kept); the same assignment again changes nothing. Unknown product codes: 422."
        ),
        parameters=[SLUG, EMAIL, RETRY_AFTER],
        request=AssignmentRequestSerializer,
        responses={
            200: AssignmentSerializer,
            **error_responses(400, 403, 404, 422, e404="No such team for this key, or the person is not a member."),
        },
        examples=[
            OpenApiExample("All products", value={"products": "all"}, request_only=True),
            OpenApiExample("A list", value={"products": ["autocad", "revit"]}, request_only=True),
            OpenApiExample(
                "Assigned",
                value={
                    "team": "acme",
                    "email": "dana.kim@acme.example",
                    "products": "all",
                    "assigned_at": "2026-03-02T09:00:00+01:00",
                },
                response_only=True,
            ),
        ],
    )
    def put(self, request: Request, slug: str, email: str) -> Response:
        team = self.get_team(slug)
        membership = _member_or_404(team, _email(email))
        data = parse(AssignmentRequestSerializer, request.data)
        assignment = services.assign_flex(team=team, user=membership.user, products=data["products"], actor=None)
        assignment.scope = "all" if assignment.all_products else assignment.products
        return Response(AssignmentSerializer(assignment).data)

    @extend_schema(
        operation_id="assignments_delete",
        tags=["members"],
        summary="Remove a member's Flex assignment (team key)",
        description="The member can no longer spend tokens. Removing an assignment that isn't there changes nothing.",
        parameters=[SLUG, EMAIL, RETRY_AFTER],
        request=None,
        responses={
            204: OpenApiResponse(description="Removed (or there was none)."),
            **error_responses(400, 403, 404, e404="No such team for this key, or the person is not a member."),
        },
    )
    def delete(self, request: Request, slug: str, email: str) -> Response:
        team = self.get_team(slug)
        membership = _member_or_404(team, _email(email))
        services.remove_flex(team=team, user=membership.user, actor=None)
        return Response(status=204)
