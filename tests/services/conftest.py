"""Fixtures for tests that need real services: PostgreSQL, Redis, a Celery worker.

Without the service such a test skips with the reason; CI sets FLEX_REQUIRE_SERVICES=1,
which turns every skip into a failure (tests/conftest.py).

Every worker and beat the tests start runs in a process group of its own and is stopped by
that group (SIGTERM, then SIGKILL), never by a name or pattern. With FLEX_CI_PIDS_DIR set
(.ci/run sets it), each group is also recorded there, one file named by the group id, so
that .ci/run can stop exactly those groups if pytest dies before its teardown.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import IO

import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
PIDS_DIR = os.environ.get("FLEX_CI_PIDS_DIR", "")


# --- Processes: started in a group of their own, stopped by that group ---------------------------


def start_process(args: list[str], *, env: dict[str, str], log: IO) -> subprocess.Popen:
    """Start ``args`` in a new session, and so a new process group whose id is its pid, and
    record that group in FLEX_CI_PIDS_DIR when it is set."""
    process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    if PIDS_DIR:
        (Path(PIDS_DIR) / str(process.pid)).write_text(shlex.join(args) + "\n")
    return process


def exit_status(process: subprocess.Popen) -> int | None:
    """The exit status (negative: the signal) once the process has ended, else None, without
    reaping it: until it is reaped its pid, and so its group id, cannot be reused, so the group
    can still be signalled without any risk of reaching someone else's processes."""
    if process.returncode is not None:
        return process.returncode
    info = os.waitid(os.P_PID, process.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    if info is None:
        return None
    return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status


def signal_group(process: subprocess.Popen, sig: int) -> None:
    if process.returncode is None:  # not reaped yet: the group id is still this process's
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)


def stop_process(process: subprocess.Popen, grace: float = 20.0) -> None:
    """SIGTERM the process group, wait up to ``grace`` seconds for its leader, SIGKILL whatever
    is left of the group, reap the leader and drop the record."""
    signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while exit_status(process) is None and time.monotonic() < deadline:
        time.sleep(0.05)
    signal_group(process, signal.SIGKILL)
    process.wait(timeout=grace)
    forget_process(process)


def forget_process(process: subprocess.Popen) -> None:
    if PIDS_DIR:
        (Path(PIDS_DIR) / str(process.pid)).unlink(missing_ok=True)


