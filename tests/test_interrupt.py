"""Interrupting `acai train` (Ctrl-C, SIGTERM, kill -9) loses at most one epoch, never the run."""

import re
import signal
import subprocess
import sys
import time

import pytest

from acai import cli


def latest_step(workdir):
    state = workdir / "checkpoints" / "checkpoint"
    if not state.exists():
        return None
    match = re.search(r'model_checkpoint_path: "ckpt-(\d+)"', state.read_text())
    return int(match.group(1)) if match else None


def train_args(image_tree, workdir, epochs):
    # Epochs of 4 steps of 8 images; --set total_kimg decides how many. One down-sampling level
    # (latent_width=16): a network that builds and compiles in seconds.
    return [
        "train",
        "--data",
        str(image_tree),
        "--workdir",
        str(workdir),
        "--verbose",
        "0",
        "--set",
        "depth=4",
        "--set",
        "latent=4",
        "--set",
        "latent_width=16",
        "--set",
        "batch=8",
        "--set",
        "precision=float32",
        "--set",
        f"epoch_kimg={32 / 1024}",
        "--set",
        f"total_kimg={epochs * 32 / 1024}",
    ]


def start(image_tree, workdir, epochs):
    """`acai train` in a process of its own, to be interrupted or killed."""
    command = [sys.executable, "-m", "acai.cli", *train_args(image_tree, workdir, epochs)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def rerun(image_tree, workdir, epochs):
    """The same `acai train` command run to its end in this process, where TensorFlow is
    already loaded; returns its exit code. It reads only what the stopped process left on disk."""
    return cli.main(train_args(image_tree, workdir, epochs))


def wait_for_checkpoint(process, workdir, timeout=240):
    deadline = time.time() + timeout
    while latest_step(workdir) is None:
        assert process.poll() is None, process.communicate()
        assert time.time() < deadline, "no checkpoint written in time"
        time.sleep(0.2)


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_saves_a_checkpoint_and_the_rerun_resumes(image_tree, tmp_path, signum, code):
    workdir = tmp_path / "run"
    process = start(image_tree, workdir, epochs=1000)
    wait_for_checkpoint(process, workdir)
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    assert process.returncode == code, err
    assert "Traceback" not in err and "interrupted" in err
    stopped_at = latest_step(workdir)
    assert stopped_at >= 4
    # The re-run continues from where it stopped and trains one more epoch's worth of steps.
    epochs = stopped_at // 4 + 1
    assert rerun(image_tree, workdir, epochs=epochs) == 0
    assert latest_step(workdir) == epochs * 4


def test_kill_9_loses_at_most_one_epoch(image_tree, tmp_path):
    workdir = tmp_path / "run"
    process = start(image_tree, workdir, epochs=1000)
    wait_for_checkpoint(process, workdir)
    time.sleep(1.0)  # somewhere in a later epoch, perhaps mid-checkpoint
    process.kill()
    process.communicate(timeout=60)
    saved = latest_step(workdir)
    assert saved >= 4 and saved % 4 == 0
    assert rerun(image_tree, workdir, epochs=saved // 4 + 1) == 0
    assert latest_step(workdir) == saved + 4  # resumed from the newest checkpoint, not step 0


def test_a_signal_during_training_steps_is_raised_between_them():
    from acai.training.trainer import Interrupted, _Signals

    signals = _Signals()
    with pytest.raises(Interrupted):  # outside the steps: at once
        signals.handler(signal.SIGTERM, None)
    callback = signals.callback()
    with pytest.raises(Interrupted) as raised:
        with signals.deferred():
            signals.handler(signal.SIGTERM, None)  # noted, not raised inside the step
            assert signals.pending == signal.SIGTERM
            callback.on_train_batch_end(0)  # the end of the call into the device raises it
    assert raised.value.signum == signal.SIGTERM
    impatient = _Signals()
    with pytest.raises(Interrupted) as raised, impatient.deferred():
        impatient.handler(signal.SIGINT, None)
        impatient.handler(signal.SIGTERM, None)  # a second signal does not wait
    assert raised.value.signum == signal.SIGTERM
    late = _Signals()
    with pytest.raises(Interrupted), late.deferred():
        late.handler(signal.SIGINT, None)  # after the last step: raised on the way out
