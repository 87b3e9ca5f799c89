"""Run every scheduled job once, in this process.

Where no Celery beat runs (``make run`` without Redis, or a cron-driven install), this
does what the beat would: each entry of ``CELERY_BEAT_SCHEDULE`` once, in order. Every job
is idempotent, so running it more often than the schedule does no harm.
"""

from celery import current_app as app
from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run every job of the beat schedule once, in-process."

    def handle(self, *args, **options) -> None:
        app.loader.import_default_modules()
        for name, entry in settings.CELERY_BEAT_SCHEDULE.items():
            result = app.tasks[entry["task"]].apply(args=entry.get("args", ()), kwargs=entry.get("kwargs", {}))
            state = "ok" if result.successful() else f"failed: {result.result!r}"
            if options["verbosity"] >= 1:
                self.stdout.write(f"{name}: {state}")
