"""Schema migrations: the migrated schema matches the models, and old databases open."""

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from carbonplan.domain import JobState
from carbonplan.errors import InputError
from carbonplan.store import migrate, open_store

GOLDEN = Path(__file__).parents[1] / "data" / "store-v0001.sql"


def test_migrated_schema_matches_the_models(store_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlmodel import SQLModel

    import carbonplan.store.tables  # noqa: F401  (registers the tables)

    store = open_store(store_url)
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == []


def test_a_database_from_release_0001_opens_and_upgrades(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    con = sqlite3.connect(path)
    con.executescript(GOLDEN.read_text())
    con.close()
    store = open_store(str(path))
    assert migrate.current_revision(store.engine) == migrate.head_revision()
    jobs = store.list_jobs(states=None)
    assert [j.name for j in jobs] == ["train-llm", "infer"]
    assert jobs[0].state == JobState.PLANNED and jobs[0].env == {"SEED": "1"}
    assert jobs[1].mig == "3g.40gb" and jobs[1].spot is False
    assert [e.to_state for e in store.events(jobs[0].id)] == [JobState.QUEUED, JobState.PLANNED]
    _, plan = store.get_plan()
    assert plan.placements[0].pool == "eu-north-1/a100-80gb/spot"
    assert plan.unplanned == {jobs[1].id: "capacity"}
    store.add_job(jobs[1].model_copy(update={"name": "new"}))  # and it still takes writes


def test_a_newer_database_is_refused_not_damaged(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    open_store(str(path)).close()
    con = sqlite3.connect(path)
    con.execute("UPDATE alembic_version SET version_num = '9999'")
    con.commit()
    con.close()
    with pytest.raises(InputError) as e:
        open_store(str(path))
    assert "newer" in e.value.reason
    eng = create_engine(f"sqlite:///{path}")
    assert migrate.current_revision(eng) == "9999"


def test_revisions_are_a_chain() -> None:
    revs = migrate.known_revisions()
    assert revs == sorted(revs) and revs[0] == "0001"
    for prev, rev in zip(revs, revs[1:], strict=False):
        text = next(migrate.MIGRATIONS_DIR.joinpath("versions").glob(f"{rev}_*.py")).read_text()
        assert f'down_revision = "{prev}"' in text
