"""SQLAlchemyStore specifics: schema, version, index, SQLite settings, failures."""

from __future__ import annotations

from pathlib import Path

import pytest
import servers
import sqlalchemy
from storetest_funcs import NOW, at, make_task
from storetest_support import StoreMaker

from tickwork.exceptions import (
    ConfigurationError,
    ConflictIdError,
    InvalidTaskError,
    StoreUnavailableError,
)
from tickwork.stores import store_registry
from tickwork.stores.sqlalchemy import DEFAULT_URL, SCHEMA_VERSION, SQLAlchemyStore


def test_the_schema_version_is_recorded(make_sql_store: StoreMaker) -> None:
    store = make_sql_store()
    assert isinstance(store, SQLAlchemyStore)
    meta = sqlalchemy.Table(
        f"{store.tablename}_meta", sqlalchemy.MetaData(), autoload_with=store.engine
    )
    with store.engine.connect() as conn:
        rows = conn.execute(sqlalchemy.select(meta.c.key, meta.c.value)).all()
    assert [tuple(row) for row in rows] == [("schema_version", str(SCHEMA_VERSION))]


def test_next_run_time_is_indexed_and_lease_columns_exist(make_sql_store: StoreMaker) -> None:
    store = make_sql_store()
    assert isinstance(store, SQLAlchemyStore)
    inspector = sqlalchemy.inspect(store.engine)
    indexes = inspector.get_indexes(store.tablename)
    assert [index["column_names"] for index in indexes] == [["next_run_time"]]
    columns = {column["name"]: column for column in inspector.get_columns(store.tablename)}
    assert set(columns) == {
        "id",
        "next_run_time",
        "state",
        "lease_owner",
        "lease_expires",
        "leader_only",
    }
    assert not columns["leader_only"]["nullable"]
    assert columns["lease_owner"]["nullable"]
    assert columns["lease_expires"]["nullable"]
    assert inspector.get_pk_constraint(store.tablename)["constrained_columns"] == ["id"]


def test_a_newer_schema_is_refused(make_sql_store: StoreMaker) -> None:
    store = make_sql_store()
    assert isinstance(store, SQLAlchemyStore)
    meta = sqlalchemy.Table(
        f"{store.tablename}_meta", sqlalchemy.MetaData(), autoload_with=store.engine
    )
    with store.engine.begin() as conn:
        conn.execute(sqlalchemy.update(meta).values(value=str(SCHEMA_VERSION + 1)))
    with pytest.raises(ConfigurationError, match="upgrade tickwork"):
        make_sql_store()


def test_starting_twice_on_one_table_is_fine(make_sql_store: StoreMaker) -> None:
    first = make_sql_store()
    first.add_task(make_task("a"))
    second = make_sql_store()
    assert [task.id for task in second.get_all_tasks()] == ["a"]


def test_add_tasks_is_one_transaction(make_sql_store: StoreMaker) -> None:
    store = make_sql_store()
    store.add_task(make_task("t3"))
    # The conflict is found by the database, after some rows of the batch went in.
    with pytest.raises(ConflictIdError, match="'t3'"):
        store.add_tasks([make_task(f"t{index}") for index in range(6)])
    assert [task.id for task in store.get_all_tasks()] == ["t3"]


def test_ids_longer_than_the_column_are_refused(make_sql_store: StoreMaker) -> None:
    store = make_sql_store()
    with pytest.raises(InvalidTaskError, match="at most 191"):
        store.add_task(make_task("x" * 192))
    store.add_task(make_task("é" * 191))  # 191 characters, 382 bytes: fits everywhere
    assert store.lookup_task("é" * 191) is not None


def test_sqlite_uses_wal_and_a_busy_timeout(tmp_path: Path) -> None:
    store = SQLAlchemyStore(f"sqlite:///{tmp_path / 'db.sqlite'}")
    store.start("default")
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000  # io_timeout
    store.shutdown()
    store = SQLAlchemyStore(f"sqlite:///{tmp_path / 'db.sqlite'}", io_timeout=0.25)
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 250
    store.shutdown()


def test_engine_options_are_not_changed_by_the_store(tmp_path: Path) -> None:
    options = {"connect_args": {"timeout": 1}}
    store = SQLAlchemyStore(f"sqlite:///{tmp_path / 'db.sqlite'}", engine_options=options)
    assert options == {"connect_args": {"timeout": 1}}
    store.shutdown()


def test_the_default_is_a_sqlite_file_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    store = SQLAlchemyStore()
    assert DEFAULT_URL == "sqlite:///tickwork.sqlite"
    store.start("default")
    store.add_task(make_task("a"))
    store.shutdown()
    assert (tmp_path / "tickwork.sqlite").exists()


def test_in_memory_sqlite_keeps_one_database(tmp_path: Path) -> None:
    store = SQLAlchemyStore("sqlite://")
    store.start("default")
    store.add_task(make_task("a", at(-1)))
    assert [task.id for task in store.get_due_tasks(NOW)] == ["a"]
    store.shutdown()


def test_an_engine_can_be_given_and_is_not_disposed(tmp_path: Path) -> None:
    engine = sqlalchemy.create_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    with pytest.raises(ConfigurationError, match="not both"):
        SQLAlchemyStore(url="sqlite://", engine=engine)
    store = SQLAlchemyStore(engine=engine, tablename="mine")
    store.start("default")
    store.add_task(make_task("a"))
    store.shutdown()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM mine").scalar() == 1
    engine.dispose()


def test_the_alias_builds_the_store_from_options(tmp_path: Path) -> None:
    store = store_registry.create(
        "sqlalchemy", {"url": f"sqlite:///{tmp_path / 'db.sqlite'}", "tablename": "t"}
    )
    assert isinstance(store, SQLAlchemyStore)
    assert store.tablename == "t"
    store.shutdown()


def test_an_unreachable_server_raises_store_unavailable() -> None:
    # Port 1 on the loopback refuses connections at once: a real failure, no mock.
    store = SQLAlchemyStore(
        "postgresql+psycopg://postgres@127.0.0.1:1/test",
        engine_options={"connect_args": {"connect_timeout": 2}},
    )
    with pytest.raises(StoreUnavailableError, match="create its schema") as info:
        store.start("default")
    assert isinstance(info.value.__cause__, sqlalchemy.exc.OperationalError)
    assert isinstance(info.value, ConnectionError)
    with pytest.raises(StoreUnavailableError, match="query due tasks"):
        store.get_due_tasks(NOW)
    store.shutdown()


@pytest.mark.external_service("postgresql")
def test_killed_connections_are_replaced_transparently(
    postgres_database: str,
) -> None:
    store = SQLAlchemyStore(postgres_database, tablename="reconnect")
    store.start("default")
    store.add_task(make_task("a", at(-1)))
    admin = sqlalchemy.create_engine(servers.postgres_url(), poolclass=sqlalchemy.pool.NullPool)
    database = store.engine.url.database
    with admin.connect() as conn:
        # What a server restart does to the pooled connections.
        killed = conn.execute(
            sqlalchemy.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = :db AND pid <> pg_backend_pid()"
            ),
            {"db": database},
        ).all()
    admin.dispose()
    assert killed
    assert [task.id for task in store.get_due_tasks(NOW)] == ["a"]
    store.shutdown()


@pytest.mark.external_service("mariadb")
def test_mariadb_ids_compare_exactly(mariadb_database: str) -> None:
    # Case-insensitive, PAD SPACE collations would make these one id.
    store = SQLAlchemyStore(mariadb_database, tablename="exact_ids")
    store.start("default")
    store.add_tasks([make_task("key"), make_task("KEY"), make_task("key ")])
    assert sorted(task.id for task in store.get_all_tasks()) == ["KEY", "key", "key "]
    store.shutdown()


def test_sqlite_bulk_adds_write_what_sqlalchemy_writes(tmp_path: Path) -> None:
    # On SQLite, add_tasks hands its rows to the driver directly; the rows must be the
    # ones SQLAlchemy's own INSERT writes (same SQL types), also in an odd table name.
    tasks = [make_task("a", at(5)), make_task("paused", None), make_task("é" * 191, at(-1))]
    found = []
    for direct in (True, False):
        store = SQLAlchemyStore(
            f"sqlite:///{tmp_path / f'{direct}.sqlite'}", tablename='odd "name" tasks'
        )
        store.start("default")
        assert store._raw_insert is not None
        if not direct:
            store._raw_insert = None
        store.add_tasks(tasks)
        with store.engine.connect() as conn:
            found.append(
                conn.exec_driver_sql(
                    "SELECT id, typeof(id), next_run_time, typeof(next_run_time), state, "
                    'typeof(state) FROM "odd ""name"" tasks" ORDER BY id'
                ).all()
            )
        assert [task.id for task in store.get_all_tasks()] == ["é" * 191, "a", "paused"]
        with pytest.raises(ConflictIdError, match="'paused'"):
            store.add_tasks([make_task("new"), make_task("paused")])
        assert len(store.get_all_tasks()) == 3
        store.shutdown()
    assert found[0] == found[1]
    assert [row[5] for row in found[0]] == ["blob"] * 3