def redis_glob_escape(text: str) -> str:
    """``text`` matched literally in a Redis SCAN MATCH pattern."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


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
    process = start_process(
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
        env={**os.environ, "REDIS_URL": redis_url},
        log=log,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if (status := exit_status(process)) is not None:
                pytest.fail(f"The Celery worker exited with {status}; see test-output/celery-worker.log")
            if app.control.ping(timeout=1.0):
                break
        else:
            pytest.fail("The Celery worker did not answer a ping within 60 s")
        yield process
    finally:
        stop_process(process)
        log.close()


@pytest.fixture
def real_worker(celery_worker_process):
    """Send tasks to the worker instead of running them in-process."""
    from flexadmin.celery import app

    app.conf.task_always_eager = False
    yield celery_worker_process
    app.conf.task_always_eager = True


# --- Workers and beat on the test database ---------------------------------------------------------


def test_database_url() -> str:
    """The URL of the database this test uses (pytest-django's test_… database), for
    processes started by the test: they must see the rows it commits."""
    from django.db import connection

    db = connection.settings_dict
    if connection.vendor != "postgresql":
        pytest.skip(
            f"A worker process needs a database it can share with the test; DATABASE_URL points at {connection.vendor}."
            " Run with DATABASE_URL=postgres://... (CI does, with FLEX_REQUIRE_SERVICES=1)."
        )
    auth = db["USER"] or ""
    if db.get("PASSWORD"):
        auth += f":{db['PASSWORD']}"
    host = f"{db['HOST'] or 'localhost'}:{db['PORT'] or 5432}"
    return f"postgres://{auth}@{host}/{db['NAME']}"


class CeleryProcesses:
    """Celery workers and beat as real processes, on a queue of their own and the test's
    database. A queue per test keeps them apart from the session's worker
    (``celery_worker_process``) and from anything a killed worker left behind."""

    def __init__(self, redis_url: str, tmp: Path) -> None:
        self.queue = f"flex-test-{uuid.uuid4().hex[:10]}"
        self.tmp = tmp
        self.mail_dir = tmp / "mail"
        self.mail_dir.mkdir()
        self.redis_url = redis_url
        self.env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "DATABASE_URL": test_database_url(),
            "FLEX_CELERY_QUEUE": self.queue,
            # E-mails the worker sends land in files the test can read.
            "EMAIL_URL": f"filemail:///{self.mail_dir}",  # three slashes and an absolute path
        }
        self.processes: dict[str, subprocess.Popen] = {}
        self.logs: list = []
        (ROOT / "test-output").mkdir(exist_ok=True)

    def _start(self, name: str, args: list[str], env: dict[str, str] | None) -> subprocess.Popen:
        log = open(ROOT / "test-output" / f"celery-{name}.log", "w")  # noqa: SIM115 (closed in stop)
        self.logs.append(log)
        # Its own process group: a signal reaches all of it, and nothing else.
        process = start_process([sys.executable, "-m", "celery", *args], env={**self.env, **(env or {})}, log=log)
        self.processes[name] = process
        return process

    def start_worker(self, name: str = "worker", env: dict[str, str] | None = None) -> subprocess.Popen:
        from flexadmin.celery import app

        hostname = f"{name}-{self.queue}@localhost"
        process = self._start(
            name,
            [
                *("-A", "flexadmin", "worker", "--pool=solo", "-l", "info", "-n", hostname),
                *("--without-gossip", "--without-mingle", "--without-heartbeat"),
            ],
            env,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if (status := exit_status(process)) is not None:
                pytest.fail(f"The Celery worker exited with {status}; see test-output/celery-{name}.log")
            if app.control.ping(destination=[hostname], timeout=1.0):
                return process
        pytest.fail(f"The Celery worker {name} did not answer a ping within 60 s")

    def start_beat(self, every: float = 1.0) -> subprocess.Popen:
        """Beat with the production schedule (settings.CELERY_BEAT_SCHEDULE), every entry
        due every ``every`` seconds (tests/services/fast_beat.py)."""
        return self._start(
            "beat",
            [
                *("-A", "tests.services.fast_beat", "beat", "-l", "info"),
                *("-s", str(self.tmp / "beat-schedule"), "--max-interval", "1"),
            ],
            {"FLEX_TEST_BEAT_EVERY": str(every)},
        )

    def kill(self, name: str) -> None:
        """SIGKILL: no clean shutdown, no acknowledgement, nothing handed back."""
        process = self.processes.pop(name)
        signal_group(process, signal.SIGKILL)
        process.wait(timeout=20)
        forget_process(process)

    def stop(self, name: str) -> None:
        stop_process(self.processes.pop(name))

    def emails(self) -> list[str]:
        return [path.read_text() for path in sorted(self.mail_dir.iterdir())]

    def close(self) -> None:
        for name in list(self.processes):
            self.stop(name)
        for log in self.logs:
            log.close()
        import redis

        # The queue, its priority lists and kombu's bindings for it, all under this
        # installation's FLEX_REDIS_PREFIX (settings: kombu's global_keyprefix).
        client = redis.Redis.from_url(self.redis_url)
        pattern = f"{redis_glob_escape(settings.FLEX_REDIS_PREFIX)}*{redis_glob_escape(self.queue)}*"
        keys = list(client.scan_iter(match=pattern, count=1000))
        if keys:
            client.delete(*keys)


@pytest.fixture
def celery_processes(transactional_db, django_db_serialized_rollback, redis_url, tmp_path):
    """Start workers and beat with ``celery_processes.start_worker()`` / ``.start_beat()``;
    tasks this test sends (``.delay()``, ``enqueue_on_commit``) go to their queue.

    The test's rows must be committed for another process to see them (transactional_db);
    the serialized rollback puts back the rate sheet the flush at the end removes.
    """
    from flexadmin.celery import app

    processes = CeleryProcesses(redis_url, tmp_path)
    saved = app.conf.task_always_eager, app.conf.task_default_queue
    app.conf.task_always_eager = False
    app.conf.task_default_queue = processes.queue
    try:
        yield processes
    finally:
        # Stopped before the database is flushed: no worker may hold a connection then.
        processes.close()
        app.conf.task_always_eager, app.conf.task_default_queue = saved
