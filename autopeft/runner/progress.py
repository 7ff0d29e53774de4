"""Live progress of one trial, for whoever watches the search (not for the database).

:class:`TrialProgress` tells nobody: ``run_trial`` without a watcher (tests, benchmarks, a
plain call) pays nothing. :class:`Reporter` turns the same calls into small dict messages
handed to ``send`` (the controller passes a Ray channel to the driver):

* ``start`` when the trial begins (before the model is built), ``eval`` after an
  intermediate dev evaluation, ``end`` with the trial's status: always sent;
* ``step`` at most once per ``interval`` seconds, however fast the steps come.

Every message is a snapshot of what is known so far (the fixed ``fields`` such as the trial
number and method, the step and total, steps per second since the previous message, the
last dev metric, current and peak memory), so a watcher that missed some still shows the
truth. A ``send`` that raises (the driver is gone) silences the reporter; it never fails the
trial.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

Message = dict[str, Any]
MemoryReader = Callable[[], tuple[int, int]]  # () -> (current bytes, peak bytes)


class TrialProgress:
    """What a running trial tells about itself; this base tells nobody."""

    def start(self) -> None:
        """The trial began (loading the model)."""

    def measure(self, memory: MemoryReader) -> None:
        """Read (current, peak) memory from ``memory`` whenever a message goes out."""

    def step(self, step: int, total: int) -> None:
        """Optimizer step ``step`` of ``total`` is done."""

    def evaluated(self, step: int, metric: float | None) -> None:
        """An intermediate dev evaluation at ``step`` gave ``metric`` (the primary one)."""

    def evaluating(self) -> None:
        """Training is over; the final dev evaluation runs."""

    def finished(self, status: str, metric: float | None, steps: int | None) -> None:
        """The trial ended with ``status``."""


class Reporter(TrialProgress):
    """Sends progress messages through ``send``, throttling step messages to one per
    ``interval`` seconds of ``clock``.

    Args:
        send: Hands one message on (must not block for long: it runs in the training loop).
        fields: Sent with every message (trial number, method, predicted memory, ...).
        interval: Least seconds between two ``step`` messages.
        clock: Monotonic seconds (tests pass a fake one).
    """

    def __init__(self, send: Callable[[Message], Any], fields: dict[str, Any] | None = None,
                 *, interval: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._send: Callable[[Message], Any] | None = send
        self.fields = dict(fields or {})
        self.interval = interval
        self.clock = clock
        self.memory: MemoryReader | None = None
        self.state: dict[str, Any] = {"phase": "loading", "step": 0, "total_steps": None,
                                      "steps_per_s": None, "metric": None}
        self._last_sent: float | None = None
        self._window = (clock(), 0)  # (time, step) where the steps/s window starts

    def _emit(self, kind: str, **extra: Any) -> None:
        now = self.clock()
        self._last_sent = now
        if self._send is None:
            return
        message = {"kind": kind, **self.fields, **self.state, **extra}
        if self.memory is not None:
            try:
                message["memory_bytes"], message["peak_bytes"] = self.memory()
            except Exception:  # noqa: BLE001 - a meter hiccup costs the reading, not the trial
                pass
        try:
            self._send(message)
        except Exception as exc:  # noqa: BLE001 - a gone watcher must not fail the trial
            log.debug("progress channel failed (%s); this trial reports no more progress", exc)
            self._send = None

    def start(self) -> None:
        self._window = (self.clock(), 0)
        self._emit("start")

    def measure(self, memory: MemoryReader) -> None:
        self.memory = memory

    def step(self, step: int, total: int) -> None:
        self.state.update(step=step, total_steps=total, phase="training")
        now = self.clock()
        if self._last_sent is not None and now - self._last_sent < self.interval:
            return
        t0, s0 = self._window
        if now > t0 and step > s0:
            self.state["steps_per_s"] = (step - s0) / (now - t0)
        self._window = (now, step)
        self._emit("step")

    def evaluated(self, step: int, metric: float | None) -> None:
        self.state.update(step=step, metric=metric)
        self._emit("eval")
        self._window = (self.clock(), step)  # evaluation time is no training time

    def evaluating(self) -> None:
        self.state["phase"] = "evaluating"
        self._emit("step")

    def finished(self, status: str, metric: float | None, steps: int | None) -> None:
        self.state.update(phase="done", metric=metric if metric is not None
                          else self.state["metric"])
        if steps is not None:
            self.state["step"] = steps
        self._emit("end", status=str(status))
