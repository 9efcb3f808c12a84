"""plugins/slurm/carbonplan.lua on a real slurmctld: opt-in, tags, delay or hold, fail-open."""

from __future__ import annotations

import pytest

from .conftest import PLUGINS, Cluster, wait_for

pytestmark = pytest.mark.slurm

TAG = "[carbonplan:tagged"


def test_opted_in_job_is_tagged_and_delayed(north: Cluster) -> None:
    jid, err = north.sbatch("--qos=carbon", "-t", "2", "--gres=gpu:a100:1")
    assert jid is not None, err
    rec = north.job(jid)
    assert rec["job_state"] == "PENDING" and rec["state_reason"] == "BeginTime"
    assert rec["admin_comment"] == "[carbonplan:tagged via=qos mode=open]"
    # the provisional begin time: provisional_delay_s (300) after submission
    assert 299 <= rec["eligible_time"] - rec["submit_time"] <= 301


def test_comment_and_partition_opt_in_and_a_later_begin_is_kept(north: Cluster) -> None:
    with north.lua(settings={"opt_in_partitions": '{ "b" }'}):
        by_comment, err = north.sbatch("--comment", "please carbonplan:hours=0.5", "-t", "5",
                                       "--begin=now+7200")
        assert by_comment is not None, err
        by_partition, err = north.sbatch("-p", "b", "-t", "5")
        assert by_partition is not None, err
    rec = north.job(by_comment)
    assert rec["admin_comment"] == ("[carbonplan:tagged via=comment mode=open not_before="
                                    f"{rec['eligible_time']}]")
    assert rec["eligible_time"] - rec["submit_time"] >= 7199  # the user's --begin stays
    assert north.job(by_partition)["admin_comment"].startswith(
        "[carbonplan:tagged via=partition ")


def test_the_tag_is_appended_to_an_existing_admin_comment(north: Cluster) -> None:
    with north.lua(before='job_desc.admin_comment = "site:billing=gpu"'):
        jid, err = north.sbatch("--qos=carbon", "-t", "2")
    assert jid is not None, err
    assert north.job(jid)["admin_comment"] == ("site:billing=gpu "
                                               "[carbonplan:tagged via=qos mode=open]")


def test_fail_closed_holds_the_job(north: Cluster) -> None:
    with north.lua(settings={"mode": '"closed"'}):
        jid, err = north.sbatch("--qos=carbon", "-t", "2")
    assert jid is not None, err
    rec = north.job(jid)
    assert rec["job_state"] == "PENDING" and rec["priority"] == 0
    assert rec["state_reason"] in ("JobHeldUser", "JobHeldAdmin")
    assert rec["admin_comment"] == "[carbonplan:tagged via=qos mode=closed]"


def test_a_job_without_time_limit_is_rejected_with_the_reason(north: Cluster) -> None:
    jid, err = north.sbatch("--qos=carbon", "--gres=gpu:a100:1")
    assert jid is None
    assert "carbonplan: jobs that opt in to carbon-aware planning (via qos) need a time " \
           "limit: add --time" in err
    assert "Time limit specification required" in err  # ESLURM_MISSING_TIME_LIMIT


def test_a_job_that_does_not_opt_in_is_untouched(north: Cluster) -> None:
    jid, err = north.sbatch("--comment", "carbonplanning notes", "--qos=normal",
                            script="echo ran")
    assert jid is not None, err
    rec = north.job(jid)
    assert rec is None or TAG not in rec["admin_comment"]
    wait_for("the job to run", lambda: north.output(jid).strip() == "ran")
    rec = north.job(jid)
    assert rec is None or (rec["admin_comment"] == "" and rec["eligible_time"] ==
                           rec["submit_time"])


def _let_through(north: Cluster, marker: str) -> None:
    before = north.log_size()
    jid, err = north.sbatch("--qos=carbon", "-t", "1", script="echo ran")
    assert jid is not None, err
    wait_for("the untouched job to run", lambda: north.output(jid).strip() == "ran")
    rec = north.job(jid)
    assert rec is None or TAG not in rec["admin_comment"]
    wait_for("the log line", lambda: marker in north.log_since(before), timeout=10)


def test_a_runtime_error_lets_the_job_through(north: Cluster) -> None:
    module = (PLUGINS / "carbonplan.lua").read_text()
    broken = module.replace("local function handle(job_desc, submit_uid)\n",
                            "local function handle(job_desc, submit_uid)\n"
                            "   error(\"injected failure\")\n", 1)
    assert broken != module
    with north.lua(module=broken):
        _let_through(north, "carbonplan: error, job of uid 0 let through unchanged")


def test_a_syntax_error_in_the_module_lets_jobs_through(north: Cluster) -> None:
    with north.lua(module="local M = {\nreturn M this is not lua\n"):
        _let_through(north, "carbonplan: module not loaded, jobs pass untouched")


def test_bad_settings_disable_the_module(north: Cluster) -> None:
    with north.lua(settings={"mode": '"sometimes"'}):
        _let_through(north, "carbonplan: settings rejected, module disabled")


def test_a_syntax_error_in_job_submit_lua_keeps_the_previous_script(north: Cluster) -> None:
    loaded, err = north.sbatch("--qos=carbon", "-t", "2")  # slurmctld loads the good script
    assert loaded is not None and north.job(loaded)["admin_comment"].startswith(TAG), err
    with north.lua(job_submit="function slurm_job_submit(\n"):
        jid, err = north.sbatch("--qos=carbon", "-t", "2")
    assert jid is not None, err
    assert north.job(jid)["admin_comment"].startswith(TAG)
