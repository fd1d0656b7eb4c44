"""Run-log fixtures: one parametrised ``log`` for every backend.

A new backend is one more entry in ``LOGS`` and one more branch in
:func:`run_log_support.open_log`. Server-backed logs carry their
``external_service`` marker; each test gets a fresh directory, table or key prefix.
``make_log`` opens any number of logs on that *same* location (how persistence and
sharing are tested); ``log_spec`` describes it, for writer processes.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import servers
from run_log_support import LogSpec, MakeLog, open_log

from tickwork.runs.base import RunLog
from tickwork.runs.memory import MemoryRunLog

LOGS = [
    pytest.param("memory", id="memory"),
    pytest.param("file", id="file"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.external_service("postgresql")),
    pytest.param("mariadb", id="mariadb", marks=pytest.mark.external_service("mariadb")),
    pytest.param("redis", id="redis", marks=pytest.mark.external_service("redis")),
]


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A PostgreSQL database of its own for this test session."""
    with servers.temporary_database("postgresql") as url:
        yield url


@pytest.fixture(scope="session")
def mariadb_database() -> Iterator[str]:
    """A MariaDB database of its own for this test session."""
    with servers.temporary_database("mariadb") as url:
        yield url


@pytest.fixture
def log_spec(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[LogSpec]:
    """A fresh location for a log of the kind the test is parametrised with."""
    kind: str = request.param
    table = f"runs_{uuid.uuid4().hex[:10]}"
    if kind in ("memory", "file"):
        yield LogSpec(kind, directory=str(tmp_path / "runs"))
    elif kind == "sqlite":
        yield LogSpec(kind, url=f"sqlite:///{tmp_path / 'runs.sqlite'}", table=table)
    elif kind in ("postgresql", "mariadb"):
        fixture = "postgres_database" if kind == "postgresql" else "mariadb_database"
        yield LogSpec(kind, url=request.getfixturevalue(fixture), table=table)
    elif kind == "redis":
        url = servers.redis_url()
        with servers.redis_prefix() as prefix:
            yield LogSpec(kind, url=url, prefix=prefix)
    else:  # pragma: no cover - a typo in LOGS
        raise ValueError(kind)


@pytest.fixture
def make_log(log_spec: LogSpec) -> Iterator[MakeLog]:
    """Opens logs on one location (memory: the same object each time); closes them all."""
    with contextlib.ExitStack() as stack:
        if log_spec.kind == "memory":
            shared = MemoryRunLog()
            stack.callback(shared.close)
            yield lambda: shared
        else:
            yield lambda: stack.enter_context(open_log(log_spec))


@pytest.fixture
def log(make_log: MakeLog) -> RunLog:
    """A log of each backend, on a fresh location."""
    return make_log()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``log_spec`` goes over every backend of ``LOGS``, or over those a test module
    names (``LOG_KINDS = SHARED``, say; see :mod:`run_log_support`)."""
    if "log_spec" in metafunc.fixturenames:
        kinds = getattr(metafunc.module, "LOG_KINDS", None)
        params = [p for p in LOGS if kinds is None or p.values[0] in kinds]
        metafunc.parametrize("log_spec", params, indirect=True)
