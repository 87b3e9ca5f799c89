"""API: packs and cloud credits (reseller keys), usage events and refunds (team keys),
balance, ledger and the rate sheet.

Thin: scope through ``ApiView.get_team``, parse (400), call one service (its
``ValidationError`` is a 422, ``Conflict`` a 409), answer. ``log_usage`` and
``refund_usage`` already return their results in the shape of api.md; the serializers
for them only document it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
    extend_schema_field,
)
from rest_framework import generics, serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api import EMAIL, email_from_path, member_or_404
from accounts.api_base import ApiView
from billing import selectors, services
from billing.events import MAX_BATCH
from billing.models import ChargeType, EntryKind, LedgerEntry, PackStatus, Rate, TokenPack
from core.api import (
    RETRY_AFTER,
    Amount,
    ApiError,
    AwareDateTimeField,
    ErrorDetailSerializer,
    error_responses,
    parse,
)
from core.validators import has_bad_text

SLUG = OpenApiParameter("slug", OpenApiTypes.STR, OpenApiParameter.PATH, description="The team's slug.")
PACK_STATUSES = [(status, status) for status in PackStatus.values]
OUTCOME_STATUSES = [("charged", "charged"), ("no_charge", "no_charge"), ("denied", "denied")]
CHARGE_STATUSES = [("charged", "charged"), ("denied", "denied")]
ERROR_STATUSES = [("error", "error")]


# --- Packs ---------------------------------------------------------------------------------------


class PackCreateSerializer(serializers.Serializer):
    reference = serializers.CharField(
        max_length=100, help_text="The reseller's order reference: recording it again is answered with the first pack."
    )
    tokens = serializers.IntegerField(min_value=1, max_value=2_147_483_647, help_text="A whole number of tokens.")
    purchased_at = AwareDateTimeField(
        required=False, help_text="Defaults to now; must lie within the team's contract and not in the future."
    )
    price = serializers.DecimalField(
        max_digits=12, decimal_places=2, min_value=0, required=False, allow_null=True, coerce_to_string=True
    )
    currency = serializers.RegexField(
        r"^[A-Za-z]{3}$", required=False, allow_blank=True, help_text="ISO 4217, e.g. EUR (with a price)."
    )


class PackSerializer(serializers.Serializer):
    reference = serializers.CharField()
    team = serializers.SlugField(source="team.slug")
    tokens = Amount(help_text="Tokens bought.")
    remaining = Amount(help_text="Tokens the pack still holds.")
    price = serializers.DecimalField(max_digits=12, decimal_places=2, allow_null=True, coerce_to_string=True)
    currency = serializers.CharField(help_text="Empty when no price was given.")
    purchased_at = AwareDateTimeField()
    expires_at = AwareDateTimeField(help_text="purchased_at + 12 months (FLEX_PACK_TERM_MONTHS).")
    status = serializers.SerializerMethodField(help_text="active, depleted (no tokens left) or expired.")

    @extend_schema_field(serializers.ChoiceField(choices=PACK_STATUSES))
    def get_status(self, pack: TokenPack) -> str:
        return pack.status()


PACK_EXAMPLE = {
    "reference": "PO-1001",
    "team": "acme",
    "tokens": "1000.00",
    "remaining": "1000.00",
    "price": "2500.00",
    "currency": "EUR",
    "purchased_at": "2026-03-02T09:00:00+01:00",
    "expires_at": "2027-03-02T09:00:00+01:00",
    "status": "active",
}


class PacksView(ApiView):
    @extend_schema(
        operation_id="packs_create",
        tags=["packs"],
        summary="Record a pack purchase (reseller key)",
        description=(
            "Idempotent on the order reference (unique per reseller): the same reference with the same data "
            "again answers 200 with the first pack; with other data 409. `purchased_at` defaults to now and "
            "must lie within the contract (422 otherwise)."
        ),
        parameters=[SLUG, RETRY_AFTER],
        request=PackCreateSerializer,
        responses={
            201: OpenApiResponse(PackSerializer, description="Recorded."),
            200: OpenApiResponse(PackSerializer, description="Recorded before with the same data: the first pack."),
            **error_responses(400, 403, 404, 409, 422, e403="A team key can't record purchases."),
        },
        examples=[
            OpenApiExample(
                "A pack",
                value={"reference": "PO-1001", "tokens": 1000, "price": "2500.00", "currency": "EUR"},
                request_only=True,
            ),
            OpenApiExample("Recorded", value=PACK_EXAMPLE, response_only=True, status_codes=["201", "200"]),
        ],
    )
    def post(self, request: Request, slug: str) -> Response:
        team = self.get_team(slug, team_key=False, reseller_key=True)
        data = parse(PackCreateSerializer, request.data)
        pack, created = services.record_purchase(
            team=team,
            reference=data["reference"],
            tokens=data["tokens"],
            purchased_at=data.get("purchased_at"),
            price=data.get("price"),
            currency=data.get("currency") or "",
            actor=None,
        )
        return Response(PackSerializer(pack).data, status=201 if created else 200)

    @extend_schema(
        operation_id="packs_list",
        tags=["packs"],
        summary="The team's packs (team or reseller key)",
        description="Every pack of the team, in the order they pay: earliest expiry first, then the smallest.",
        parameters=[SLUG, RETRY_AFTER],
        responses={200: PackSerializer(many=True), **error_responses(404)},
    )
    def get(self, request: Request, slug: str) -> Response:
        team = self.get_team(slug, team_key=True, reseller_key=True)
        return Response(PackSerializer(selectors.team_packs(team=team), many=True).data)


# --- Cloud credits -----------------------------------------------------------------------------------


class CloudCreditsCreateSerializer(serializers.Serializer):
    credits = Amount(min_value=Decimal("0.01"), help_text="Legacy cloud credits, > 0.")
    granted_at = AwareDateTimeField(
        required=False, help_text="Defaults to now; must lie before the cloud-credit cutoff (2023-03-29)."
    )


class CloudCreditsSerializer(serializers.Serializer):
    team = serializers.SlugField(source="team.slug")
    credits = Amount()
    remaining = Amount()
    granted_at = AwareDateTimeField()
    expires_at = AwareDateTimeField(help_text="The global cutoff (FLEX_CLOUD_CREDITS_EXPIRE_AT).")


class CloudCreditsView(ApiView):
    @extend_schema(
        operation_id="cloud_credits_create",
        tags=["packs"],
        summary="Record a legacy cloud-credit balance (reseller key)",
        description=(
            "Cloud credits pay eligible pay-per-result services until the global cutoff; they are never "
            "converted to tokens. A grant at or after the cutoff is refused (422)."
        ),
        parameters=[SLUG, RETRY_AFTER],
        request=CloudCreditsCreateSerializer,
        responses={
            201: CloudCreditsSerializer,
            **error_responses(400, 403, 404, 422, e403="A team key can't grant cloud credits."),
        },
        examples=[
            OpenApiExample(
                "Credits", value={"credits": "500.00", "granted_at": "2022-06-01T00:00:00Z"}, request_only=True
            ),
        ],
    )
    def post(self, request: Request, slug: str) -> Response:
        team = self.get_team(slug, team_key=False, reseller_key=True)
        data = parse(CloudCreditsCreateSerializer, request.data)
        balance = services.grant_cloud_credits(
            team=team, credits=data["credits"], granted_at=data.get("granted_at"), actor=None
        )
        return Response(CloudCreditsSerializer(balance).data, status=201)


# --- Usage events --------------------------------------------------------------------------------------


@extend_schema_field(
    {
        "oneOf": [{"type": "string", "minLength": 1, "maxLength": 100}, {"type": "integer"}],
        "description": "The client's id, unique per team: the same id again is answered with the first outcome "
        "and charged nothing.",
    }
)
class EventIdField(serializers.Field):
    pass


@extend_schema_field(
    {
        "oneOf": [{"type": "number", "exclusiveMinimum": True, "minimum": 0, "maximum": 100000}, {"type": "string"}],
        "description": "Results (or hours) for per-result services, > 0 with at most two decimals; default 1. "
        "Daily products ignore it.",
    }
)
class QuantityField(serializers.Field):
    pass


class UsageEventSerializer(serializers.Serializer):
    """One usage event (documentation: events are checked one by one by the charging code)."""

    id = EventIdField()
    user = serializers.EmailField(help_text="A member of the team.")
    product = serializers.CharField(max_length=64, help_text="A product code of the rate sheet (GET /rates).")
    variant = serializers.CharField(
        max_length=64, required=False, help_text="For per-result services with variants (e.g. simple/complex)."
    )
    started_at = AwareDateTimeField(help_text="With an offset. At most 5 minutes in the future.")
    ended_at = AwareDateTimeField(
        required=False,
        allow_null=True,
        help_text="Required for daily products. Not more than FLEX_MAX_EVENT_AGE_HOURS (48) in the past.",
    )
    quantity = QuantityField(required=False)


@extend_schema_field(UsageEventSerializer)
class RawEventField(serializers.Field):
    """An event passed on as sent: a bad one gets its own error result, not a 400."""

    def to_internal_value(self, data: Any) -> Any:
        return data


class UsageBatchSerializer(serializers.Serializer):
    events = serializers.ListField(child=RawEventField(allow_null=True), min_length=1, max_length=MAX_BATCH)


class DrawSerializer(serializers.Serializer):
    pack = serializers.CharField(help_text="The pack's order reference.")
    tokens = Amount()


class ChargeSerializer(serializers.Serializer):
    at = AwareDateTimeField(help_text="When the window opened, or the job ran.")
    status = serializers.ChoiceField(choices=CHARGE_STATUSES)
    reason = serializers.CharField(help_text="For a denial: not_assigned or insufficient_balance.")
    tokens = Amount()
    cloud_credits = Amount()
    draws = DrawSerializer(many=True)


class EventOutcomeSerializer(serializers.Serializer):
    id = serializers.JSONField(help_text="The event's id.")
    status = serializers.ChoiceField(choices=OUTCOME_STATUSES)
    reason = serializers.CharField(
        help_text="not_assigned, insufficient_balance (denials); grace_period, inside_window, free_product "
        "(no charge); empty for a plain charge."
    )
    tokens = Amount()
    cloud_credits = Amount()
    charges = ChargeSerializer(many=True, help_text="One per 24-hour window of a daily product; one per job.")
    replayed = serializers.BooleanField(help_text="True when the id was seen before: nothing was charged again.")


class EventErrorSerializer(serializers.Serializer):
    id = serializers.JSONField(help_text="The event's id as sent (null when it had none).")
    status = serializers.ChoiceField(choices=ERROR_STATUSES)
    error = ErrorDetailSerializer(
        help_text="code: invalid, unknown_product, unknown_user, no_rate or event_too_old. Nothing was stored."
    )
    replayed = serializers.BooleanField()


EventResult = PolymorphicProxySerializer(
    component_name="UsageResult",
    serializers=[EventOutcomeSerializer, EventErrorSerializer],
    resource_type_field_name=None,
)


class UsageBatchResultSerializer(serializers.Serializer):
    results = serializers.ListField(child=EventResult, help_text="One per event, in the order sent.")


OUTCOME_EXAMPLE = {
    "id": "launch-8841",
    "status": "charged",
    "reason": "",
    "tokens": "7.00",
    "cloud_credits": "0.00",
    "charges": [
        {
            "at": "2026-03-02T08:00:00+01:00",
            "status": "charged",
            "reason": "",
            "tokens": "7.00",
            "cloud_credits": "0.00",
            "draws": [{"pack": "PO-1001", "tokens": "7.00"}],
        }
    ],
    "replayed": False,
}


class UsageEventsView(ApiView):
    @extend_schema(
        operation_id="usage_events_create",
        tags=["usage"],
        summary="Report usage: a batch of 1 to 1000 events (team key)",
        description=(
            "Each event gets its own result, in the order sent: `charged`, `no_charge` or `denied` with a "
            "reason, or `error` with the error of that one event (it is not stored, and the others go on). "
            "An id seen before returns the first outcome with `replayed: true` and charges nothing, so a "
            "batch can safely be sent again. Events whose end is more than 48 hours old are refused "
            "(`event_too_old`)."
        ),
        parameters=[SLUG, RETRY_AFTER],
        request=UsageBatchSerializer,
        responses={
            200: UsageBatchResultSerializer,
            **error_responses(400, 403, 404, e403="A reseller key can't report usage."),
        },
        examples=[
            OpenApiExample(
                "A daily product and a cloud job",
                value={
                    "events": [
                        {
                            "id": "launch-8841",
                            "user": "dana.kim@acme.example",
                            "product": "autocad",
                            "started_at": "2026-03-02T08:00:00+01:00",
                            "ended_at": "2026-03-02T12:30:00+01:00",
                        },
                        {
                            "id": "job-311",
                            "user": "dana.kim@acme.example",
                            "product": "cfd-simulation",
                            "variant": "moderate",
                            "quantity": 2,
                            "started_at": "2026-03-02T13:00:00+01:00",
                        },
                    ]
                },
                request_only=True,
            ),
            OpenApiExample(
                "Results",
                value={
                    "results": [
                        OUTCOME_EXAMPLE,
                        {
                            "id": "job-311",
                            "status": "error",
                            "error": {
                                "code": "unknown_user",
                                "message": "x@acme.example is not a member of this team.",
                                "fields": {"user": "Not a member."},
                            },
                            "replayed": False,
                        },
                    ]
                },
                response_only=True,
            ),
        ],
    )
    def post(self, request: Request, slug: str) -> Response:
        team = self.get_team(slug)
        events = parse(UsageBatchSerializer, request.data)["events"]
        if len(events) == 1:
            # One event per call: charged together with the team's other calls of the moment.
            return Response({"results": [services.log_event(team=team, event=events[0])]})
        return Response({"results": services.log_usage(team=team, events=events)})


class RefundSerializer(serializers.Serializer):
    id = serializers.CharField()
    refunded_tokens = Amount(help_text="Given back to the packs that paid, where they are still valid.")
    refunded_cloud_credits = Amount()
    forfeited_tokens = Amount(help_text="Tokens of packs that expired meanwhile: they stay expired.")
    forfeited_cloud_credits = Amount()
    refunded_at = AwareDateTimeField()
    replayed = serializers.BooleanField(help_text="True when the job was refunded before: nothing changed.")


class RefundView(ApiView):
    @extend_schema(
        operation_id="usage_events_refund",
        tags=["usage"],
        summary="Refund a failed or cancelled per-result job (team key)",
        description=(
            "The tokens (or cloud credits) go back to what paid, if it is still valid. Refunding again answers "
            "the first refund with `replayed: true`. Only charged per-result jobs can be refunded (422)."
        ),
        parameters=[
            SLUG,
            OpenApiParameter("event_id", OpenApiTypes.STR, OpenApiParameter.PATH, description="The event's id."),
            RETRY_AFTER,
        ],
        request=None,
        responses={
            200: RefundSerializer,
            **error_responses(403, 404, 422, e404="No such team for this key, or no such event in the team."),
        },
        examples=[
            OpenApiExample(
                "Refunded",
                value={
                    "id": "job-311",
                    "refunded_tokens": "20.00",
                    "refunded_cloud_credits": "0.00",
                    "forfeited_tokens": "0.00",
                    "forfeited_cloud_credits": "0.00",
                    "refunded_at": "2026-03-02T14:00:00+00:00",
                    "replayed": False,
                },
                response_only=True,
            )
        ],
    )
    def post(self, request: Request, slug: str, event_id: str) -> Response:
        team = self.get_team(slug)
        known = len(event_id) <= 100 and not has_bad_text([event_id])
        if not known or not selectors.usage_event_exists(team=team, event_id=event_id):
            raise ApiError(404, "not_found", f"There is no usage event “{event_id[:100]}” in {team.slug}.")
        try:
            refund = services.refund_usage(team=team, event_id=event_id, actor=None)
        except ValidationError as exc:
            message = " ".join(exc.messages)
            raise ApiError(422, "not_refundable", message, {"id": message}) from None
        return Response(refund)


# --- Balance -----------------------------------------------------------------------------------------


class BalanceTokensSerializer(serializers.Serializer):
    available = Amount(help_text="What the valid packs still hold.")
    purchased = Amount(help_text="Tokens got on the active packs (available + used).")
    used = Amount(help_text="Spent on the active packs (usage minus refunds).")
    expired = Amount(help_text="Lost to expiry, over all time.")


class BalanceCreditsSerializer(serializers.Serializer):
    available = Amount()
    expires_at = AwareDateTimeField(help_text="The cutoff for every cloud credit.")


class BalancePackSerializer(serializers.Serializer):
    reference = serializers.CharField()
    tokens = Amount()
    remaining = Amount()
    purchased_at = AwareDateTimeField()
    expires_at = AwareDateTimeField()
    status = serializers.ChoiceField(choices=PACK_STATUSES)


class BalanceSerializer(serializers.Serializer):
    team = serializers.SlugField()
    tokens = BalanceTokensSerializer()
    cloud_credits = BalanceCreditsSerializer()
    packs = BalancePackSerializer(many=True)


class BalanceView(ApiView):
    @extend_schema(
        operation_id="balance_retrieve",
        tags=["balance"],
        summary="The team's balance (team or reseller key)",
        parameters=[SLUG, RETRY_AFTER],
        responses={200: BalanceSerializer, **error_responses(404)},
        examples=[
            OpenApiExample(
                "A balance",
                value={
                    "team": "acme",
                    "tokens": {"available": "993.00", "purchased": "1000.00", "used": "7.00", "expired": "0.00"},
                    "cloud_credits": {"available": "0.00", "expires_at": "2023-03-29T02:00:00+02:00"},
                    "packs": [
                        {
                            "reference": "PO-1001",
                            "tokens": "1000.00",
                            "remaining": "993.00",
                            "purchased_at": "2026-03-02T09:00:00+01:00",
                            "expires_at": "2027-03-02T09:00:00+01:00",
                            "status": "active",
                        }
                    ],
                },
                response_only=True,
            )
        ],
    )
    def get(self, request: Request, slug: str) -> Response:
        team = self.get_team(slug, team_key=True, reseller_key=True)
        return Response(BalanceSerializer(selectors.team_balance(team=team)).data)


# --- Ledger ---------------------------------------------------------------------------------------------


class LedgerEntrySerializer(serializers.ModelSerializer):
    kind = serializers.ChoiceField(choices=EntryKind.choices)
    amount = Amount(help_text="Positive adds to the pack or credit balance, negative takes from it.")
    unit = serializers.SerializerMethodField(help_text="tokens (on a pack) or cloud_credits.")
    pack = serializers.CharField(source="pack.reference", allow_null=True, help_text="The pack's order reference.")
    event = serializers.CharField(source="event.event_id", allow_null=True, help_text="The usage event's id.")

    at = AwareDateTimeField(help_text="When it took effect (a charge's time for usage).")
    created_at = AwareDateTimeField(help_text="When it was written.")

    class Meta:
        model = LedgerEntry
        fields = ["id", "at", "kind", "amount", "unit", "pack", "event", "note", "created_at"]

    @extend_schema_field(serializers.ChoiceField(choices=[("tokens", "tokens"), ("cloud_credits", "cloud_credits")]))
    def get_unit(self, entry: LedgerEntry) -> str:
        return "tokens" if entry.credit_balance_id is None else "cloud_credits"


class LedgerPagination(PageNumberPagination):
    page_size = 100
    page_size_query_param = "page_size"
    max_page_size = 1000


class LedgerView(ApiView, generics.ListAPIView):
    serializer_class = LedgerEntrySerializer
    pagination_class = LedgerPagination

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation
            return LedgerEntry.objects.none()
        return selectors.ledger_entries(team=self.get_team(self.kwargs["slug"]))

    @extend_schema(
        operation_id="ledger_list",
        tags=["balance"],
        summary="The team's ledger, oldest first (team key)",
        description=(
            "Every movement of tokens and credits: purchase, grant, usage, refund, expiry, moves, adjustments. "
            "Append-only: corrections are new entries. Paginated with `page` and `page_size` (at most 1000)."
        ),
        parameters=[SLUG, RETRY_AFTER],
        responses={200: LedgerEntrySerializer(many=True), **error_responses(403, 404, e404="No such team or page.")},
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


# --- Rates -----------------------------------------------------------------------------------------------


class VariantSerializer(serializers.Serializer):
    code = serializers.CharField()
    tokens = Amount()


class RateSerializer(serializers.ModelSerializer):
    charge_type = serializers.ChoiceField(choices=ChargeType.choices)
    tokens = Amount(help_text="Per day, per result or per unit; 0.00 for free products and services with variants.")
    variants = VariantSerializer(many=True)
    effective_from = AwareDateTimeField(help_text="When this row took effect.")

    class Meta:
        model = Rate
        fields = [
            "code",
            "name",
            "charge_type",
            "tokens",
            "variants",
            "unit",
            "cloud_credit_eligible",
            "grace_minutes",
            "effective_from",
        ]


class RatesView(ApiView):
    @extend_schema(
        operation_id="rates_list",
        tags=["rates"],
        summary="The rate sheet in force (any key)",
        description="One entry per product or service: the row in force now.",
        parameters=[RETRY_AFTER],
        responses={200: RateSerializer(many=True), **error_responses()},
        examples=[
            OpenApiExample(
                "Rates",
                value=[
                    {
                        "code": "autocad",
                        "name": "AutoCAD",
                        "charge_type": "daily",
                        "tokens": "7.00",
                        "variants": [],
                        "unit": "day",
                        "cloud_credit_eligible": False,
                        "grace_minutes": 5,
                        "effective_from": "2022-03-29T00:00:00Z",
                    }
                ],
                response_only=True,
            )
        ],
    )
    def get(self, request: Request) -> Response:
        return Response(RateSerializer(selectors.rates_in_force(), many=True).data)


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
        membership = member_or_404(team, email_from_path(email))
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
        membership = member_or_404(team, email_from_path(email))
        services.remove_flex(team=team, user=membership.user, actor=None)
        return Response(status=204)
