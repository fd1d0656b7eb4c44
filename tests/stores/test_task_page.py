"""``get_task_page`` on every store: the SQL override (one page's query) and the default
(filtering every task) give the same pages as filtering ``get_all_tasks`` by hand."""

from __future__ import annotations

from datetime import timedelta

import pytest
from storetest_funcs import NOW, make_task

from tickwork.exceptions import ConfigurationError
from tickwork.stores import BaseStore

IDS = ["Alpha", "alpha_2", "beta", "beta%1", "gamma", "delta", "ALPHABET"]


def fill(store: BaseStore) -> None:
    for index, task_id in enumerate(IDS):
        # Every third task paused; the others due one minute apart, in reverse order.
        when = None if index % 3 == 2 else NOW + timedelta(minutes=len(IDS) - index)
        store.add_task(make_task(task_id, when))


def by_hand(
    store: BaseStore, search: str, paused: bool | None, offset: int, limit: int
) -> tuple[list[str], int]:
    matching = [
        task.id
        for task in store.get_all_tasks()
        if search.casefold() in task.id.casefold()
        and (paused is None or (task.next_run_time is None) == paused)
    ]
    return matching[offset : offset + limit], len(matching)


@pytest.mark.parametrize(
    ("search", "paused", "offset", "limit"),
    [
        ("", None, 0, 50),
        ("", None, 2, 3),
        ("", None, 6, 5),
        ("", None, 50, 5),
        ("alpha", None, 0, 50),
        ("ALPHA", None, 1, 1),
        ("%", None, 0, 50),  # LIKE's wildcards are text here
        ("_", None, 0, 50),
        ("a_2", None, 0, 50),
        ("", True, 0, 50),
        ("", False, 1, 2),
        ("e", False, 0, 50),
        ("nothing", None, 0, 50),
    ],
)
def test_pages_match_the_full_listing(
    store: BaseStore, search: str, paused: bool | None, offset: int, limit: int
) -> None:
    fill(store)
    tasks, total = store.get_task_page(search, paused, offset, limit)
    assert ([task.id for task in tasks], total) == by_hand(store, search, paused, offset, limit)
    assert all(task.store_alias == "default" for task in tasks)


def test_expected_pages_spelled_out(store: BaseStore) -> None:
    fill(store)
    tasks, total = store.get_task_page("alpha")
    assert total == 3
    assert [task.id for task in tasks] == ["ALPHABET", "alpha_2", "Alpha"]  # by next run
    paused, count = store.get_task_page(paused=True)
    assert (sorted(task.id for task in paused), count) == (["beta", "delta"], 2)
    wildcard, count = store.get_task_page("%")
    assert ([task.id for task in wildcard], count) == (["beta%1"], 1)


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"offset": -1}, "offset"),
        ({"limit": 0}, "limit"),
        ({"limit": True}, "limit"),
        ({"paused": "yes"}, "paused"),
        ({"search": None}, "search"),
    ],
)
def test_bad_page_values_are_refused_by_name(
    store: BaseStore, options: dict[str, object], name: str
) -> None:
    with pytest.raises(ConfigurationError, match=name):
        store.get_task_page(**options)  # type: ignore[arg-type]
