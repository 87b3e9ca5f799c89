from io import StringIO

from django.core.management import call_command

from accounts.models import Notification


def test_run_jobs_runs_every_scheduled_job_once(buy, personas, settings):
    from datetime import UTC, datetime, timedelta

    from django.utils import timezone

    # A pack that expires within 90 days: the reminder job has something to say.
    buy(100, at=max(timezone.now() - timedelta(days=300), datetime(2026, 1, 1, tzinfo=UTC)))
    out = StringIO()
    call_command("run_jobs", stdout=out)
    lines = out.getvalue().splitlines()
    assert len(lines) == len(settings.CELERY_BEAT_SCHEDULE)
    assert all(line.endswith(": ok") for line in lines), lines
    assert Notification.objects.filter(kind="expiry_reminder", user=personas.primary_admin).exists()
