"""Helpers for tests that start real processes and servers: a free loopback port, a Celery worker command."""

from __future__ import annotations

import socket
import sys


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def celery_worker_argv(*, queues: str, pool: str = "solo", concurrency: int | None = None) -> list[str]:
    """The command line of a real Celery worker of this project (no gossip or mingle: tests start one at a time)."""
    argv = [sys.executable, "-m", "celery", "-A", "brightrun", "worker", "--pool", pool]
    if concurrency is not None:
        argv += ["--concurrency", str(concurrency)]
    return [*argv, "--queues", queues, "--loglevel", "INFO", "--without-gossip", "--without-mingle"]
