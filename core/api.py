"""The JSON API's shared parts, free of any domain (api.md "Conventions").

- **Errors.** Every failure is ``{"error": {"code", "message", "fields"}}``
  (:func:`exception_handler`): 400 the request doesn't parse or a field has the wrong
  type or format, 401, 403, 404, 405, 409 a clash with what exists, 422 well-formed but
  refused by a rule of the services, 429 too many requests (with ``Retry-After``).
- **JSON only**, in and out; times with an offset; amounts as strings with two decimals.
- :class:`JsonApiView`: parsers, renderer and error handling every API view shares. Key
  authentication and the team scope are added on top by ``accounts.api_base.ApiView``.

The API views themselves live in ``accounts/api.py``, ``billing/api.py`` and
``reporting/api.py``; the routes in ``flexadmin/api_urls.py``.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiExample, OpenApiParameter, OpenApiResponse
from rest_framework import exceptions, parsers, renderers, serializers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from core.exceptions import Conflict
from core.validators import odd_offset, read_time

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"


# --- JSON in and out ----------------------------------------------------------------------------


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


class JSONParser(parsers.JSONParser):
    """Strict JSON with a size limit; whatever fails to parse is a 400, never a 500
    (deep nesting raises RecursionError, which the stock parser lets through)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        limit = settings.FLEX_API_MAX_BODY_BYTES
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise exceptions.ParseError(f"The request body is larger than {limit} bytes.")
        try:
            return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
        except (ValueError, RecursionError) as exc:
            raise exceptions.ParseError(f"The request body is not valid JSON: {str(exc)[:200]}") from None


class JSONRenderer(renderers.JSONRenderer):
    """UTF-8 JSON; text a client sent that can't be encoded (lone surrogates) is escaped."""

    def render(self, data: Any, accepted_media_type: str | None = None, renderer_context: dict | None = None) -> bytes:
        try:
            return super().render(data, accepted_media_type, renderer_context)
        except UnicodeEncodeError:
            return json.dumps(data, cls=self.encoder_class, ensure_ascii=True, allow_nan=False).encode()


class JSONOnlyNegotiation(DefaultContentNegotiation):
    """The API speaks JSON whatever the Accept header says (no 406)."""

    def select_renderer(self, request: Request, renderers: list, format_suffix: str | None = None) -> tuple:
        renderer = renderers[0]
        return renderer, renderer.media_type


# --- Errors --------------------------------------------------------------------------------------


