"""`acai bench`: training speed of the fit() path against a bare compiled step, same process."""

from __future__ import annotations

import statistics
import time

import numpy as np
import tensorflow as tf

from acai import callbacks as cb
from acai import data as data_lib
from acai import model as model_lib
from acai import trainer as train_lib
from acai.config import Config

SYNTHETIC_IMAGES = 2048
NUM_CLASSES = 10


def bench(config: Config, *, steps: int = 20, rounds: int = 3, warmup: int = 3) -> dict:
    """Measures training images/second on synthetic data for `config`'s networks.

    fit() (with the per-batch callbacks `acai train` uses) and a bare `tf.function` of the same
    `train_step` on a twin model are timed in alternating rounds, so that noise on a shared
    machine hits both alike; each figure is the median over rounds.

    Args:
      config: the networks, batch, precision and XLA settings to measure.
      steps: training steps per timed round.
      rounds: timed rounds of each kind.
      warmup: untimed steps after compilation.

    Returns:
      The figures, including images_per_second (fit) and bare_images_per_second.
    """
    precision = train_lib.resolve_precision(config.precision)
    jit = train_lib.resolve_jit(config.jit_compile)
    rng = np.random.default_rng(config.seed)
    images = rng.integers(0, 256, (SYNTHETIC_IMAGES, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, NUM_CLASSES, SYNTHETIC_IMAGES).astype(np.int32)
    ds = data_lib.train_dataset(images, labels, batch=config.batch, seed=config.seed)

    def build():
        return model_lib.build(
            config, image_shape=(32, 32, 3), num_classes=NUM_CLASSES, precision=precision, jit=jit
        )

    model = build()
    throughput = cb.Throughput(config.batch)
    callbacks = [throughput, cb.StopAtStep(10**12)]
    start = time.perf_counter()
    model.fit(ds, steps_per_epoch=1, epochs=1, verbose=0)  # traces and compiles
    compile_s = time.perf_counter() - start
    model.fit(ds, steps_per_epoch=warmup, epochs=1, verbose=0)

    twin = build()
    bare_step = tf.function(twin.train_step, jit_compile=jit)
    iterator = iter(ds)
    for _ in range(warmup + 1):
        bare_step(next(iterator))

    def time_fit():
        # Throughput skips the first batch of the epoch, so run one extra.
        model.fit(ds, steps_per_epoch=steps + 1, epochs=1, verbose=0, callbacks=callbacks)
        return model.history.history["images_per_second"][-1]

    def time_bare():
        start = time.perf_counter()
        for _ in range(steps):
            logs = bare_step(next(iterator))
        float(logs["loss_ae"])  # wait for the last step
        return steps * config.batch / (time.perf_counter() - start)

    fit_speeds, bare_speeds = [], []
    for _ in range(rounds):
        fit_speeds.append(time_fit())
        bare_speeds.append(time_bare())
    fit_ips, bare_ips = statistics.median(fit_speeds), statistics.median(bare_speeds)
    return {
        "images_per_second": round(fit_ips, 1),
        "bare_images_per_second": round(bare_ips, 1),
        "fit_vs_bare": round(fit_ips / bare_ips, 3),
        "step_ms": round(1000 * config.batch / fit_ips, 1),
        "compile_s": round(compile_s, 1),
        "precision": precision,
        "jit_compile": jit,
        "batch": config.batch,
        "depth": config.depth,
        "latent": config.latent,
        "latent_width": config.latent_width,
        "steps": steps,
        "rounds": rounds,
        "fit_rounds": [round(v, 1) for v in fit_speeds],
        "bare_rounds": [round(v, 1) for v in bare_speeds],
    }
