"""A fresh PostgreSQL database per test, for the tests of Postgres mode (tests/test_postgres*.py).

    from tests.postgres_db import db, pg, server  # noqa: F401  (pytest fixtures)

`server`: one private PostgreSQL per test module (tests/services.postgres_server). `pg`: a new,
empty database in it named by PLINTH_DATABASE_URL, dropped afterwards. `db`: the data folder with
the database in SQLite (the default) or in such a Postgres database, so one test covers both.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.services import postgres_server
from webapp import store


@dataclass(frozen=True)
class Pg:
    url: str  # postgresql://plinth@127.0.0.1:PORT/<this test's database>
    data: Path


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> str:
    with postgres_server(tmp_path_factory.mktemp("postgres")) as url:
        yield url


def _admin(server: str):
    import psycopg

    base = server.rsplit("/", 1)[0].replace("//plinth@", "//postgres@")
    return psycopg.connect(f"{base}/postgres", autocommit=True)


@pytest.fixture
def pg(server, tmp_path, monkeypatch) -> Pg:
    """A new, empty database for this test, named by PLINTH_DATABASE_URL; the data folder tmp_path/data."""
    from webapp import db_postgres

    name = f"t_{secrets.token_hex(6)}"
    with _admin(server) as admin:
        admin.execute(f"CREATE DATABASE {name} OWNER plinth")
    url = f"{server.rsplit('/', 1)[0]}/{name}"
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("PLINTH_DATABASE_URL", url)
    monkeypatch.setenv("PLINTH_DATA_DIR", str(data))
    yield Pg(url, data)
    db_postgres.close_pools()
    store._READY.discard(url)
    with _admin(server) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", "postgres"])
def db(request, tmp_path, monkeypatch) -> Path:
    """The data folder, with the database in SQLite (the default) or in this test's Postgres database."""
    if request.param == "postgres":
        return request.getfixturevalue("pg").data
    monkeypatch.delenv("PLINTH_DATABASE_URL", raising=False)
    data = tmp_path / "data"
    data.mkdir()
    monkeypatch.setenv("PLINTH_DATA_DIR", str(data))
    return data
