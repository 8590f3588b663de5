"""`acai bench`: training speed of the fit() path against a bare compiled step, same process."""

from __future__ import annotations

import statistics
import time

import numpy as np
import tensorflow as tf

from acai import callbacks as cb
from acai import data as data_lib
from acai import loop
from acai import model as model_lib
from acai import trainer as train_lib
from acai.config import Config

SYNTHETIC_IMAGES = 2048
NUM_CLASSES = 10


def bench(config: Config, *, steps: int = 20, rounds: int = 3, warmup: int = 3) -> dict:
    """Measures training images/second on synthetic data for `config`'s networks.

    Three ways of driving the same `train_step` are timed in alternating rounds, so that noise
    on a shared machine hits them alike; each figure is the median over rounds: the trainer's
    loop (`acai.loop.fit` with the per-execution callbacks `acai train` uses), Keras'
    `fit()` with the same callbacks, and a bare `tf.function` of the step on a twin model.

    Args:
      config: the networks, batch, precision, XLA and steps_per_execution settings to measure.
      steps: training steps per timed round.
      rounds: timed rounds of each kind.
      warmup: untimed steps after compilation.

    Returns:
      The figures: images_per_second (the trainer's loop), keras_fit_images_per_second,
      bare_images_per_second, their ratios, and the settings.
    """
    precision = train_lib.resolve_precision(config.precision)
    jit = train_lib.resolve_jit(config.jit_compile)
    per_call = train_lib.resolve_steps_per_execution(config.steps_per_execution)
    rng = np.random.default_rng(config.seed)
    images = rng.integers(0, 256, (SYNTHETIC_IMAGES, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, NUM_CLASSES, SYNTHETIC_IMAGES).astype(np.int32)
    strategy = tf.distribute.get_strategy()

    def dataset(context=None):
        return data_lib.train_dataset(images, labels, batch=config.batch, seed=config.seed)

    def build():
        return model_lib.build(
            config, image_shape=(32, 32, 3), num_classes=NUM_CLASSES, precision=precision, jit=jit
        )

    model, keras_model, twin = build(), build(), build()
    iterator = loop.distribute(strategy, dataset)
    start = time.perf_counter()
    time_loop(  # compiles
        model, strategy, iterator, batch=config.batch, steps=warmup, per_call=per_call, jit=jit
    )
    compile_s = time.perf_counter() - start
    keras_model.fit(dataset(), steps_per_epoch=warmup, epochs=1, verbose=0, shuffle=False)
    bare_step = tf.function(twin.train_step, jit_compile=jit)
    bare_iterator = iter(dataset())
    for _ in range(warmup + 1):
        bare_step(next(bare_iterator))

    def time_keras_fit():
        # Throughput skips the first batch of the epoch, so run one extra.
        keras_model.fit(
            dataset(),
            steps_per_epoch=steps + 1,
            epochs=1,
            verbose=0,
            shuffle=False,
            callbacks=[cb.Throughput(config.batch)],
        )
        return keras_model.history.history["images_per_second"][-1]

    def time_bare():
        start = time.perf_counter()
        for _ in range(steps):
            logs = bare_step(next(bare_iterator))
        float(logs["loss_ae"])  # wait for the last step
        return steps * config.batch / (time.perf_counter() - start)

    timers = {
        "loop": lambda: time_loop(
            model, strategy, iterator, batch=config.batch, steps=steps, per_call=per_call, jit=jit
        ),
        "keras_fit": time_keras_fit,
        "bare": time_bare,
    }
    speeds = {name: [] for name in timers}
    for _ in range(rounds):
        for name, timer in timers.items():
            speeds[name].append(timer())
    median = {name: statistics.median(values) for name, values in speeds.items()}
    return {
        "images_per_second": round(median["loop"], 1),
        "keras_fit_images_per_second": round(median["keras_fit"], 1),
        "bare_images_per_second": round(median["bare"], 1),
        "loop_vs_keras_fit": round(median["loop"] / median["keras_fit"], 3),
        "loop_vs_bare": round(median["loop"] / median["bare"], 3),
        "step_ms": round(1000 * config.batch / median["loop"], 1),
        "compile_s": round(compile_s, 1),
        "precision": precision,
        "jit_compile": jit,
        "steps_per_execution": per_call,
        "batch": config.batch,
        "depth": config.depth,
        "latent": config.latent,
        "latent_width": config.latent_width,
        "steps": steps,
        "rounds": rounds,
        **{f"{name}_rounds": [round(v, 1) for v in values] for name, values in speeds.items()},
    }


def time_loop(
    model, strategy, iterator, *, batch: int, steps: int, per_call: int, jit: bool
) -> float:
    """Images/second of `steps` steps through the trainer's loop after one untimed call (the
    first call of each round, which a Throughput callback leaves out, as in training)."""
    start = int(model.step.numpy())
    total = start + per_call + steps
    loop.fit(
        model,
        strategy,
        iterator,
        schedule=loop.Schedule(total, total, per_call),
        start_step=start,
        callbacks=[cb.Throughput(batch)],
        verbose=0,
        jit=jit,
    )
    return model.history.history["images_per_second"][-1]
