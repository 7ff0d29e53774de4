"""Store.trial_page and Store.get_trial: pages, filters and cursor agree with Store.trials."""

from __future__ import annotations

import pytest

from autopeft.errors import AutopeftError
from autopeft.store import Store


@pytest.fixture
def store(store_url):
    with Store(store_url) as s:
        s.create_study("s", task="glue/rte", model="m", space_name="q", space={}, budget={},
                       hardware={}, settings={},
                       objectives=[("accuracy", "maximize"), ("trainable_params", "minimize")])
        for n in range(23):
            s.add_trial("s", number=n, method=("lora", "ia3")[n % 2], params={},
                        learning_rate=None, status=("completed", "failed", "oom")[n % 3],
                        primary_metric=0.5, metrics={}, trainable_params=n)
        yield s


def test_pages_filters_and_cursor_match_the_full_list(store):
    every = store.trials("s")
    for status in (None, "completed", "oom"):
        for method in (None, "ia3"):
            want = [t for t in every if (status is None or t.status == status)
                    and (method is None or t.method == method)]
            total, page = store.trial_page("s", status=status, method=method, limit=3, offset=2)
            assert total == len(want) and page == want[2:5]
            total, page = store.trial_page("s", status=status, method=method, after=10)
            assert total == len(want) and page == [t for t in want if t.number > 10]
    assert store.trial_page("s", limit=0) == (23, [])
    assert store.trial_page("s", offset=100) == (23, [])
    assert store.get_trial("s", 7) == every[7]
    assert store.get_trial("s", 99) is None


def test_unknown_study_or_status_is_refused(store):
    with pytest.raises(AutopeftError, match="no study named 'x'"):
        store.trial_page("x")
    with pytest.raises(AutopeftError, match="no study named 'x'"):
        store.get_trial("x", 0)
    with pytest.raises(AutopeftError, match="unknown trial status"):
        store.trial_page("s", status="bogus")
