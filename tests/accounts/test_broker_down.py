"""A broker that does not answer never fails a web request or loses the change."""

import time

import pytest
from django.urls import reverse

from accounts.models import Invitation, Membership
from flexadmin.celery import app


@pytest.fixture
def dead_broker():
    """Point Celery at a loopback port nothing listens on, with tasks really published."""
    saved = app.conf.task_always_eager, app.conf.broker_url
    app.conf.task_always_eager = False
    app.conf.broker_url = "redis://127.0.0.1:9/0"
    _drop_connection_pools()
    yield
    app.conf.task_always_eager, app.conf.broker_url = saved
    _drop_connection_pools()


def _drop_connection_pools() -> None:
    # The pools keep the broker address they were made with; make them anew.
    app._pool = None
    app.amqp._producer_pool = None


def test_inviting_with_the_broker_down_saves_the_invitation_and_answers(
    admin_client, personas, dead_broker, django_capture_on_commit_callbacks
):
    started = time.monotonic()
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = admin_client.post(
            reverse("accounts:member-invite", args=[personas.team.slug]),
            {"email": "offline@example.com", "role": "member"},
        )
    assert len(callbacks) == 1  # the e-mail task was attempted after the commit
    assert response.status_code == 302
    membership = Membership.objects.get(user__email="offline@example.com")
    assert Invitation.objects.filter(membership=membership).exists()  # "Resend invitation" works later
    # Generous: the point is "does not hang on the broker", not a timing goal.
    assert time.monotonic() - started < 15
