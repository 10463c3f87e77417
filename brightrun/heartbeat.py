"""A background heartbeat for long worker bodies that cannot report progress themselves.

Builds and validations run as one long call (a streamed render, a parallel validator). A sweeper decides that
such work is dead when its row has not been touched for a while, so a live run must touch it: ``Heartbeat``
calls ``beat()`` every ``interval`` seconds on a daemon thread until the block ends. ``beat`` returns False
when the run no longer owns the row (a sweeper took it back); the heartbeat then stops and ``lost`` is True,
so the run can leave the result to the new claimant.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from types import TracebackType

from django.db import connection

logger = logging.getLogger(__name__)


class Heartbeat:
    """``with Heartbeat(beat, interval) as hb: ...`` — ``beat()`` every ``interval`` s while the block runs.

    The thread uses its own database connection and closes it when it stops. An exception in ``beat`` is
    logged and the next beat is tried (a database blip must not stop the work); only a False return stops it.
    """

    def __init__(self, beat: Callable[[], bool], interval: float, *, name: str = "heartbeat"):
        self.beat = beat
        self.interval = max(float(interval), 0.05)
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self.interval):
                try:
                    alive = self.beat()
                except Exception:  # logged; the next beat retries
                    logger.warning("%s: beat failed", self._thread.name, exc_info=True)
                    continue
                if not alive:
                    self.lost = True
                    return
        finally:
            connection.close()

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop beating and wait for the thread; after this the row is the caller's alone to finish."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
