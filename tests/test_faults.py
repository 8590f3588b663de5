"""Faults a long training run must survive without losing work (small configs, seconds each)."""

import errno
import random
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

import acai
from acai import Config, WorkdirError
from acai.core import model as model_lib
from acai.training import run as run_lib
from acai.training import trainer

from .test_interrupt import latest_step, rerun, start


def test_kill_9_at_random_moments_never_loads_a_torn_checkpoint(image_tree, tmp_path):
    # Kill the trainer at random moments (some land while a checkpoint is written); each re-run
    # must start from a complete checkpoint and the last one must finish the run.
    workdir, rng, resumed_from = tmp_path / "run", random.Random(0), []
    for _ in range(3):
        process = start(image_tree, workdir, epochs=1000)
        before = latest_step(workdir) or 0
        deadline = time.time() + 240
        while (latest_step(workdir) or 0) <= before and time.time() < deadline:
            assert process.poll() is None, process.communicate()
            time.sleep(0.1)
        time.sleep(rng.uniform(0.0, 1.5))
        process.kill()
        process.communicate(timeout=60)
        resumed_from.append(latest_step(workdir))
        run = run_lib.load_run(workdir)  # whatever is newest must load
        assert run.step == resumed_from[-1]
    assert resumed_from == sorted(resumed_from) and resumed_from[0] >= 4
    assert rerun(image_tree, workdir, epochs=resumed_from[-1] // 4 + 1) == 0
    assert latest_step(workdir) == resumed_from[-1] + 4


@pytest.fixture
def poison(monkeypatch):
    """Makes the autoencoder's loss NaN from the moment `poison.assign(nan)` runs."""
    factor = tf.Variable(1.0)
    clean = model_lib.autoencoder_loss

    def poisoned(*args, **kwargs):
        total, mse, fool = clean(*args, **kwargs)
        return total * factor, mse * factor, fool

    monkeypatch.setattr(model_lib, "autoencoder_loss", poisoned)
    return factor


def test_a_non_finite_loss_stops_naming_the_step_and_the_good_checkpoint(trained, tmp_path, poison):
    config, trained_run, _ = trained
    workdir = shutil.copytree(trained_run, tmp_path / "run")  # steps 1-8, checkpoints 4 and 8
    poison.assign(float("nan"))
    longer = config.replace(total_kimg=128 / 1024)
    with pytest.raises(trainer.TrainingError, match=r"loss_ae became non-finite at step 9.*ckpt-8"):
        acai.train(longer, workdir, verbose=0)
    run = run_lib.load_run(workdir)
    assert run.step == 8
    assert all(np.isfinite(w.numpy()).all() for w in run.model.weights)


def test_mixed_float16_skips_a_non_finite_step(poison):
    config = Config(depth=4, latent=4, latent_width=4, lr=1e-3)
    model = model_lib.build(
        config, image_shape=(32, 32, 3), num_classes=2, precision="mixed_float16"
    )
    x = np.random.default_rng(0).uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32)
    y = np.zeros(4, np.int32)
    poison.assign(float("nan"))
    before = [w.numpy().copy() for w in model.decoder.trainable_weights]
    scale = float(model.ae_optimizer.dynamic_scale.numpy())
    model.train_step((x, y))
    for w0, w1 in zip(before, model.decoder.trainable_weights):
        np.testing.assert_array_equal(w0, w1.numpy())  # the step was skipped
    assert float(model.ae_optimizer.dynamic_scale.numpy()) < scale  # and the scale lowered


def test_a_full_disk_while_saving_is_a_clear_error_and_keeps_the_last_checkpoint(
    trained, tmp_path, monkeypatch
):
    config, trained_run, _ = trained
    workdir = shutil.copytree(trained_run, tmp_path / "run")  # steps 1-8, checkpoints 4 and 8
    real_save = tf.train.CheckpointManager.save

    def full_disk(self, *args, **kwargs):
        (workdir / "checkpoints" / "ckpt-12_temp").mkdir(exist_ok=True)  # a half-written save
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(tf.train.CheckpointManager, "save", full_disk)
    longer = config.replace(total_kimg=96 / 1024)
    with pytest.raises(WorkdirError, match="No space left on device.*ckpt-8.*intact"):
        acai.train(longer, workdir, verbose=0)
    monkeypatch.setattr(tf.train.CheckpointManager, "save", real_save)
    assert run_lib.load_run(workdir).step == 8
    shutil.rmtree(workdir / "checkpoints" / "ckpt-12_temp")
    assert acai.train(longer, workdir, verbose=0)["step"] == 12  # and it resumes once space is back


def test_a_crashed_trainer_leaves_no_stuck_lock(image_tree, tmp_path):
    workdir = tmp_path / "run"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time; from pathlib import Path\n"
                "from acai.training import run as run_lib\n"
                f"with run_lib.workdir_lock(Path({str(workdir)!r})):\n"
                "    print('locked', flush=True); time.sleep(600)\n"
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(WorkdirError, match="in use by a training process \\(pid"):
        with run_lib.workdir_lock(workdir):
            pass
    holder.kill()
    holder.wait(timeout=30)
    with run_lib.workdir_lock(workdir):  # the OS released the dead process's lock
        pass
