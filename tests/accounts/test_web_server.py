"""The production web server: gunicorn with the project's gunicorn.conf.py serves the app and
its static files (whitenoise), as `make run` and the Procfile start it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str) -> tuple[int, bytes, dict]:
    with urllib.request.urlopen(url, timeout=5) as response:
        return response.status, response.read(), dict(response.headers)


@pytest.fixture
def gunicorn(tmp_path):
    port = _free_port()
    env = {
        **os.environ,
        "DEBUG": "1",  # static files from the finders: the test needs no collectstatic
        "SECRET_KEY": "test-only",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "WEB_CONCURRENCY": "1",
        "WEB_THREADS": "2",
    }
    env.pop("REDIS_URL", None)
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "flexadmin.wsgi", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group: stopped exactly, workers included
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                _get(f"{base}/healthz")
                break
            except OSError:
                if process.poll() is not None:
                    break
                time.sleep(0.1)
        yield base, process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            print(process.communicate(timeout=30)[0].decode())


def test_gunicorn_serves_the_app_and_its_static_files(gunicorn):
    base, process = gunicorn
    assert process.poll() is None, "gunicorn did not start"
    status, body, _ = _get(f"{base}/healthz")
    assert (status, body) == (200, b"ok")
    status, body, headers = _get(f"{base}/static/css/portal.css")
    assert status == 200 and b".report-chart" in body
    assert headers["Content-Type"].startswith("text/css")


def test_gunicorn_runs_threaded_workers_from_the_projects_config(gunicorn):
    base, process = gunicorn
    _get(f"{base}/healthz")
    os.killpg(process.pid, signal.SIGTERM)
    output = process.communicate(timeout=30)[0].decode()
    assert "Using worker: gthread" in output
    assert "Control socket" not in output  # none: two installations on one machine would share it
    assert '"GET /healthz HTTP/1.1" 200' in output  # the access log goes to the output
