"""Celery beat at a test's pace: the production schedule (settings.CELERY_BEAT_SCHEDULE),
the same jobs with the same options, but every entry due every FLEX_TEST_BEAT_EVERY
seconds. Started by tests/services/conftest.py as ``celery -A tests.services.fast_beat beat``.
"""

import os

from django.conf import settings

from flexadmin.celery import app

EVERY = float(os.environ.get("FLEX_TEST_BEAT_EVERY", "1"))

app.conf.beat_schedule = {
    name: {**entry, "schedule": EVERY, "options": {**entry.get("options", {}), "expires": 60}}
    for name, entry in settings.CELERY_BEAT_SCHEDULE.items()
}

__all__ = ["app"]
