"""Property-based run of the OpenAPI schema against a live server (schemathesis).

Every operation of /api/v1/schema gets generated requests, valid and invalid, with a key
that may use it and the slug of a team that holds data; each answer must not be a 5xx
and must match the schema (status code, content type, body). Slow-ish (about a minute),
so it runs in CI phase (b) (``FLEX_REQUIRE_SERVICES=1``) or with ``FLEX_SCHEMA_FUZZ=1``;
``FLEX_SCHEMA_FUZZ_EXAMPLES`` sets the examples per operation and generation mode.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from datetime import UTC, datetime, timedelta

import pytest
from django.apps import apps as django_apps
from django.utils import timezone

from accounts import services as account_services
from billing import services as billing_services
from billing.models import Rate
from tests.conftest import make_personas

pytestmark = pytest.mark.services

ENABLED = os.environ.get("FLEX_REQUIRE_SERVICES") == "1" or os.environ.get("FLEX_SCHEMA_FUZZ") == "1"
EXAMPLES = int(os.environ.get("FLEX_SCHEMA_FUZZ_EXAMPLES", "25"))

# What only a reseller key may do; everything else is asked with the team's key.
RESELLER_OPERATIONS = {
    ("POST", "/api/v1/teams"),
    ("POST", "/api/v1/teams/{slug}/packs"),
    ("POST", "/api/v1/teams/{slug}/cloud-credits"),
}


def ensure_rate_sheet() -> None:
    """A transactional test before this one may have flushed the migration's rate sheet."""
    if not Rate.objects.exists():
        importlib.import_module("billing.migrations.0002_rate_sheet").install(django_apps, None)


@pytest.fixture
def world(live_server, settings):
    """The personas' team (Premium, so every report answers) with a pack, an assigned
    member and some usage; a team key and a reseller key."""
    if not ENABLED:
        pytest.skip("the schema run takes about a minute: set FLEX_SCHEMA_FUZZ=1 (CI sets FLEX_REQUIRE_SERVICES=1)")
    settings.FLEX_API_THROTTLE_RATE = "100000/minute"
    ensure_rate_sheet()
    personas = make_personas()
    team = personas.team
    team.plan = "premium"
    team.save(update_fields=["plan"])
    billing_services.assign_flex(
        team=team, user=personas.member, products="all", actor=None, at=datetime(2022, 1, 1, tzinfo=UTC)
    )
    now = timezone.now()
    billing_services.record_purchase(
        team=team, reference="FUZZ-1", tokens=100_000, purchased_at=now - timedelta(days=1)
    )
    start = now - timedelta(hours=6)
    billing_services.log_usage(
        team=team,
        events=[
            {
                "id": "fuzz-day",
                "user": personas.member.email,
                "product": "autocad",
                "started_at": start.isoformat(),
                "ended_at": (start + timedelta(hours=2)).isoformat(),
            },
            {
                "id": "fuzz-job",
                "user": personas.member.email,
                "product": "cfd-simulation",
                "variant": "simple",
                "started_at": start.isoformat(),
            },
        ],
    )
    team_key = account_services.create_api_key(team=team, name="fuzz", actor=None)[1]
    reseller_key = account_services.create_api_key(reseller=team.reseller, name="fuzz", actor=None)[1]
    return {
        "url": live_server.url,
        "slug": team.slug,
        "team_key": team_key,
        "reseller_key": reseller_key,
        "member": personas.member.email,
        "event": "fuzz-job",
    }


def fuzz(operation, *, world: dict, key: str, seen: set[int], session, checks: list) -> None:
    """Hypothesis over one operation: valid and invalid requests, each answer checked."""
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st

    strategies = [operation.as_strategy(generation_mode=schemathesis.GenerationMode.POSITIVE)]
    with contextlib.suppress(Exception):  # an operation may have nothing to negate
        strategies.append(operation.as_strategy(generation_mode=schemathesis.GenerationMode.NEGATIVE))

    @settings(
        max_examples=EXAMPLES * len(strategies),
        deadline=None,
        database=None,
        derandomize=True,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=st.one_of(strategies))
    def run(case) -> None:
        # Aim at data that exists: the team's slug, most of the time a real member or event.
        params = case.path_parameters or {}
        if "slug" in params:
            params["slug"] = world["slug"]
        if "email" in params and len(str(params["email"])) % 3:
            params["email"] = world["member"]
        if "event_id" in params and len(str(params["event_id"])) % 2:
            params["event_id"] = world["event"]
        response = case.call(
            base_url=world["url"], session=session, headers={"Authorization": f"Bearer {key}"}, timeout=60
        )
        seen.add(response.status_code)
        case.validate_response(response, checks=checks)

    run()


def test_every_operation_answers_by_the_schema_and_never_5xx(world):
    import requests
    import schemathesis
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    session = requests.Session()
    raw = session.get(f"{world['url']}/api/v1/schema?format=json", timeout=30)
    assert raw.status_code == 200
    schema = schemathesis.openapi.from_dict(raw.json())
    checks = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

    failures: list[str] = []
    statuses: dict[str, set[int]] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        label = f"{operation.method.upper()} {operation.path}"
        reseller = (operation.method.upper(), operation.path) in RESELLER_OPERATIONS
        key = world["reseller_key"] if reseller else world["team_key"]
        seen = statuses.setdefault(label, set())
        try:
            fuzz(operation, world=world, key=key, seen=seen, session=session, checks=checks)
        except Exception as error:
            failures.append(f"{label}:\n{error}")

    summary = "\n".join(f"{label}: {sorted(codes)}" for label, codes in sorted(statuses.items()))
    print(f"\nStatus codes seen per operation:\n{summary}")
    assert len(statuses) == 13, summary
    assert not failures, "\n\n".join(failures)
    # Enough examples reached every operation's success answer, not just its refusals.
    assert all(any(200 <= code < 300 for code in codes) for codes in statuses.values()), summary
