"""Infrastructure outages seen by a request: the database dropped or unreachable.

Callers: the API's exception handler (``brightrun.api``) and ``DatabaseUnavailableMiddleware`` for pages. Both
answer 503 with the same message and code instead of a 500 and a traceback. What the request was writing is
not half-saved: services that write several rows are ``@transaction.atomic``, so a connection that drops
mid-write rolls the whole write back on the server.
"""

from __future__ import annotations

import logging
import re

from django.db import DatabaseError, InterfaceError, OperationalError, connections
from django.http import HttpRequest

logger = logging.getLogger(__name__)

DATABASE_UNAVAILABLE_CODE = "database_unavailable"
DATABASE_UNAVAILABLE_MESSAGE = (
    "The database is unavailable right now, so this request could not be completed and nothing from it was "
    "saved. Try again in a moment."
)

# ``scheme://user:password@host`` and ``password=…`` in a driver's message never reach the log.
_CREDENTIALS = re.compile(r"(://[^:/@\s]+:)[^@\s]+@|(password\s*=\s*)\S+", re.IGNORECASE)


def is_database_outage(exc: BaseException) -> bool:
    """Whether ``exc`` means the database could not be reached or dropped the connection.

    ``OperationalError`` (connection refused or terminated, server shutting down) and ``InterfaceError``
    (a connection already closed). Integrity and data errors are bugs or rule breaks, not outages.
    """
    return isinstance(exc, (OperationalError, InterfaceError))


def _summary(exc: BaseException) -> str:
    first_line = (str(exc).strip().splitlines() or [""])[0][:300]
    return _CREDENTIALS.sub(lambda m: (m.group(1) or m.group(2)) + "***" + ("@" if m.group(1) else ""), first_line)


def database_outage_record(exc: BaseException, request: HttpRequest | None = None) -> None:
    """Log the outage at WARNING (exception class and first line, credentials masked) and drop broken
    connections, so the next query of this thread reconnects instead of failing on the dead socket.

    Django also drops unusable connections when a request finishes; doing it here as well covers code that
    runs on after the error in the same thread (tests, the shell). A connection that still works is kept.
    """
    where = f"{request.method} {request.path}" if request is not None else "outside a request"
    logger.warning("database unavailable during %s: %s: %s", where, type(exc).__name__, _summary(exc))
    for connection in connections.all(initialized_only=True):
        if connection.connection is None:
            continue
        try:
            usable = connection.is_usable()
        except DatabaseError:
            usable = False
        if not usable:
            connection.close()
