"""Only one daemon leads; a standby takes over when the leader dies (real PostgreSQL, real
processes)."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from pathlib import Path

from carbonplan.leadership import FileLease, lease_for
from carbonplan.store import open_store


def _hold(url: str, acquired: mp.Event) -> None:
    store = open_store(url)
    lease = lease_for(store.engine)
    while not lease.try_acquire():
        time.sleep(0.05)
    acquired.set()
    while True:
        assert lease.check()
        time.sleep(0.1)


def _takeover(url: str) -> None:
    ctx = mp.get_context("spawn")
    acquired = ctx.Event()
    leader = ctx.Process(target=_hold, args=(url, acquired), daemon=True)
    leader.start()
    assert acquired.wait(60)
    standby = lease_for(open_store(url).engine)
    assert not standby.try_acquire() and not standby.check()
    os.kill(leader.pid, signal.SIGKILL)  # the leader dies without releasing anything
    leader.join(10)
    deadline = time.monotonic() + 30
    while not standby.try_acquire():
        assert time.monotonic() < deadline, "standby never took over"
        time.sleep(0.1)
    assert standby.check()
    standby.release()
    assert not standby.check()
    again = lease_for(open_store(url).engine)
    assert again.try_acquire()
    again.release()


def test_postgres_standby_takes_over(pg_url: str) -> None:
    _takeover(pg_url)


def test_sqlite_standby_takes_over(tmp_path: Path) -> None:
    _takeover(str(tmp_path / "s.db"))


def test_postgres_lease_is_lost_with_its_connection(pg_url: str) -> None:
    from sqlalchemy import text

    store = open_store(pg_url)
    lease = lease_for(store.engine)
    assert lease.try_acquire() and lease.check()
    pid = lease._conn.execute(text("SELECT pg_backend_pid()")).scalar()
    lease._conn.commit()
    with store.engine.connect() as other:  # the server drops the leader's session
        other.execute(text("SELECT pg_terminate_backend(:p)"), {"p": pid})
        other.commit()
    assert not lease.check()
    assert lease.try_acquire()  # and it can compete again
    lease.release()


def test_file_lease_is_exclusive_within_a_process(tmp_path: Path) -> None:
    a, b = FileLease(tmp_path / "x.lock"), FileLease(tmp_path / "x.lock")
    assert a.try_acquire()
    assert not b.try_acquire()
    a.release()
    assert b.try_acquire()
