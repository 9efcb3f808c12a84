"""Every class of bad input: one line on stderr naming the field, exit 2, nothing written."""

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

PAST = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
SOON = (datetime.now(UTC) + timedelta(hours=3)).isoformat()
LATER = (datetime.now(UTC) + timedelta(days=2)).isoformat()
CMD = ["--", "python", "train.py"]

SUBMIT_CASES = {
    "deadline in the past": (["--hours", "1", "--deadline", PAST], "--deadline", "in the past"),
    "deadline before not-before + run": (
        ["--hours", "10", "--gpu-type", "t4", "--not-before", SOON, "--deadline",
         (datetime.now(UTC) + timedelta(hours=6)).isoformat()], "--deadline", "needs"),
    "deadline too short on the fastest GPU": (
        ["--hours", "30", "--within", "2h"], "--deadline", "fastest eligible GPU"),
    "unknown GPU type": (["--hours", "1", "--within", "1d", "--gpu-type", "a1000"],
                         "--gpu-type", "a100"),
    "unknown MIG profile": (["--hours", "1", "--within", "1d", "--mig", "3g.50gb"],
                            "--mig", "unknown MIG profile"),
    "unknown region": (["--hours", "1", "--within", "1d", "--regions", "mars-*"],
                       "--regions", "matches none"),
    "unknown home region": (["--hours", "1", "--within", "1d", "--home-region", "mars-1"],
                            "--home-region", "unknown region"),
    "zero GPUs": (["--hours", "1", "--within", "1d", "--gpus", "0"], "--gpus", "greater"),
    "negative hours": (["--hours", "-2", "--within", "1d"], "--hours", "must be"),
    "zero hours": (["--hours", "0", "--within", "1d"], "--hours", "must be"),
    "zero watts": (["--hours", "1", "--within", "1d", "--watts", "0"], "--watts", "greater"),
    "zero checkpoint interval": (["--hours", "1", "--within", "1d", "--checkpoint-every", "0m"],
                                 "--checkpoint-every", "positive"),
    "unparseable deadline": (["--hours", "1", "--deadline", "tomorrow-ish"], "--deadline",
                             "ISO 8601"),
    "unparseable not-before": (["--hours", "1", "--within", "1d", "--not-before", "later"],
                               "--not-before", "ISO 8601"),
    "unparseable duration": (["--hours", "1", "--within", "3 parsecs"], "--within",
                             "cannot parse"),
    "unparseable hours": (["--hours", "a while", "--within", "1d"], "--hours", "cannot parse"),
    "non-integer GPUs": (["--hours", "1", "--within", "1d", "--gpus", "two"], "--gpus",
                         "integer"),
    "both deadline and within": (["--hours", "1", "--within", "1d", "--deadline", LATER],
                                 "--deadline", "not both"),
    "no deadline": (["--hours", "1"], "--deadline", "required"),
    "more GPUs than any pool": (["--hours", "1", "--within", "1d", "--gpus", "500"], "--gpus",
                                "exceeds every eligible pool"),
    "bad env": (["--hours", "1", "--within", "1d", "--env", "NOVALUE"], "--env", "KEY=VALUE"),
    "missing workdir": (["--hours", "1", "--within", "1d", "--workdir", "/no/such/dir"],
                        "--workdir", "no such directory"),
    "unknown option": (["--hours", "1", "--within", "1d", "--gpu", "2"], "--gpu", "No such"),
}


def assert_one_line_error(r, field: str, words: str) -> None:
    assert r.code == 2, (r.out, r.err)
    lines = r.err.strip().splitlines()
    assert len(lines) == 1, r.err
    assert lines[0].startswith("error: ")
    assert field in lines[0] and words in lines[0], lines[0]
    assert "Traceback" not in r.err


@pytest.mark.parametrize("case", sorted(SUBMIT_CASES))
def test_bad_submit_writes_nothing(cli, db_path: Path, case: str) -> None:
    args, field, words = SUBMIT_CASES[case]
    r = cli("submit", *args, *CMD)
    assert_one_line_error(r, field, words)
    assert not db_path.exists()  # not even an empty store was created


def test_bad_submit_leaves_an_existing_queue_unchanged(cli) -> None:
    assert cli("submit", "--hours", "1", "--within", "1d", *CMD).code == 0
    before = cli("queue", "--all", "--json").out
    for args, field, words in SUBMIT_CASES.values():
        assert_one_line_error(cli("submit", *args, *CMD), field, words)
    assert cli("queue", "--all", "--json").out == before


def test_submit_without_a_command(cli) -> None:
    assert_one_line_error(cli("submit", "--hours", "1", "--within", "1d"), "command", "after")


@pytest.mark.parametrize("toml,field,words", [
    ('[[pools]]\nregion = "eu-north-1"\naccelerator = "t4"\nmarket = "spot"\ncapcity = 2\n',
     "config pools[0].capcity", "did you mean 'capacity'"),
    ('[[regions]]\nname = "site-a"\nzone = "XX-NOWHERE"\n', "config regions[0].zone",
     "unknown grid zone"),
    ('[site]\ncarbon_price_usd_per_t = -1\n', "config site.carbon_price_usd_per_t", "greater"),
    ("[site\n", "config", "not valid TOML"),
])
@pytest.mark.parametrize("command", [["queue"], ["show", "1"], ["cancel", "1"],
                                     ["submit", "--hours", "1", "--within", "1d", *CMD]])
def test_a_bad_config_stops_every_command(cli, db_path: Path, tmp_path: Path, toml: str,
                                          field: str, words: str, command: list[str]) -> None:
    (tmp_path / "carbonplan.toml").write_text(toml)
    assert_one_line_error(cli(*command), field, words)
    assert not db_path.exists()


def test_config_flag_pointing_nowhere(cli) -> None:
    assert_one_line_error(cli("queue", "--config", "nope.toml"), "--config", "no such file")


@pytest.mark.parametrize("args,field,words", [
    (["show", "42"], "job", "no job 42"),
    (["show", "abc"], "job_id", "integer"),
    (["cancel", "42"], "job", "no job 42"),
    (["queue", "--state", "sleeping"], "--state", "unknown state"),
    (["init", "--template", "k8s"], "--template", "k8s"),
    (["frobnicate"], "frobnicate", "No such command"),
])
def test_bad_input_on_other_commands(cli, args: list[str], field: str, words: str) -> None:
    assert_one_line_error(cli(*args), field, words)


def test_cancel_is_all_or_nothing(cli) -> None:
    for _ in range(2):
        assert cli("submit", "--hours", "1", "--within", "1d", *CMD).code == 0
    assert cli("cancel", "2").code == 0
    assert_one_line_error(cli("cancel", "1", "2"), "job 2", "already cancelled")
    assert cli("show", "1", "--json").out.count('"cancelled"') == 0  # job 1 untouched
    assert_one_line_error(cli("cancel", "1", "99"), "job", "no job 99")


def test_init_refuses_to_overwrite(cli, tmp_path: Path) -> None:
    assert cli("init").code == 0
    text = (tmp_path / "carbonplan.toml").read_text()
    assert_one_line_error(cli("init", "--template", "slurm"), "--path", "--force")
    assert (tmp_path / "carbonplan.toml").read_text() == text
    assert cli("init", "--template", "slurm", "--force").code == 0
    assert "cluster-north" in (tmp_path / "carbonplan.toml").read_text()


def test_no_env_leaks_between_tests() -> None:
    assert "carbonplan.db" in os.environ["CARBONPLAN_DB"]
