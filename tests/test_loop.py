"""The training loop's schedule, and steps_per_execution that does not divide an epoch."""

import csv

import acai
from acai.training import loop
from acai.training import run as run_lib


def test_schedule_runs_exactly_the_steps_of_each_epoch():
    schedule = loop.Schedule(total_steps=10, steps_per_epoch=4, steps_per_execution=3)
    assert schedule.epochs == 3
    assert schedule.executions(0, 0) == [3, 1]
    assert schedule.executions(1, 4) == [3, 1]
    assert schedule.executions(2, 8) == [2]  # the last epoch is cut at total_steps
    assert schedule.executions(1, 6) == [2]  # resumed mid-epoch: the rest of it
    assert schedule.epoch_of(6) == 1 and schedule.epoch_of(10) == 2


def test_steps_per_execution_keeps_checkpoints_on_epoch_ends(tiny_config, tmp_path):
    config = tiny_config.replace(steps_per_execution=3)  # epochs of 4 steps: calls of 3 and 1
    assert acai.train(config, tmp_path / "run", verbose=0)["step"] == 8
    names = sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("*.index"))
    assert names == ["ckpt-4.index", "ckpt-8.index"]
    with open(tmp_path / "run" / "history.csv") as f:
        assert [int(row["epoch"]) for row in csv.DictReader(f)] == [0, 1]
    model = run_lib.load_run(tmp_path / "run").model
    assert int(model.ae_optimizer.iterations.numpy()) == 8  # no step past the end
