"""The Celery application.

With ``REDIS_URL`` set, tasks go through Redis to a worker (and beat runs the schedule).
Without it, settings turn on ``task_always_eager`` so the same tasks run in-process:
``make run`` and ``make test`` need no services.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flexadmin.settings")

app = Celery("flexadmin")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.task(name="flexadmin.ping")
def ping_task() -> str:
    """A no-op round trip used by health checks and the service tests."""
    return "pong"
