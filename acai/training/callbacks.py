"""The training callbacks: throughput, the step limit, the NaN check, checkpoints, samples."""

from __future__ import annotations

import math
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from acai.core.model import ACAI, strips
from acai.core.walks import PATHS
from acai.errors import TrainingError
from acai.images import grid, save_png, to_float, to_uint8
from acai.training.run import save_checkpoint

SAMPLE_PAIRS = 4  # interpolation pairs in each sample grid
SAMPLE_STEPS = 10  # points along each interpolation in a sample grid


class Throughput(keras.callbacks.Callback):
    """Adds `images_per_second` to the logs: per execution for the progress bar, per epoch for
    TensorBoard and the CSV log. The epoch's first execution (it may compile) is not counted.

    It reads the host's clock only: `batch` is the index of the last step of an execution of
    one or more steps, so no device value is needed.
    """

    def __init__(self, batch_size: int):
        super().__init__()
        self.batch_size = batch_size
        self.start, self.first, self.seen = None, 0, 0

    def on_epoch_begin(self, epoch, logs=None):
        self.start, self.seen = None, 0

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if self.start is None:
            self.start, self.first = now, batch  # the clock starts after the first execution
            return
        self.seen = (batch - self.first) * self.batch_size
        if logs is not None:
            logs["images_per_second"] = self.seen / max(now - self.start, 1e-9)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self.seen:
            logs["images_per_second"] = self.seen / max(time.perf_counter() - self.start, 1e-9)


class CheckFinite(keras.callbacks.Callback):
    """Stops with a clear error when a loss turns NaN or infinite (no checkpoint is written)."""

    def __init__(self, manager: tf.train.CheckpointManager, keys=("loss_ae", "loss_critic")):
        super().__init__()
        self.manager, self.keys = manager, keys

    def on_train_batch_end(self, batch, logs=None):
        bad = [k for k in self.keys if logs and k in logs and not math.isfinite(float(logs[k]))]
        if bad:
            last = self.manager.latest_checkpoint or "none yet"
            raise TrainingError(
                f"{bad[0]} became non-finite at step {int(self.model.step.numpy())}; the last "
                f"good checkpoint is {last}; lower lr or use precision=float32 and re-run"
            )


class SaveCheckpoint(keras.callbacks.Callback):
    """Writes a checkpoint, numbered by step, at the end of every epoch and of training."""

    def __init__(self, manager: tf.train.CheckpointManager):
        super().__init__()
        self.manager = manager

    def save(self) -> str:
        return save_checkpoint(self.manager, int(self.model.step.numpy()))

    def on_epoch_end(self, epoch, logs=None):
        self.save()

    def on_train_end(self, logs=None):
        self.save()


class SampleGrids(keras.callbacks.Callback):
    """Saves a grid of reconstructions and interpolations as PNG and as a TensorBoard image."""

    def __init__(self, images: np.ndarray, directory: Path, log_dir: Path):
        super().__init__()
        self.images = to_float(images)  # (2 * SAMPLE_PAIRS, H, W, C)
        self.directory = directory
        self.writer = tf.summary.create_file_writer(str(log_dir / "samples"))

    def on_epoch_end(self, epoch, logs=None):
        step = int(self.model.step.numpy())
        picture = sample_grid(self.model, self.images)
        self.directory.mkdir(parents=True, exist_ok=True)
        save_png(picture, self.directory / f"step_{step:08d}.png", scale=2)
        with self.writer.as_default():
            tf.summary.image("reconstructions_and_interpolations", picture[None], step=step)
        self.writer.flush()


def sample_grid(model: ACAI, images) -> np.ndarray:
    """A uint8 picture: originals over reconstructions, then a lerp and a slerp row per pair.

    Args:
      model: the ACAI model.
      images: (2 * P, H, W, C) in [-1, 1]; image i is paired with image i + P.

    Returns:
      An (H * (2 + 2 * P), W * (SAMPLE_STEPS + 2), C) uint8 array.
    """
    pairs = len(images) // 2
    recon = model.decode(model.encode(images))
    t = np.linspace(0.0, 1.0, SAMPLE_STEPS, dtype=np.float32)
    walks = strips(model, images[:pairs], images[pairs:], t)  # {path: (P, T + 2, H, W, C)}
    rows = [images[: SAMPLE_STEPS + 2], recon[: SAMPLE_STEPS + 2]]  # short rows: black padding
    rows += [walks[path][i] for i in range(pairs) for path in PATHS]
    return grid([np.asarray(to_uint8(r)) for r in rows])
