"""submit / queue / show / cancel through the real CLI entry point."""

import json
from pathlib import Path


def submit(cli, *extra: str):
    return cli("submit", "--hours", "2", "--within", "1d", *extra, "--", "python", "train.py")


def test_submit_queue_show_cancel(cli) -> None:
    r = submit(cli, "--gpus", "2", "--gpu-type", "a100", "--name", "llm")
    assert r.code == 0, r.err
    assert "Queued job 1 (llm)" in r.out
    r = cli("queue", "--json")
    jobs = json.loads(r.out)
    assert [(j["id"], j["name"], j["state"], j["gpus"]) for j in jobs] == [(1, "llm", "queued", 2)]
    assert jobs[0]["command"] == ["python", "train.py"] and jobs[0]["placement"] is None
    r = cli("queue")
    assert r.code == 0 and "llm" in r.out and "queued" in r.out
    r = cli("show", "1", "--json")
    rec = json.loads(r.out)
    assert rec["job"]["gpu_types"] == ["a100"] and rec["history"][0]["to_state"] == "queued"
    assert cli("cancel", "1").code == 0
    assert json.loads(cli("queue", "--json").out) == []
    everything = json.loads(cli("queue", "--all", "--json").out)
    assert everything[0]["state"] == "cancelled"
    r = cli("show", "1")
    assert "cancelled" in r.out and "cancelled by user" in r.out


def test_submit_mig_spot_pausable_and_env(cli, tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    (tmp_path / "carbonplan.toml").write_text(
        Path(__file__).parents[2].joinpath("src/carbonplan/templates/slurm.toml").read_text())
    r = cli("submit", "--mig", "3g.40gb", "--hours", "1", "--within", "2d", "--pausable",
            "--checkpoint-every", "30m", "--checkpoint-cost", "5m", "--no-spot", "--regions",
            "cluster-*", "--env", "SEED=1", "--env", "TOKEN=x=y", "--workdir", "work",
            "--watts", "180", "--json", "--", "python", "infer.py")
    assert r.code == 0, r.err
    job = json.loads(r.out)
    assert job["mig"] == "3g.40gb" and job["pausable"] and not job["spot"]
    assert job["checkpoint_every_h"] == 0.5 and abs(job["checkpoint_cost_h"] - 5 / 60) < 1e-9
    assert job["env"] == {"SEED": "1", "TOKEN": "x=y"} and job["workdir"].endswith("work")
    r = cli("show", str(job["id"]))
    assert "SEED, TOKEN" in r.out and "x=y" not in r.out  # env values are not shown


def test_submit_a_slurm_batch_script(cli, tmp_path: Path) -> None:
    script = tmp_path / "train.sbatch"
    script.write_text("#!/bin/bash\n#SBATCH --job-name=bert\n#SBATCH --gres=gpu:h100:2\n"
                      "#SBATCH --time=02:00:00\nsrun python train.py\n")
    r = cli("submit", str(script), "--within", "2d", "--json")
    assert r.code == 0, r.err
    job = json.loads(r.out)
    assert job["name"] == "bert" and job["gpus"] == 2 and job["gpu_types"] == ["h100"]
    assert job["script"] == str(script) and job["command"] is None
    # 2 h limit on the slower H100 (PCIe, 1.6x the reference) = 3.2 reference-GPU hours
    assert abs(job["hours"] - 3.2) < 1e-9


def test_user_and_project_default_from_the_os(cli) -> None:
    import getpass

    r = submit(cli, "--json")
    assert json.loads(r.out)["user"] == getpass.getuser()
    r = submit(cli, "--json", "--user", "alice", "--project", "nlp")
    assert (json.loads(r.out)["user"], json.loads(r.out)["project"]) == ("alice", "nlp")


def test_job_name_defaults_to_the_script_a_launcher_runs(cli) -> None:
    r = cli("submit", "--hours", "1", "--within", "1d", "--json", "--", "python", "-u", "x.py")
    assert json.loads(r.out)["name"] == "x.py"
    r = cli("submit", "--hours", "1", "--within", "1d", "--json", "--", "./run.sh", "a")
    assert json.loads(r.out)["name"] == "run.sh"


def test_version_and_help(cli) -> None:
    assert cli("--version").out.startswith("carbonplan ")
    r = cli("--help")
    assert r.code == 0
    for cmd in ("init", "submit", "queue", "show", "cancel"):
        assert cmd in r.out


def test_help_keeps_the_bracketed_defaults(cli) -> None:
    """Rich reads "[default: 1]" as markup and drops it unless escaped."""
    out = " ".join(cli("submit", "--help").out.split())
    assert "[default: 1]" in out and "[default: the OS user]" in out
    out = " ".join(cli("plan", "--help").out.split())
    assert "[env: CARBONPLAN_DB; default: the user data dir]" in out
