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
