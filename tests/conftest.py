"""Shared fixtures: an isolated environment per test and a CLI driver."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test runs in its own directory, with its own store and no user config."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CARBONPLAN_DB", str(tmp_path / "carbonplan.db"))
    monkeypatch.delenv("CARBONPLAN_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.setenv("COLUMNS", "200")
    return tmp_path


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    """Run `carbonplan ARGS...` in-process; returns exit code, stdout and stderr."""
    from carbonplan.cli import run

    def invoke(*args: str) -> Result:
        capsys.readouterr()
        code = run(list(args))
        cap = capsys.readouterr()
        return Result(code, cap.out, cap.err)

    return invoke


@pytest.fixture
def db_path(isolated: Path) -> Path:
    return Path(os.environ["CARBONPLAN_DB"])


@pytest.fixture
def pg_url():
    """A fresh, empty PostgreSQL database on the test server (skips when none is running)."""
    import uuid

    admin = os.environ.get("CARBONPLAN_TEST_PG")
    if not admin:
        pytest.skip("no PostgreSQL: set CARBONPLAN_TEST_PG (scripts/test starts one)")
    from sqlalchemy import create_engine, text

    from carbonplan.store.db import resolve_url

    name = f"cp_{uuid.uuid4().hex[:12]}"
    eng = create_engine(resolve_url(admin), isolation_level="AUTOCOMMIT")
    with eng.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    yield admin.rsplit("/", 1)[0] + "/" + name
    with eng.connect() as c:
        c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    eng.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, tmp_path: Path) -> str:
    """A store URL on each backend: a SQLite file, and a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return str(tmp_path / "s.db")
    return request.getfixturevalue("pg_url")
