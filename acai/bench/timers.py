"""Timers for the bench: each compiles its way of stepping once, then times rounds of it."""

from __future__ import annotations

import time

import tensorflow as tf

from acai.training import callbacks as cb
from acai.training import loop

PEAK_SIZE = 2048  # the peak is timed on (PEAK_SIZE, PEAK_SIZE) @ (PEAK_SIZE, PEAK_SIZE)


def alternate(timers: dict, rounds: int) -> dict:
    """Each timer's figures over `rounds` rounds, the timers taking turns within each round, so
    that a shared machine's noise hits all alike."""
    speeds = {name: [] for name in timers}
    for _ in range(rounds):
        for name, timer in timers.items():
            speeds[name].append(timer())
    return speeds


def step_timer(step, iterator, steps: int, warmup: int):
    """Compiles a step function of (images, labels) batches; returns a function timing `steps`
    steps of it on `iterator`, in images/second."""
    for _ in range(warmup + 1):
        step(next(iterator))

    def time_step():
        start = time.perf_counter()
        for _ in range(steps):
            batch = next(iterator)
            out = step(batch)
        float(tf.nest.flatten(out)[0])  # wait for the last step
        return steps * int(tf.shape(batch[0])[0]) / (time.perf_counter() - start)

    return time_step


def keras_fit_timer(keras_model, dataset, *, batch: int, steps: int, warmup: int):
    """Compiles Keras' `fit()` on `keras_model`; returns a function timing `steps` steps of it
    with the trainer's Throughput callback, in images/second."""
    keras_model.fit(dataset(), steps_per_epoch=warmup, epochs=1, verbose=0, shuffle=False)

    def time_keras_fit():
        # Throughput skips the first batch of the epoch, so run one extra.
        keras_model.fit(
            dataset(),
            steps_per_epoch=steps + 1,
            epochs=1,
            verbose=0,
            shuffle=False,
            callbacks=[cb.Throughput(batch)],
        )
        return keras_model.history.history["images_per_second"][-1]

    return time_keras_fit


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


def peak_timer(dtype: str, *, size: int = PEAK_SIZE, repeats: int = 3):
    """A function timing `repeats` (size, size) matmuls in `dtype`, returning FLOP/s.

    A convolution runs as this kernel, in the step's compute dtype, so its speed in the same
    process is the peak the step is measured against.
    """
    a = tf.cast(tf.random.uniform((size, size), -1.0, 1.0, seed=1), dtype)
    b = tf.cast(tf.random.uniform((size, size), -1.0, 1.0, seed=2), dtype)
    matmul = tf.function(tf.linalg.matmul)
    float(matmul(a, b)[0, 0])  # traces

    def time_peak():
        start = time.perf_counter()
        for _ in range(repeats):
            c = matmul(a, b)
        float(c[0, 0])
        return repeats * 2 * size**3 / (time.perf_counter() - start)

    return time_peak
