"""Fixtures for tests that need real services: PostgreSQL, Redis, a Celery worker.

Without the service such a test skips with the reason; CI sets FLEX_REQUIRE_SERVICES=1,
which turns every skip into a failure (tests/conftest.py).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def redis_url() -> str:
    if not settings.REDIS_URL:
        pytest.skip("REDIS_URL is not set: no broker to test against")
    import redis

    try:
        redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2).ping()
    except redis.RedisError as error:
        pytest.skip(f"Redis at {settings.REDIS_URL} does not answer: {error}")
    return settings.REDIS_URL


@pytest.fixture(scope="session")
def celery_worker_process(redis_url):
    """A real worker process on the configured broker, stopped when the session ends."""
    from flexadmin.celery import app

    name = f"test-{uuid.uuid4().hex[:8]}@%h"
    (ROOT / "test-output").mkdir(exist_ok=True)
    log = open(ROOT / "test-output" / "celery-worker.log", "w")  # noqa: SIM115 (closed at teardown)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "flexadmin",
            "worker",
            "--pool=solo",
            "-l",
            "info",
            "-n",
            name,
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=ROOT,
        env={**os.environ, "REDIS_URL": redis_url},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"The Celery worker exited with {process.returncode}; see test-output/celery-worker.log")
        if app.control.ping(timeout=1.0):
            break
    else:
        process.kill()
        pytest.fail("The Celery worker did not answer a ping within 60 s")
    yield process
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
    log.close()


@pytest.fixture
def real_worker(celery_worker_process):
    """Send tasks to the worker instead of running them in-process."""
    from flexadmin.celery import app

    app.conf.task_always_eager = False
    yield celery_worker_process
    app.conf.task_always_eager = True
