"""Production settings: no start without a secret key, and Django's deployment check is
clean with the settings docs/operations.md lists."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    # As a production process starts: none of the test run's own settings (the browser tests set
    # DJANGO_ALLOW_ASYNC_UNSAFE for Playwright, which --deploy rightly flags).
    unset = {"SECRET_KEY", "DEBUG", "DATABASE_URL", "REDIS_URL", "DJANGO_ALLOW_ASYNC_UNSAFE"}
    base = {k: v for k, v in os.environ.items() if k not in unset}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_with_debug_off_the_app_refuses_to_start_without_a_secret_key():
    result = manage("check", DEBUG="0")

    assert result.returncode != 0
    assert "Set SECRET_KEY" in result.stderr


def test_the_deployment_check_is_clean_with_the_documented_production_settings():
    result = manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(60),
        ALLOWED_HOSTS="flex.example.com",
        FLEX_SECURE_COOKIES="1",
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout
