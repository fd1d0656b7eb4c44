"""A store whose driver is not installed says which module is missing and what to
install (the extra), as a ConfigurationError that is also an ImportError. The missing
module is simulated in a fresh interpreter with ``sys.modules[name] = None``, which makes
its import fail exactly as when it is not installed."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import textwrap

import pytest

from tickwork.exceptions import ConfigurationError, MissingDependencyError

#: Prints what the snippet's ``attempt()`` raised, as JSON.
HARNESS = """
import json, sys
sys.modules[{module!r}] = None  # as if not installed
from tickwork.exceptions import ConfigurationError
def attempt():
{body}
try:
    attempt()
except Exception as exc:
    print(json.dumps({{
        "type": type(exc).__name__,
        "configuration": isinstance(exc, ConfigurationError),
        "import": isinstance(exc, ImportError),
        "module": getattr(exc, "module", None),
        "message": str(exc),
    }}))
else:
    print(json.dumps(None))
"""


def failure(module: str, body: str) -> dict[str, object]:
    """What ``body`` raises in an interpreter where ``module`` is not importable."""
    code = HARNESS.format(module=module, body=textwrap.indent(textwrap.dedent(body), "    "))
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    result = json.loads(done.stdout)
    assert result is not None, f"nothing was raised: {done.stderr}"
    return result  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    ("module", "url", "install"),
    [
        ("psycopg", "postgresql+psycopg://postgres@127.0.0.1:5432/test", "tickwork[postgres]"),
        ("pymysql", "mysql+pymysql://root@127.0.0.1:3306/test", "tickwork[mysql]"),
        ("MySQLdb", "mysql://root@127.0.0.1:3306/test", "mysql+pymysql://"),
    ],
)
def test_a_missing_sql_driver_names_the_extra(module: str, url: str, install: str) -> None:
    got = failure(
        module,
        f"""
        from tickwork.stores.sqlalchemy import SQLAlchemyStore
        SQLAlchemyStore({url!r})
        """,
    )
    assert got["type"] == "MissingDependencyError"
    assert got["configuration"]
    assert got["import"]
    assert got["module"] == module
    message = str(got["message"])
    assert repr(module) in message
    assert install in message
    assert "SQLAlchemyStore" in message


def test_a_missing_sql_driver_in_a_store_configuration() -> None:
    got = failure(
        "psycopg",
        """
        from tickwork import BackgroundScheduler
        BackgroundScheduler(
            stores={"default": {"type": "sqlalchemy", "url": "postgresql+psycopg://x@h/db"}}
        )
        """,
    )
    assert got["type"] == "MissingDependencyError"
    assert "pip install 'tickwork[postgres]'" in str(got["message"])


def test_a_missing_redis_client_names_the_extra() -> None:
    got = failure(
        "redis",
        """
        from tickwork.stores import RedisStore  # imports: the error comes when it is used
        RedisStore("redis://127.0.0.1:6379/0")
        """,
    )
    assert got["type"] == "MissingDependencyError"
    assert got["configuration"]
    assert got["import"]
    assert got["module"] == "redis"
    assert "RedisStore" in str(got["message"])
    assert "pip install 'tickwork[redis]'" in str(got["message"])


def test_a_missing_redis_client_in_a_store_configuration() -> None:
    got = failure(
        "redis",
        """
        from tickwork import BackgroundScheduler
        BackgroundScheduler(stores={"default": {"type": "redis"}})
        """,
    )
    assert got["configuration"], got
    assert "pip install 'tickwork[redis]'" in str(got["message"])


def test_the_error_survives_pickling() -> None:
    error = MissingDependencyError("redis", "RedisStore", "pip install 'tickwork[redis]'")
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy, ConfigurationError)
    assert isinstance(copy, ImportError)
    assert (copy.module, copy.name, str(copy)) == ("redis", "redis", str(error))
