"""The OpenAPI schema validates, names every endpoint of api.md with its errors and
examples, and the docs page renders it with assets served from our own static files."""

from __future__ import annotations

import json
import re

import pytest
from django.contrib.staticfiles import finders
from django.core.management import call_command

ENDPOINTS = {
    ("/api/v1/teams", "post"),
    ("/api/v1/teams/{slug}/packs", "post"),
    ("/api/v1/teams/{slug}/packs", "get"),
    ("/api/v1/teams/{slug}/cloud-credits", "post"),
    ("/api/v1/teams/{slug}/members/{email}", "put"),
    ("/api/v1/teams/{slug}/assignments/{email}", "put"),
    ("/api/v1/teams/{slug}/assignments/{email}", "delete"),
    ("/api/v1/teams/{slug}/usage-events", "post"),
    ("/api/v1/teams/{slug}/usage-events/{event_id}/refund", "post"),
    ("/api/v1/teams/{slug}/balance", "get"),
    ("/api/v1/teams/{slug}/usage", "get"),
    ("/api/v1/teams/{slug}/ledger", "get"),
    ("/api/v1/rates", "get"),
}


@pytest.fixture(scope="module")
def schema(django_db_blocker) -> dict:
    from drf_spectacular.generators import SchemaGenerator

    with django_db_blocker.unblock():
        return SchemaGenerator().get_schema(request=None, public=True)


def test_the_schema_validates_as_openapi_3_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))

    assert (tmp_path / "schema.yaml").read_text().startswith("openapi: 3.0")


def test_the_schema_has_every_endpoint_of_api_md(schema):
    operations = {(path, method) for path, item in schema["paths"].items() for method in item}

    assert operations == ENDPOINTS


def test_every_operation_documents_its_errors_and_the_key(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            where = f"{method.upper()} {path}"
            assert operation.get("summary"), where
            assert operation["security"] == [{"apiKey": []}], where
            codes = set(operation["responses"])
            assert {"401", "429"} <= codes, where
            if "{slug}" in path:
                assert "404" in codes, where
            for code, response in operation["responses"].items():
                if code.startswith(("4", "5")):
                    assert response["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
                    assert response["content"]["application/json"]["examples"], where
            assert "Retry-After" in operation["responses"]["429"]["headers"], where


def test_usage_by_user_documents_premium_required(schema):
    responses = schema["paths"]["/api/v1/teams/{slug}/usage"]["get"]["responses"]

    assert "premium_required" in responses["403"]["description"]


def test_packs_document_201_200_409_and_422(schema):
    responses = schema["paths"]["/api/v1/teams/{slug}/packs"]["post"]["responses"]

    assert {"200", "201", "409", "422"} <= set(responses)


def test_every_request_and_response_field_has_a_type(schema):
    untyped = []
    for name, component in schema["components"]["schemas"].items():
        for field, spec in component.get("properties", {}).items():
            described = {"type", "$ref", "oneOf", "allOf", "anyOf", "enum"} & set(spec)
            # The event id is echoed as sent, whatever its type.
            if not described and not (field == "id" and name in {"EventOutcome", "EventError"}):
                untyped.append(f"{name}.{field}")
    assert untyped == []


@pytest.mark.django_db
def test_the_schema_is_served_without_a_key(client):
    response = client.get("/api/v1/schema?format=json")

    assert response.status_code == 200
    body = json.loads(response.content)
    assert body["info"]["title"] == "FlexAdmin API"
    assert body["components"]["securitySchemes"]["apiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": body["components"]["securitySchemes"]["apiKey"]["description"],
    }


@pytest.mark.django_db
def test_the_docs_page_renders_with_local_assets_only(client):
    response = client.get("/api/v1/docs")

    assert response.status_code == 200
    html = response.content.decode()
    assert "/api/v1/schema" in html
    assets = re.findall(r"""(?:src|href)=["']([^"']+)["']""", html)
    assert assets
    assert not [a for a in assets if a.startswith(("http:", "https:", "//"))], assets
    local = [a for a in assets if a.startswith("/static/")]
    assert any("swagger-ui" in a for a in local)
    for asset in local:
        assert finders.find(asset.removeprefix("/static/")), asset
