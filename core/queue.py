"""Sending Celery tasks from a service without ever failing it."""

from __future__ import annotations

import logging

from celery import Task, current_app
from django.db import transaction
from kombu.exceptions import KombuError

logger = logging.getLogger(__name__)


def enqueue_on_commit(task: Task | str, *args: object) -> None:
    """Send ``task`` (a task, or a task's registered name) once the current transaction
    commits, never failing the caller.

    A name lets a module send a task defined in a module that imports it (a service
    asking for the job that builds on it) without an import cycle. A broker that is down
    must not turn a saved change into an error page: the publish is tried once with short
    timeouts, and a failure is logged for the schedule or a person (e.g. "Resend
    invitation") to pick up. Without a broker (``task_always_eager``) the task runs
    in-process after the commit.
    """

    def publish() -> None:
        # By name: the task registered under it (each app's ready() imports its tasks),
        # so a misspelt name fails loudly instead of going to a queue nobody reads.
        signature = (current_app.tasks[task] if isinstance(task, str) else task).s()
        try:
            signature.apply_async(args=args, retry=False)
        except (KombuError, OSError):  # the broker is unreachable; the change itself is saved
            logger.warning("Could not enqueue %s%r; it will be picked up later", signature.task, args, exc_info=True)
        except Exception:  # run in-process (no broker) and failed: logged, never the caller's error
            logger.exception("%s%r failed in-process; the change itself is saved", signature.task, args)

    transaction.on_commit(publish)
