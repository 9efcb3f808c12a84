"""Several processes writing one SQLite store at once lose nothing and duplicate nothing."""

import multiprocessing as mp
from datetime import UTC, datetime, timedelta
from pathlib import Path

N_PROCS, N_JOBS = 8, 100


def _submit_many(db: str, proc: int, start: mp.Event) -> None:
    from carbonplan.catalog import builtin_site
    from carbonplan.store import open_store
    from carbonplan.submission import SubmitRequest, prepare

    site = builtin_site()
    start.wait()
    store = open_store(db)  # every process opens (and may migrate) the new store at once
    for i in range(N_JOBS):
        spec = prepare(SubmitRequest(args=["python", "train.py", str(i)], name=f"p{proc}-j{i}",
                                     gpus=1 + i % 4, hours="2", within="2d"), site)
        store.add_job(spec)


def test_8_processes_submit_100_jobs_each(tmp_path: Path) -> None:
    db = str(tmp_path / "shared.db")
    ctx = mp.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_submit_many, args=(db, p, start)) for p in range(N_PROCS)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(timeout=300)
    assert [p.exitcode for p in procs] == [0] * N_PROCS

    from carbonplan.store import open_store

    store = open_store(db)
    jobs = store.list_jobs(states=None)
    names = [j.name for j in jobs]
    assert len(jobs) == N_PROCS * N_JOBS
    assert len(set(names)) == len(names)
    assert set(names) == {f"p{p}-j{i}" for p in range(N_PROCS) for i in range(N_JOBS)}
    assert len({j.id for j in jobs}) == len(jobs)
    with store.engine.connect() as conn:
        from sqlalchemy import text

        n_events = conn.execute(text("SELECT COUNT(*) FROM job_events")).scalar()
    assert n_events == len(jobs)
    assert all(j.deadline > datetime.now(UTC) + timedelta(hours=40) for j in jobs)


def _open_and_write(url: str, proc: int, start: mp.Event) -> None:
    from carbonplan.domain import JobSpec
    from carbonplan.store import open_store

    start.wait()
    store = open_store(url)
    deadline = datetime.now(UTC) + timedelta(days=1)
    for i in range(20):
        store.add_job(JobSpec(name=f"p{proc}-{i}", user="u", project="p", command=["true"],
                              hours=1, deadline=deadline))


def test_processes_migrate_a_new_postgres_store_once(pg_url: str) -> None:
    ctx = mp.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_open_and_write, args=(pg_url, p, start)) for p in range(4)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0] * 4
    from carbonplan.store import open_store

    assert len(open_store(pg_url).list_jobs(states=None)) == 80
