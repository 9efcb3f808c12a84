from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from carbonplan.domain import (
    TERMINAL_STATES,
    JobSpec,
    JobState,
    Market,
    Pool,
    can_transition,
    input_error,
)

T = datetime(2026, 11, 23, tzinfo=UTC)


def spec(**kw) -> JobSpec:
    base = dict(name="j", user="u", project="p", command=["true"], hours=1.0,
                deadline=T + timedelta(hours=10))
    return JobSpec(**{**base, **kw})


def test_terminal_states_are_final() -> None:
    for s in TERMINAL_STATES:
        assert not any(can_transition(s, d) for d in JobState)
    assert can_transition(JobState.QUEUED, JobState.PLANNED)
    assert can_transition(JobState.RUNNING, JobState.QUEUED)  # preempted: back to the queue
    assert can_transition(JobState.PLANNED, JobState.SUCCEEDED)  # finished between two polls
    assert not can_transition(JobState.SUCCEEDED, JobState.QUEUED)


def test_pool_name() -> None:
    p = Pool(region="r", accelerator="a100-80gb", mig="3g.40gb", market=Market.OWNED, capacity=2)
    assert p.name == "r/a100-80gb:3g.40gb/owned"


@pytest.mark.parametrize("kw,field", [
    ({"gpus": 0}, "--gpus"), ({"hours": -1}, "--hours"), ({"watts": 0}, "--watts"),
    ({"checkpoint_every_h": 0}, "--checkpoint-every"), ({"deadline": datetime(2026, 1, 1)},
                                                        "--deadline"),
    ({"command": []}, "command"),
])
def test_validation_names_the_flag(kw: dict, field: str) -> None:
    names = {"gpus": "--gpus", "hours": "--hours", "watts": "--watts", "deadline": "--deadline",
             "checkpoint_every_h": "--checkpoint-every"}
    with pytest.raises(ValidationError) as e:
        spec(**kw)
    assert input_error(e.value, names=names).field == field


def test_command_or_script_not_both() -> None:
    with pytest.raises(ValidationError):
        spec(script="/x.sh")
    with pytest.raises(ValidationError):
        spec(command=None)


def test_deadline_after_not_before() -> None:
    with pytest.raises(ValidationError):
        spec(not_before=T + timedelta(hours=20))
