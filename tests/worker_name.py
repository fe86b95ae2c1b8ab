"""Airflow's hostname_callable for tests/test_celery.py: the two Celery workers run on one
machine, so each names itself (LIFECYCLE_WORKER_NAME) and task instances record which one ran them."""

from __future__ import annotations

import os
import socket


def hostname() -> str:
    return os.environ.get("LIFECYCLE_WORKER_NAME") or socket.getfqdn()
