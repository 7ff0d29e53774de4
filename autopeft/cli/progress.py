"""What ``autopeft search`` shows while trials run: a live rich display, or plain lines.

Both read one :class:`SearchState`, built from the progress messages of
:mod:`autopeft.runner.progress` (trial ``start`` / ``step`` / ``eval`` / ``end``) and of the
driver (``search`` first, ``stored`` per stored trial):

* :class:`LiveDisplay` (a terminal): the whole search (trials done of total, elapsed, ETA) over
  a table of the running trials (method, step of total, steps/s, last dev metric, memory now,
  peak and predicted), redrawn twice a second; the driver's lines print above it.
* :class:`PlainDisplay` (CI logs, ``ray job logs``): one line when a trial starts, one per
  running trial at most every ``every`` seconds; the end line is the driver's own.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

Message = dict[str, Any]


def fmt_bytes(n: float | None) -> str:
    if n is None:
        return "-"
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    s = int(round(seconds))
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60}:{rest % 60:02d}"


def _fmt_metric(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _fmt_rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _fmt_steps(t: Message) -> str:
    if t.get("phase") == "loading":
        return "loading"
    steps = f"{t.get('step', 0)}/{t['total_steps']}" if t.get("total_steps") else str(
        t.get("step", 0))
    return f"{steps} eval" if t.get("phase") == "evaluating" else steps


class SearchState:
    """The search as the messages so far tell it (not thread-safe: displays lock)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.study = ""
        self.metric = "metric"
        self.total = 0
        self.done = 0
        self.started_at: float | None = None
        self.running: dict[int, Message] = {}
        self.finished: set[int] = set()

    def apply(self, msg: Message) -> Message | None:
        """Take one message in; returns the trial's merged state (None for search news or a
        late message about a trial that ended)."""
        kind = msg.get("kind")
        if kind == "search":
            self.study, self.total = msg.get("study", ""), int(msg.get("total") or 0)
            self.metric = msg.get("metric") or self.metric
            self.started_at = self.clock()
            return None
        number = msg.get("trial")
        if number is None or number in self.finished:
            return None  # a trial's last messages can arrive after it was stored
        if kind == "stored":
            self.finished.add(number)
            self.done += 1
            return self.running.pop(number, None) or dict(msg)
        trial = self.running.setdefault(number, {})
        trial.update({k: v for k, v in msg.items() if v is not None or k not in trial})
        return trial

    def fraction(self) -> float:
        """Trials' worth done: stored ones plus the running ones' share of their steps."""
        part = sum(min(1.0, t["step"] / t["total_steps"]) for t in self.running.values()
                   if t.get("total_steps") and t.get("step"))
        return self.done + part

    def elapsed(self) -> float:
        return 0.0 if self.started_at is None else self.clock() - self.started_at

    def eta(self) -> float | None:
        """Seconds left at the pace so far (None before any progress)."""
        units = self.fraction()
        if not units or not self.total:
            return None
        return max(0.0, self.elapsed() * (self.total - units) / units)


