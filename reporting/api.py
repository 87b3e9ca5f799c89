"""API: the usage reports By Product, By User (Premium) and by day, read from the rollups."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, PolymorphicProxySerializer, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api_base import ApiView
from core.api import RETRY_AFTER, Amount, ApiError, AwareDateTimeField, error_responses, parse
from reporting import selectors

GROUPS = [("product", "product"), ("user", "user"), ("day", "day")]


class UsageQuerySerializer(serializers.Serializer):
    group_by = serializers.ChoiceField(
        choices=GROUPS, default="product", help_text="product (every plan), user (Premium only) or day."
    )
    start = serializers.DateField(required=False, help_text="First day (the team's days), inclusive; omitted: open.")
    end = serializers.DateField(required=False, help_text="Last day, inclusive; omitted: open.")

    def validate(self, data: dict) -> dict:
        if data.get("start") and data.get("end") and data["start"] > data["end"]:
            raise serializers.ValidationError({"end": "The end lies before the start."})
        return data


class ProductRowSerializer(serializers.Serializer):
    product = serializers.CharField()
    name = serializers.CharField()
    tokens = Amount()
    cloud_credits = Amount()
    users = serializers.IntegerField(help_text="Users charged for the product.")
    charges = serializers.IntegerField(help_text="Days (windows) and jobs charged.")
    denials = serializers.IntegerField(help_text="Launches and jobs refused.")


class UserRowSerializer(serializers.Serializer):
    user = serializers.EmailField()
    name = serializers.CharField()
    tokens = Amount()
    cloud_credits = Amount()
    products = serializers.IntegerField(help_text="Products charged.")
    charges = serializers.IntegerField()
    denials = serializers.IntegerField()
    last_used = serializers.DateField(allow_null=True, help_text="The last day with a charge.")


class DayRowSerializer(serializers.Serializer):
    day = serializers.DateField()
    tokens = Amount()
    cloud_credits = Amount()
    users = serializers.IntegerField()
    products = serializers.IntegerField()
    charges = serializers.IntegerField()
    denials = serializers.IntegerField()


def _report(name: str, group: str, row: type[serializers.Serializer]) -> type[serializers.Serializer]:
    """The response of one grouping; ``group_by`` tells the three apart."""
    return type(
        name,
        (serializers.Serializer,),
        {
            "group_by": serializers.ChoiceField(choices=[(group, group)]),
            "start": serializers.DateField(allow_null=True),
            "end": serializers.DateField(allow_null=True),
            "rows": row(many=True),
            "last_processed_at": AwareDateTimeField(
                allow_null=True, help_text="When usage last reached the report (null: no usage yet)."
            ),
            "__module__": __name__,
        },
    )


ByProductReport = _report("ByProductReport", "product", ProductRowSerializer)
ByUserReport = _report("ByUserReport", "user", UserRowSerializer)
ByDayReport = _report("ByDayReport", "day", DayRowSerializer)
REPORTS = {
    "product": (selectors.usage_by_product, ByProductReport),
    "user": (selectors.usage_by_user, ByUserReport),
    "day": (selectors.usage_by_day, ByDayReport),
}


class UsageView(ApiView):
    @extend_schema(
        operation_id="usage_report",
        tags=["reports"],
        summary="Token usage by product, user or day (team key)",
        description=(
            "Read from the report rollups. Days are the team's days. By User is part of the Premium plan: a "
            "Standard team gets 403 `premium_required`."
        ),
        parameters=[
            OpenApiParameter("slug", OpenApiTypes.STR, OpenApiParameter.PATH, description="The team's slug."),
            UsageQuerySerializer,
            RETRY_AFTER,
        ],
        responses={
            200: PolymorphicProxySerializer(
                component_name="UsageReport",
                serializers=[ByProductReport, ByUserReport, ByDayReport],
                resource_type_field_name=None,
            ),
            **error_responses(
                400, 403, 404, e403="By User on a Standard team (`premium_required`), or a reseller key (`forbidden`)."
            ),
        },
        examples=[
            OpenApiExample(
                "By Product",
                value={
                    "group_by": "product",
                    "start": "2026-03-01",
                    "end": "2026-03-31",
                    "rows": [
                        {
                            "product": "autocad",
                            "name": "AutoCAD",
                            "tokens": "7.00",
                            "cloud_credits": "0.00",
                            "users": 1,
                            "charges": 1,
                            "denials": 0,
                        }
                    ],
                    "last_processed_at": "2026-03-02T12:31:00+01:00",
                },
                response_only=True,
            )
        ],
    )
    def get(self, request: Request, slug: str) -> Response:
        team = self.get_team(slug)
        query = parse(UsageQuerySerializer, request.query_params)
        group_by = query["group_by"]
        if group_by == "user" and not team.is_premium:
            raise ApiError(
                403,
                "premium_required",
                "The By User report is part of the Premium plan; this team is on Standard.",
                {"group_by": "By User needs the Premium plan."},
            )
        selector, report = REPORTS[group_by]
        start, end = query.get("start"), query.get("end")
        data = {
            "group_by": group_by,
            "start": start,
            "end": end,
            "rows": selector(team=team, start=start, end=end),
            "last_processed_at": selectors.last_processed_at(team=team),
        }
        return Response(report(data).data)
