"""How gunicorn serves FlexAdmin: `gunicorn flexadmin.wsgi` reads this file from the working
directory (`make run`, the Procfile and docs/operations.md all start it that way). Each value
can be overridden on the command line or through the environment variables named below.

Why these values (docs/operations.md has the longer reasoning):

- Threaded workers (``gthread``). A request that waits on the database (a team's charging lock,
  a report) leaves the worker's other threads serving. And the worker's timeout watches the
  worker process, not one request: a long export, streamed row by row, is not killed halfway
  (a million-row XLSX takes over a minute to write).
- Workers: one per core plus one (``WEB_CONCURRENCY``), eight threads each (``WEB_THREADS``):
  a single-event call waits in its thread while its team's group commit charges it, so more
  threads let more calls of a team join one charging transaction (1 team, 16 clients on 2
  cores: 134 events/s with 8 threads against 86 with 4, docs/benchmarks.md).
  Every thread keeps its own database connection for ``FLEX_DB_CONN_MAX_AGE`` seconds, so a
  host holds at most workers x threads connections: size PostgreSQL's ``max_connections`` (or a
  pooler) for the number of hosts.
- Timeouts: a worker silent for 30 s is restarted; on a restart or deploy, requests in flight
  get 30 s to finish; idle keep-alive connections are closed after 5 s (a proxy in front
  reconnects cheaply).
- Each worker is replaced after about 2,000 requests, so that slow memory growth never builds up.
"""

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", min(multiprocessing.cpu_count() + 1, 8)))
threads = int(os.environ.get("WEB_THREADS", 8))
timeout = int(os.environ.get("WEB_TIMEOUT", 30))
graceful_timeout = 30
keepalive = 5
max_requests = 2000
max_requests_jitter = 200
# Logs to the process's output, where the process manager collects them.
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("WEB_LOG_LEVEL", "info")
# No runtime control socket: its default path is one per machine user, which two installations
# (or CI runs) on one machine would share. Restarts go through the process manager's signals.
control_socket_disable = True