class LiveDisplay:
    """A rich live view of the search on ``console``; start it with ``with``.

    The live region appears with the first ``search`` message; ``say`` prints a line
    above it (or plainly before and after).
    """

    def __init__(self, console: Console | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.console = console or Console()
        self.state = SearchState(clock)
        self._lock = threading.RLock()
        self._live: Live | None = None

    def __getstate__(self) -> dict:
        # Tune pickles its callbacks and searcher, which hold our ``say`` and ``handle``, into
        # the experiment folder; that copy never runs, so it keeps nothing live (locks, tty).
        return {}

    def __enter__(self) -> LiveDisplay:
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            live, self._live = self._live, None
        if live is not None:
            live.stop()

    def say(self, line: str) -> None:
        self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def handle(self, msg: Message) -> None:
        with self._lock:
            self.state.apply(msg)
            live = None
            if msg.get("kind") == "search" and self._live is None:
                live = self._live = Live(console=self.console, refresh_per_second=2,
                                         get_renderable=self._locked_render)
        if live is not None:
            live.start()  # outside the lock: it renders at once, through _locked_render

    def _locked_render(self) -> Group:
        with self._lock:
            return self.render()

    def render(self) -> Group:
        s = self.state
        head = Table.grid(padding=(0, 1))
        head.add_row(
            Text(f"search {s.study}", style="bold"),
            ProgressBar(total=max(s.total, 1), completed=s.fraction(), width=30),
            Text(f"{s.done}/{s.total} trials  {fmt_duration(s.elapsed())} elapsed  "
                 f"ETA {fmt_duration(s.eta())}"),
        )
        table = Table(box=None, padding=(0, 1), header_style="bold")
        for name, justify in (("trial", "right"), ("method", "left"), ("step", "right"),
                              ("steps/s", "right"), (s.metric, "right"), ("memory", "right"),
                              ("peak", "right"), ("predicted", "right")):
            table.add_column(name, justify=justify, no_wrap=True)
        for number, t in sorted(self.state.running.items()):
            table.add_row(str(number), str(t.get("method", "?")), _fmt_steps(t),
                          _fmt_rate(t.get("steps_per_s")), _fmt_metric(t.get("metric")),
                          fmt_bytes(t.get("memory_bytes")), fmt_bytes(t.get("peak_bytes")),
                          fmt_bytes(t.get("predicted_bytes")))
        return Group(head, table) if s.running else Group(head)


class PlainDisplay:
    """Plain progress lines through ``write``: a trial's start, then at most one line per
    ``every`` seconds while it runs."""

    def __init__(self, write: Callable[[str], None] | None = None, *, every: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.write = write or (lambda line: print(line, flush=True))
        self.every = every
        self.clock = clock
        self.state = SearchState(clock)
        self._last: dict[int, float] = {}
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        # Tune pickles its callbacks and searcher, which hold our ``say`` and ``handle``, into
        # the experiment folder; that copy never runs, so it keeps nothing live (locks, tty).
        return {}

    def __enter__(self) -> PlainDisplay:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def say(self, line: str) -> None:
        self.write(line)

    def handle(self, msg: Message) -> None:
        with self._lock:
            trial = self.state.apply(msg)
            kind = msg.get("kind")
            if trial is None or kind in ("stored", "end"):  # the driver writes the end line
                self._last.pop(msg.get("trial"), None)
                return
            number, now = msg["trial"], self.clock()
            if kind == "start":
                self._last[number] = now
                line = (f"trial {number} started: {trial.get('method', '?')}"
                        f" lr={trial.get('learning_rate') or 0:.1e}")
                if trial.get("predicted_bytes"):
                    line += f" (predicted {fmt_bytes(trial['predicted_bytes'])})"
            elif now - self._last.get(number, now - self.every) >= self.every:
                self._last[number] = now
                line = (f"trial {number} {trial.get('method', '?')}: step {_fmt_steps(trial)}"
                        f", {_fmt_rate(trial.get('steps_per_s'))} steps/s, "
                        f"{self.state.metric}={_fmt_metric(trial.get('metric'))}, memory "
                        f"{fmt_bytes(trial.get('memory_bytes'))} (peak "
                        f"{fmt_bytes(trial.get('peak_bytes'))}, predicted "
                        f"{fmt_bytes(trial.get('predicted_bytes'))})")
            else:
                return
        self.write(line)


def make_display(mode: str, *, every: float = 30.0, stream: Any = None) -> Any:
    """The display ``--progress`` asks for (None for ``off``): ``auto`` is live on a
    terminal and plain otherwise."""
    stream = stream or sys.stdout
    if mode == "off":
        return None
    if mode == "live" or (mode == "auto" and stream.isatty()):
        return LiveDisplay(Console(file=stream))
    return PlainDisplay(lambda line: print(line, file=stream, flush=True), every=every)
