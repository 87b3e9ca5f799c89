"""Personas shared by every test, and the switch that turns service skips into failures.

Personas: one team ("own") with a primary admin, a secondary admin, a report viewer and a
member; the sales rep of its reseller; and an outsider who is primary admin of another
team served by another reseller.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

from accounts.models import Membership, Role, Team, User
from tests.factories import PASSWORD, MembershipFactory, ResellerFactory, SalesRepFactory, TeamFactory, UserFactory

REQUIRE_SERVICES = os.environ.get("FLEX_REQUIRE_SERVICES") == "1"


def pytest_configure(config):
    from django.conf import settings

    # Password hashing is deliberately slow; tests create many users.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """With FLEX_REQUIRE_SERVICES=1 (CI), any skip is a failure: nothing hides a missing service."""
    outcome = yield
    report = outcome.get_result()
    if REQUIRE_SERVICES and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"Skipped under FLEX_REQUIRE_SERVICES=1, which makes every skip a failure: {reason}"


@pytest.fixture(autouse=True)
def _tasks_run_in_process(settings):
    """Tasks run where they are enqueued unless a test asks for a real worker."""
    from celery.result import _set_task_join_will_block

    from flexadmin.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = previous
    # An eager task runs under Celery's "no result.get() in a task" flag, a process-wide
    # global it saves and restores; threads running eager tasks at once (the concurrency
    # tests) can restore it in the wrong order and leave it set, so that a later test's
    # result.get() fails with "Never call result.get() within a task!". Outside a task it
    # is always off.
    _set_task_join_will_block(False)


@dataclass
class Personas:
    team: Team
    other_team: Team
    primary_admin: User
    secondary_admin: User
    report_viewer: User
    member: User
    sales_rep: User
    outsider: User
    password: str = PASSWORD

    def membership(self, user: User, team: Team | None = None) -> Membership:
        return Membership.objects.get(user=user, team=team or self.team)

    def by_role(self, role: str) -> User:
        return {
            "primary_admin": self.primary_admin,
            "secondary_admin": self.secondary_admin,
            "report_viewer": self.report_viewer,
            "member": self.member,
            "sales_rep": self.sales_rep,
            "outsider": self.outsider,
        }[role]


def make_personas() -> Personas:
    reseller = ResellerFactory(name="Alder Partners", slug="alder")
    team = TeamFactory(name="Own Team", slug="own-team", reseller=reseller, time_zone="Europe/Berlin")
    other_reseller = ResellerFactory(name="Other Partners", slug="other-partners")
    other_team = TeamFactory(name="Other Team", slug="other-team", reseller=other_reseller, plan="premium")
    users = {}
    for role, email, first, last in [
        (Role.PRIMARY_ADMIN, "primary@own.example", "Pat", "Primary"),
        (Role.SECONDARY_ADMIN, "secondary@own.example", "Sid", "Secondary"),
        (Role.REPORT_VIEWER, "viewer@own.example", "Val", "Viewer"),
        (Role.MEMBER, "member@own.example", "Mia", "Member"),
    ]:
        users[role] = UserFactory(email=email, first_name=first, last_name=last)
        MembershipFactory(user=users[role], team=team, role=role)
    rep = UserFactory(email="rep@alder.example", first_name="Rhea", last_name="Rep")
    SalesRepFactory(user=rep, reseller=reseller)
    outsider = UserFactory(email="admin@other.example", first_name="Otto", last_name="Outsider")
    MembershipFactory(user=outsider, team=other_team, role=Role.PRIMARY_ADMIN)
    other_member = UserFactory(email="member@other.example", first_name="Oda", last_name="Other")
    MembershipFactory(user=other_member, team=other_team, role=Role.MEMBER)
    return Personas(
        team=team,
        other_team=other_team,
        primary_admin=users[Role.PRIMARY_ADMIN],
        secondary_admin=users[Role.SECONDARY_ADMIN],
        report_viewer=users[Role.REPORT_VIEWER],
        member=users[Role.MEMBER],
        sales_rep=rep,
        outsider=outsider,
    )


@pytest.fixture
def personas(db) -> Personas:
    return make_personas()


@pytest.fixture
def admin_client(client, personas):
    client.force_login(personas.primary_admin)
    return client