class ApiError(exceptions.APIException):
    """A refusal with its own code: ``raise ApiError(403, "premium_required", "…")``."""

    def __init__(self, status: int, code: str, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(detail=message, code=code)
        self.status_code, self.error_code, self.message, self.fields = status, code, message, fields or {}


def error_body(code: str, message: str, fields: dict[str, str] | None = None) -> dict:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def _flatten(detail: Any, prefix: str = "") -> dict[str, str]:
    """DRF's nested error detail as ``{"field": "message", "events.3": "message"}``."""
    if isinstance(detail, dict):
        out: dict[str, str] = {}
        for key, value in detail.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(detail, list | tuple):
        if all(not isinstance(item, dict | list | tuple) for item in detail):
            return {prefix: " ".join(str(item) for item in detail)} if detail else {}
        out = {}
        for index, item in enumerate(detail):
            out.update(_flatten(item, f"{prefix}.{index}" if prefix else str(index)))
        return out
    return {prefix: str(detail)}


def _django_fields(exc: DjangoValidationError) -> tuple[str, dict[str, str]]:
    if hasattr(exc, "error_dict"):
        fields = {name: " ".join(messages) for name, messages in exc.message_dict.items()}
        non_field = fields.pop("__all__", "")
        return non_field or " ".join(fields.values()), fields
    return " ".join(exc.messages), {}


def _retry_after(wait: float | None) -> str:
    return str(max(1, math.ceil(wait or 1)))


def exception_handler(exc: Exception, context: dict) -> Response | None:
    """Every failure of an API view as ``{"error": {"code", "message", "fields"}}``."""
    status, headers = 400, {}
    if isinstance(exc, ApiError):
        status, code, message, fields = exc.status_code, exc.error_code, exc.message, exc.fields
    elif isinstance(exc, Conflict):
        message, fields = _django_fields(exc)
        status, code = 409, "conflict"
    elif isinstance(exc, DjangoValidationError):
        # The request was well-formed (the serializer let it through) but a rule of the
        # services refused it: 422.
        message, fields = _django_fields(exc)
        status, code = 422, "refused"
    elif isinstance(exc, IntegrityError):
        # Two requests raced for the same unique thing; the loser gets a conflict to retry.
        logger.info("API request lost a race: %s", exc)
        status, code, message, fields = 409, "conflict", "That clashed with a concurrent change; try again.", {}
    elif isinstance(exc, Http404 | exceptions.NotFound):
        detail = str(exc.detail) if isinstance(exc, exceptions.NotFound) else str(exc)
        status, code, fields = 404, "not_found", {}
        message = detail if detail and detail != exceptions.NotFound.default_detail else "Not found."
    elif isinstance(exc, DjangoPermissionDenied | exceptions.PermissionDenied):
        detail = str(getattr(exc, "detail", "") or exc) or "This key may not do that."
        status, code, message, fields = 403, "forbidden", detail, {}
    elif isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
        status, code, fields = 401, "unauthorized", {}
        message = (
            "An API key is required: send “Authorization: Bearer <key>”."
            if isinstance(exc, exceptions.NotAuthenticated)
            else str(exc.detail)
        )
        headers["WWW-Authenticate"] = getattr(exc, "auth_header", None) or 'Bearer realm="api"'
    elif isinstance(exc, exceptions.Throttled):
        status, code, fields = 429, "throttled", {}
        headers["Retry-After"] = _retry_after(exc.wait)
        message = f"Too many requests for this key; retry after {headers['Retry-After']} seconds."
    elif isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        non_field = fields.pop("non_field_errors", "") or fields.pop("", "")
        code = "invalid"
        message = non_field or "The request has invalid fields: " + ", ".join(sorted(fields)) + "."
    elif isinstance(exc, exceptions.ParseError):
        code, message, fields = "malformed", str(exc.detail), {}
    elif isinstance(exc, exceptions.UnsupportedMediaType):
        code, fields = "unsupported_media_type", {}
        message = "Send JSON with “Content-Type: application/json”."
    elif isinstance(exc, exceptions.MethodNotAllowed):
        status, code, message, fields = 405, "method_not_allowed", str(exc.detail), {}
    elif isinstance(exc, exceptions.APIException):
        status, code, message, fields = exc.status_code, exc.default_code, str(exc.detail), {}
    else:
        return None  # a bug: Django's 500 handling logs it, server_error() answers in JSON
    return Response(error_body(code, message, fields), status=status, headers=headers)


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX) or request.path.rstrip("/") == API_PREFIX.rstrip("/")


def server_error(request: HttpRequest) -> HttpResponse:
    """handler500: JSON under /api/, the friendly page elsewhere."""
    if _is_api(request):
        return JsonResponse(
            error_body("server_error", "Something went wrong on our side; it has been logged."), status=500
        )
    return defaults.server_error(request)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """handler400: JSON under /api/ (e.g. a request Django itself finds suspicious)."""
    if _is_api(request):
        return JsonResponse(error_body("malformed", "The request could not be understood."), status=400)
    return defaults.bad_request(request, exception)


@csrf_exempt
def not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
    """Any URL under /api/ that names no endpoint."""
    return JsonResponse(
        error_body("not_found", f"There is no endpoint {request.path}. The endpoints are listed at /api/v1/docs."),
        status=404,
    )


not_found.login_required = False  # type: ignore[attr-defined]


# --- Fields ---------------------------------------------------------------------------------------

AMOUNT = {"max_digits": 14, "decimal_places": 2, "coerce_to_string": True}


def Amount(**kwargs: Any) -> serializers.DecimalField:
    """Tokens or credits: a string with two decimals ("83.00")."""
    return serializers.DecimalField(**{**AMOUNT, **kwargs})


