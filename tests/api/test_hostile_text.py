"""Every operation of the API, with each text it takes (body fields, path segments, query
parameters) replaced in turn by hostile text: over-long, control characters, line breaks,
NUL, lone surrogates. Never a 500; every refusal in the error shape; nothing stored that
the database could not keep. The list is checked against the OpenAPI schema, so a new
operation can't be left out."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import quote

import pytest

from tests.api.conftest import error_of

HOSTILE = [
    "x" * 5000,
    "line\nbreak",
    "carriage\r\nreturn",
    "tab\there",
    "nul\x00byte",
    "line\u2028separator",
    "\ud800lone surrogate",
    "😀" * 300,
    "",
    " ",
]
NOW = "2026-03-02T08:00:00+00:00"
EVENT = {
    "id": "h-1",
    "user": "member@own.example",
    "product": "cfd-simulation",
    "variant": "simple",
    "quantity": 1,
    "started_at": NOW,
    "ended_at": NOW,
}
# (method, path, query, body, key kind): a valid request to every operation.
OPERATIONS = [
    ("POST", "/api/v1/teams", "", {
        "slug": "hostile", "name": "Hostile", "plan": "standard", "time_zone": "UTC",
        "contract_start": "2026-01-01", "contract_end": "2026-12-31",
    }, "reseller"),
    ("POST", "/api/v1/teams/own-team/packs", "", {
        "reference": "H-1", "tokens": 5, "purchased_at": NOW, "price": "10.00", "currency": "EUR",
    }, "reseller"),
    ("GET", "/api/v1/teams/own-team/packs", "", None, "team"),
    ("POST", "/api/v1/teams/own-team/cloud-credits", "", {
        "credits": "5", "granted_at": "2022-06-01T00:00:00Z",
    }, "reseller"),
    ("PUT", "/api/v1/teams/own-team/members/new@own.example", "", {
        "role": "member", "first_name": "New", "last_name": "Person",
    }, "team"),
    ("PUT", "/api/v1/teams/own-team/assignments/member@own.example", "", {"products": ["autocad", "revit"]}, "team"),
    ("DELETE", "/api/v1/teams/own-team/assignments/member@own.example", "", None, "team"),
    ("POST", "/api/v1/teams/own-team/usage-events", "", {"events": [EVENT]}, "team"),
    ("POST", "/api/v1/teams/own-team/usage-events/h-1/refund", "", None, "team"),
    ("GET", "/api/v1/teams/own-team/balance", "", None, "team"),
    ("GET", "/api/v1/teams/own-team/usage", "group_by=product&start=2026-01-01&end=2026-03-01", None, "team"),
    ("GET", "/api/v1/teams/own-team/ledger", "page=1", None, "team"),
    ("GET", "/api/v1/rates", "", None, "team"),
]  # fmt: skip


def _variants(value: Any, path: tuple = ()) -> list[tuple[tuple, Any]]:
    """Every way of replacing one string leaf of ``value`` by one hostile text."""
    out = []
    if isinstance(value, dict):
        for key, item in value.items():
            out += [((key, *p), v) for p, v in _variants(item, ())]
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += [((index, *p), v) for p, v in _variants(item, ())]
    elif isinstance(value, str):
        out += [((), text) for text in HOSTILE]
    return out


def _replace(value: Any, path: tuple, new: Any) -> Any:
    if not path:
        return new
    head, *rest = path
    copy = list(value) if isinstance(value, list) else dict(value)
    copy[head] = _replace(value[head], tuple(rest), new)
    return copy


def _quoted(text: str) -> str:
    """As a client puts it in a URL: UTF-8 bytes, percent-encoded (a lone surrogate too)."""
    return quote(text.encode("utf-8", "surrogatepass"), safe="")


def _check(response) -> None:
    assert response.status_code < 500, response.content[:300]
    if response.status_code >= 400:
        error_of(response)


def _body(data: Any) -> str:
    # ensure_ascii: lone surrogates travel as \ud800 escapes, as a client would send them.
    return json.dumps(data, ensure_ascii=True)


def test_the_list_covers_every_operation_of_the_schema(api):
    schema = api.client.get("/api/v1/schema", HTTP_ACCEPT="application/json").json()
    documented = {
        (method.upper(), re.sub(r"\{[^}]+\}", "{}", path))
        for path, item in schema["paths"].items()
        for method in item
        if method in {"get", "post", "put", "delete", "patch"}
    }
    templates = {
        "/api/v1/teams/own-team/members/new@own.example": "/api/v1/teams/{}/members/{}",
        "/api/v1/teams/own-team/assignments/member@own.example": "/api/v1/teams/{}/assignments/{}",
        "/api/v1/teams/own-team/usage-events/h-1/refund": "/api/v1/teams/{}/usage-events/{}/refund",
    }
    covered = {(m, templates.get(p, p.replace("own-team", "{}"))) for m, p, *_ in OPERATIONS}
    assert documented == covered


@pytest.mark.parametrize(("method", "path", "query", "body", "kind"), [op for op in OPERATIONS if op[3] is not None])
def test_hostile_text_in_any_body_field_is_refused_cleanly(api, keys, assigned, method, path, query, body, kind):
    for leaf, text in _variants(body):
        response = api.request(
            method, f"{path}?{query}", body=_body(_replace(body, leaf, text)), key=getattr(keys, kind)
        )
        _check(response)


@pytest.mark.parametrize(("method", "path", "query", "body", "kind"), OPERATIONS)
def test_hostile_text_in_any_path_segment_or_query_value_is_refused_cleanly(
    api, keys, assigned, method, path, query, body, kind
):
    segments = path.split("/")
    params = [pair.split("=") for pair in query.split("&") if pair]
    for text in HOSTILE:
        for index in range(3, len(segments)):  # after /api/v1/
            hostile = "/".join([*segments[:index], _quoted(text), *segments[index + 1 :]])
            _check(api.request(method, hostile, body=_body(body) if body else None, key=getattr(keys, kind)))
        for index in range(len(params)):
            pairs = [f"{k}={_quoted(text) if i == index else v}" for i, (k, v) in enumerate(params)]
            _check(
                api.request(
                    method, f"{path}?{'&'.join(pairs)}", body=_body(body) if body else None, key=getattr(keys, kind)
                )
            )
