"""Four writer processes and two readers on one database: no lost row, no lock error.

Each writer is a whole search as the driver sees it: its own study, one ``add_trial`` per
finished trial and a ``set_pareto`` (recomputed front) after every completed one. Readers
loop over ``front``/``trials``/``studies`` meanwhile and check what they see is consistent.
SQLite must hold too (WAL, BEGIN IMMEDIATE, 30 s busy timeout), and it warns a second search.
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import time
from concurrent.futures import ProcessPoolExecutor

from autopeft.front import front_trials
from autopeft.store import Store

WRITERS = 4
TRIALS = 200
READERS = 2
OBJECTIVES = [("accuracy", "maximize"), ("trainable_params", "minimize"),
              ("peak_memory_bytes", "minimize")]
STATUSES = ("completed", "completed", "completed", "failed", "oom")


def _create(store: Store, name: str, **settings) -> None:
    store.create_study(name, task="glue/rte", model="m", space_name="s", space={}, budget={},
                       hardware={}, settings=settings, objectives=OBJECTIVES)


def _writer(url: str, name: str, seed: int) -> dict:
    """One search's writes: returns what it wrote."""
    import random

    rng = random.Random(seed)
    store = Store(url)
    _create(store, name)
    written = {"completed": 0, "other": 0}
    for _ in range(TRIALS):
        number = store.next_trial_number(name)
        status = STATUSES[rng.randrange(len(STATUSES))]
        done = status == "completed"
        store.add_trial(name, number=number, method="lora", params={"r": rng.choice([4, 8])},
                        learning_rate=1e-3, status=status,
                        primary_metric=rng.uniform(0.5, 0.9) if done else None,
                        metrics={"accuracy": 0.7}, trainable_params=rng.randrange(1000, 10**6),
                        peak_memory_bytes=rng.randrange(10**8, 10**9) if done else None)
        written["completed" if done else "other"] += 1
        if done:
            store.set_pareto(name, [t.number for t in front_trials(store, name)])
    store.set_study_status(name, "finished", finished=True)
    store.close()
    return written


def _reader(url: str, names: list[str], deadline: float) -> int:
    """Read until every study is finished; returns the rounds that saw writes under way."""
    store = Store(url)
    seen = dict.fromkeys(names, 0)
    during = 0
    while time.monotonic() < deadline:
        studies = {s.name: s for s in store.list_studies()}
        for name in names:
            if name not in studies:
                continue
            front = {t.number for t in front_trials(store, name)}
            trials = store.trials(name)
            numbers = [t.number for t in trials]
            # Committed rows only, never fewer than before, never a gap or a duplicate.
            assert numbers == list(range(len(numbers))), numbers
            assert len(numbers) >= seen[name]
            seen[name] = len(numbers)
            done = {t.number for t in trials if t.status == "completed"}
            assert front <= done, (front, done)
        finished = [s.status == "finished" for s in studies.values()]
        if len(studies) == len(names) and all(finished):
            store.close()
            return during
        during += 1
    raise AssertionError(f"studies not finished before the deadline: {seen}")


def test_four_writers_and_two_readers_lose_nothing(store_url):
    Store(store_url).close()  # migrate once, up front
    names = [f"search-{i}" for i in range(WRITERS)]
    deadline = time.monotonic() + 240
    ctx = multiprocessing.get_context("spawn")  # no forked engines or sockets
    with ProcessPoolExecutor(WRITERS + READERS, mp_context=ctx) as pool:
        readers = [pool.submit(_reader, store_url, names, deadline) for _ in range(READERS)]
        writers = [pool.submit(_writer, store_url, name, i) for i, name in enumerate(names)]
        written = [w.result(timeout=300) for w in writers]  # re-raises a writer's error
        during = [r.result(timeout=300) for r in readers]
    assert sum(during) >= 2, during  # the readers really read while the writers wrote

    with Store(store_url) as store:
        summaries = {s.name: s for s in store.list_studies()}
        for name, wrote in zip(names, written, strict=True):
            trials = store.trials(name)
            assert [t.number for t in trials] == list(range(TRIALS))
            assert summaries[name].n_trials == TRIALS
            assert summaries[name].n_completed == wrote["completed"]
            assert summaries[name].status == "finished"
            # The flags the last set_pareto wrote equal the recomputed front.
            flagged = [t.number for t in trials if t.is_pareto]
            assert flagged == sorted(t.number for t in front_trials(store, name))


def test_sqlite_warns_when_another_search_is_running(store_url):
    ctx = multiprocessing.get_context("spawn")
    gone = ctx.Process(target=time.sleep, args=(0,))
    gone.start()
    gone.join()
    with Store(store_url) as store:
        _create(store, "alive", controller_host=socket.gethostname(),
                controller_pid=os.getpid())
        _create(store, "crashed", controller_host=socket.gethostname(), controller_pid=gone.pid)
        _create(store, "elsewhere", controller_host="another-host", controller_pid=1)
        _create(store, "done")
        store.set_study_status("done", "finished", finished=True)

        running = [s.name for s in store.running_studies()]
        assert running == ["alive", "elsewhere"]  # a dead controller on this host is stale
        assert [s.name for s in store.running_studies(exclude="alive")] == ["elsewhere"]

        warning = store.concurrency_warning()
        if store_url.startswith("sqlite"):
            assert warning is not None
            assert "'alive', 'elsewhere'" in warning and "PostgreSQL" in warning
            assert "--storage postgresql://" in warning
        else:
            assert warning is None  # PostgreSQL takes several searches at once
        for name in ("alive", "elsewhere"):
            store.set_study_status(name, "finished", finished=True)
        assert store.running_studies() == [] and store.concurrency_warning() is None