class AwareDateTimeField(serializers.DateTimeField):
    """A time with an offset, in and out (api.md "Conventions").

    In: ISO 8601 with an offset (a time without one is refused), between 2000 and 2100.
    Out: in the active time zone (the team's, on team endpoints) with its offset.
    """

    default_error_messages = {
        "invalid": "Not an ISO 8601 time; use e.g. 2026-03-02T08:00:00+01:00.",
        "naive": "A time zone offset is required (e.g. 2026-03-02T08:00:00Z or +01:00).",
        "offset": "The offset must be whole minutes between -14:00 and +14:00 (e.g. +01:00).",
        "range": "The time must lie between 2000 and 2100.",
    }

    def to_internal_value(self, value: Any) -> datetime:
        moment, problem = read_time(value)
        if problem:
            self.fail(problem)
        return moment

    def to_representation(self, value: datetime | None) -> str | None:
        if value is None:
            return None
        moment = timezone.localtime(value) if timezone.is_aware(value) else value
        if odd_offset(moment):  # a zone's historical local mean time: say it in UTC instead
            moment = moment.astimezone(UTC)
        return moment.isoformat().replace("+00:00", "Z") if moment.utcoffset() == timedelta(0) else moment.isoformat()


# --- Error documentation --------------------------------------------------------------------------


class ErrorDetailSerializer(serializers.Serializer):
    code = serializers.CharField(
        help_text="Machine-readable: invalid, malformed, unsupported_media_type, unauthorized, forbidden, "
        "premium_required, not_found, method_not_allowed, conflict, refused, throttled."
    )
    message = serializers.CharField(help_text="What went wrong, for a person.")
    fields = serializers.DictField(
        child=serializers.CharField(),
        help_text="Field name (dotted for nested fields) to its message; empty when no one field is to blame.",
    )


class ErrorSerializer(serializers.Serializer):
    error = ErrorDetailSerializer()


ERROR_DESCRIPTIONS = {
    400: "Malformed: the body is not JSON, or a field is missing or has the wrong type or format.",
    401: "No API key, or a wrong or revoked one.",
    403: "This key may not do that (e.g. a team key where a reseller key is needed).",
    404: "No such team for this key (another team's slug is answered the same way), or no such object.",
    409: "Clashes with what exists.",
    422: "Well-formed but refused by a business rule; `fields` says which field.",
    429: "Too many requests for this key; wait `Retry-After` seconds.",
}

ERROR_EXAMPLES = {
    400: error_body("invalid", "The request has invalid fields: tokens.", {"tokens": "A valid integer is required."}),
    401: error_body("unauthorized", "The API key is not valid or has been revoked."),
    403: error_body("forbidden", "This needs a reseller key."),
    404: error_body("not_found", "No team “acme” for this key."),
    409: error_body(
        "conflict",
        "The order reference “PO-1001” was already recorded with other data.",
        {"reference": "The order reference “PO-1001” was already recorded with other data."},
    ),
    422: error_body(
        "refused",
        "The purchase date 2031-01-05 lies outside the contract (2026-01-01 to 2026-12-31).",
        {"purchased_at": "The purchase date 2031-01-05 lies outside the contract (2026-01-01 to 2026-12-31)."},
    ),
    429: error_body("throttled", "Too many requests for this key; retry after 12 seconds."),
}

RETRY_AFTER = OpenApiParameter(
    "Retry-After",
    OpenApiTypes.INT,
    OpenApiParameter.HEADER,
    response=[429],
    description="Seconds to wait before the next request.",
)


def error_responses(*statuses: int, **descriptions: str) -> dict[int, OpenApiResponse]:
    """The documented error responses of an operation; 401 and 429 apply to all."""
    overrides = {int(k.removeprefix("e")): v for k, v in descriptions.items()}
    out = {}
    for status in sorted({401, 429, *statuses}):
        out[status] = OpenApiResponse(
            ErrorSerializer,
            description=overrides.get(status, ERROR_DESCRIPTIONS[status]),
            examples=[OpenApiExample(f"{status}", value=ERROR_EXAMPLES[status], response_only=True)],
        )
    return out


def parse(serializer_class: type[serializers.Serializer], data: Any, **kwargs: Any) -> dict:
    """Validate a request body (or query) with a serializer; a failure is a 400."""
    serializer = serializer_class(data=data, **kwargs)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class JsonApiView(APIView):
    """JSON in and out, and every failure in the one error shape; no sessions (so no CSRF
    and no sign-in redirect): subclasses say how a client authenticates."""

    parser_classes = [JSONParser]
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JSONOnlyNegotiation

    @classmethod
    def as_view(cls, **initkwargs: Any) -> Callable:
        view = super().as_view(**initkwargs)
        view.login_required = False  # keys, not sessions: LoginRequiredMiddleware stays out
        return view

    def get_exception_handler(self) -> Callable:
        return exception_handler

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return super().dispatch(request, *args, **kwargs)
        finally:
            timezone.deactivate()
