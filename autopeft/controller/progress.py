"""The channel that carries live trial progress from Ray workers to the driver.

Not ``tune.report``: every report is a Tune result, and each one advances
``training_iteration``, which the ASHA scheduler uses as its time (its rungs and ``max_t``
count reports), so progress reports would move where trials are stopped; the last result is
also what the store callback keeps. Instead a small actor, the :class:`Inbox`, takes
fire-and-forget ``push`` calls from the trials (a worker never waits for it, and a push to
an inbox that is gone only fails its own, unread, reference) and the driver's
:class:`ProgressPump` drains it from a thread. Own code rather than ``ray.util.queue.Queue``
because that queue's ``put`` waits for the actor's reply (``ray.get``) on every message.

The Optuna searcher and the Tune schedulers never see these messages, nor does the database.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from autopeft.controller.ray_env import ray_environment
from autopeft.runner.progress import Message, Reporter

ray_environment()  # before ray is imported: this module is imported only to run a search

import ray  # noqa: E402

log = logging.getLogger(__name__)

INBOX_SIZE = 10_000  # messages kept when the driver falls behind (the oldest are dropped)
SEND_INTERVAL = 1.0  # least seconds between two step messages of one trial
DRAIN_INTERVAL = 0.5  # seconds between two drains by the driver


@ray.remote(num_cpus=0)
class Inbox:
    """Progress messages waiting for the driver (bounded: the oldest go first)."""

    def __init__(self, size: int = INBOX_SIZE) -> None:
        self.items: deque[Message] = deque(maxlen=size)

    def push(self, message: Message) -> None:
        self.items.append(message)

    def drain(self) -> list[Message]:
        out = list(self.items)
        self.items.clear()
        return out


def trial_reporter(inbox: Any, fields: dict[str, Any]) -> Reporter:
    """The reporter a trial in a Ray worker sends its progress through (to ``inbox``)."""

    def send(message: Message) -> None:
        inbox.push.remote(message)  # fire and forget: the reference is never awaited

    return Reporter(send, fields, interval=SEND_INTERVAL)


class ProgressPump:
    """Context manager on the driver: an :class:`Inbox` for the trials, drained into
    ``sink`` from a thread; a last drain and the inbox's end on exit.

    A failing ``sink`` or a slow inbox is logged, never raised: progress is for watching,
    and the search goes on without it.
    """

    def __init__(self, sink: Callable[[Message], None], *, every: float = DRAIN_INTERVAL) -> None:
        self.sink = sink
        self.every = every
        self.inbox = Inbox.remote()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="autopeft-progress", daemon=True)
        self._warned = False
        self._draining = threading.Lock()  # one drain at a time: messages stay in order

    def __enter__(self) -> ProgressPump:
        self._thread.start()
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        if exc_type is None:  # after Ctrl-C or an error, nobody waits for the last lines
            self.drain()
        try:
            ray.kill(self.inbox)
        except Exception:  # noqa: BLE001 - gone with its Ray already
            pass

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            self.drain()

    def drain(self) -> None:
        """Hand every message waiting in the inbox to the sink (also called by the driver
        before it tells of a stored trial, so that the trial's last messages come first)."""
        with self._draining:
            try:
                messages = ray.get(self.inbox.drain.remote(), timeout=30)
            except Exception as exc:  # noqa: BLE001 - the display must never end the search
                self._warn(exc)
                return
            for message in messages:
                self.deliver(message)

    def deliver(self, message: Message) -> None:
        """Hand one message to the sink (the driver's own, too)."""
        try:
            self.sink(message)
        except Exception as exc:  # noqa: BLE001 - the display must never end the search
            self._warn(exc)

    def _warn(self, exc: Exception) -> None:
        if not self._warned:
            log.warning("live progress failed: %s: %s", type(exc).__name__, exc)
            self._warned = True
