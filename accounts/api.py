"""API: teams (reseller keys) and members (team keys); Flex assignments are billing's.

Thin like the browser views: scope through ``ApiView.get_team``, parse with a serializer
(400), call the services (whose ``ValidationError`` is a 422), answer with a serializer.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import selectors, services
from accounts.api_base import ApiView
from accounts.models import Membership, Plan, Role, Team, validate_time_zone
from core.api import RETRY_AFTER, ApiError, AwareDateTimeField, error_responses, parse

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
        team, created = services.record_team(reseller=reseller, actor=None, **data)
        with timezone.override(team.tz):
            return Response(TeamSerializer(team).data, status=201 if created else 200)


# --- Members -----------------------------------------------------------------------------------


class MemberRequestSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=Role.choices)
    first_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    last_name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")


class MemberSerializer(serializers.Serializer):
    team = serializers.SlugField(source="team.slug")
    email = serializers.EmailField(source="user.email")
    first_name = serializers.SerializerMethodField(help_text="Empty while someone with an account has not joined.")
    last_name = serializers.SerializerMethodField(help_text="Empty while someone with an account has not joined.")
    role = serializers.ChoiceField(choices=Role.choices)
    invitation_pending = serializers.SerializerMethodField(
        help_text="True until the person has accepted the invitation e-mailed to them."
    )

    def get_first_name(self, membership: Membership) -> str:
        return membership.user.first_name if membership.shows_profile else ""

    def get_last_name(self, membership: Membership) -> str:
        return membership.user.last_name if membership.shows_profile else ""

    def get_invitation_pending(self, membership: Membership) -> bool:
        return membership.is_pending


def email_from_path(value: str) -> str:
    """The e-mail of a URL, checked like a field (a bad one is a 400 naming ``email``)."""
    field = serializers.EmailField(max_length=254)
    try:
        return field.run_validation(value).strip().lower()
    except serializers.ValidationError as exc:
        raise serializers.ValidationError({"email": exc.detail}) from None


def member_or_404(team: Team, email: str) -> Membership:
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
        email = email_from_path(email)
        data = parse(MemberRequestSerializer, request.data)
        membership, invited = services.put_member(team=team, email=email, actor=None, **data)
        return Response(MemberSerializer(membership).data, status=201 if invited else 200)
