"""The Celery application.

With ``REDIS_URL`` set, tasks go through Redis to a worker (and beat runs the schedule).
Without it, settings turn on ``task_always_eager`` so the same tasks run in-process:
``make run`` and ``make test`` need no services.
"""

import logging
import os

from celery import Celery
from kombu.exceptions import KombuError

logger = logging.getLogger(__name__)

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flexadmin.settings")

app = Celery("flexadmin")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="flexadmin.ping")
def ping_task() -> str:
    """A no-op round trip used by health checks and the service tests."""
    return "pong"


def enqueue_on_commit(task, *args: object) -> None:
    """Send ``task`` once the current transaction commits, never failing the caller.

    A broker that is down must not turn a saved change into an error page: the publish is
    tried once with short timeouts, and a failure is logged for the schedule or a person
    (e.g. "Resend invitation") to pick up.
    """
    from django.db import transaction

    def publish() -> None:
        try:
            task.apply_async(args=args, retry=False)
        except (KombuError, OSError):  # the broker is unreachable; the change itself is saved
            logger.warning("Could not enqueue %s%r; it will be picked up later", task.name, args, exc_info=True)

    transaction.on_commit(publish)
