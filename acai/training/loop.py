"""The training loop: `model.train_step` under any tf.distribute strategy, callbacks driven by hand.

Keras' `fit()` cannot train under MultiWorkerMirroredStrategy (keras-team/keras#20585), and it
runs a whole `steps_per_execution` even past the end of an epoch. This loop runs the same
`train_step` inside `strategy.run`, exactly the steps asked for, and reads the device only
once per execution of `steps_per_execution` steps, when the callbacks get their logs.
"""

from __future__ import annotations

import dataclasses
import weakref

import keras
import tensorflow as tf

from acai.core.model import ACAI


@dataclasses.dataclass(frozen=True)
class Schedule:
    """Which steps to run: epochs of `steps_per_epoch` from step 0 to `total_steps`.

    A run resumed mid-epoch finishes that epoch, so checkpoints and logs stay on epoch ends.
    """

    total_steps: int
    steps_per_epoch: int
    steps_per_execution: int = 1

    @property
    def epochs(self) -> int:
        return -(-self.total_steps // self.steps_per_epoch)  # ceil

    def epoch_of(self, step: int) -> int:
        return min(step // self.steps_per_epoch, self.epochs - 1)

    def executions(self, epoch: int, step: int) -> list[int]:
        """The step counts of each call into the device, from `step` to the end of `epoch`."""
        end = min((epoch + 1) * self.steps_per_epoch, self.total_steps)
        counts, left = [], end - step
        while left > 0:
            counts.append(min(self.steps_per_execution, left))
            left -= counts[-1]
        return counts


def distribute(strategy: tf.distribute.Strategy, dataset_fn):
    """An iterator over per-replica batches; `dataset_fn(input_context)` builds one worker's
    shard with per-replica batches (see `tf.distribute.InputContext`)."""
    return iter(strategy.distribute_datasets_from_function(dataset_fn))


def train_function(model: ACAI, strategy: tf.distribute.Strategy, *, jit: bool = False):
    """A compiled function `(iterator, n) -> logs` that runs n training steps.

    The step itself is XLA-compiled when `jit`; the loop around it cannot be (it reads the
    iterator). The logs are the metrics' running values, reduced over every replica. Made once
    per model, strategy and `jit`, so that later calls to `fit` do not trace again.
    """
    functions = _FUNCTIONS.setdefault(model, {})
    if (id(strategy), jit) not in functions:
        functions[id(strategy), jit] = _train_function(model, strategy, jit=jit)
    return functions[id(strategy), jit]


_FUNCTIONS = weakref.WeakKeyDictionary()  # model -> {(id(strategy), jit): function}


def _train_function(model: ACAI, strategy: tf.distribute.Strategy, *, jit: bool):
    step = tf.function(model.train_step, jit_compile=jit, reduce_retracing=True)

    @tf.function(reduce_retracing=True)
    def run(iterator, n):
        for _ in tf.range(n):
            strategy.run(step, args=(next(iterator),))
        return {m.name: m.result() for m in model.metrics}  # cross-replica: summed states

    return run


def fit(
    model: ACAI,
    strategy: tf.distribute.Strategy,
    iterator,
    *,
    schedule: Schedule,
    start_step: int,
    callbacks: list,
    validate=None,
    verbose: int = 1,
    jit: bool = False,
) -> dict:
    """Trains from `start_step` to `schedule.total_steps`, epoch by epoch.

    Args:
      model: the compiled model, built under `strategy`.
      strategy: the tf.distribute strategy (the default one for a single device).
      iterator: from `distribute`.
      schedule: the steps and epochs.
      start_step: the model's step when training starts (0, or where a checkpoint left off).
      callbacks: Keras callbacks; a ProgbarLogger and a History are added.
      validate: `() -> dict` of validation figures merged into each epoch's logs, or None.
      verbose: 0 silent, 1 progress bar, 2 one line per epoch.
      jit: XLA-compile the step.

    Returns:
      The last epoch's logs.
    """
    callback_list = keras.callbacks.CallbackList(
        callbacks,
        add_history=True,
        add_progbar=verbose != 0,
        model=model,
        verbose=verbose,
        epochs=schedule.epochs,
        steps=schedule.steps_per_epoch,
    )
    run = train_function(model, strategy, jit=jit)
    model.stop_training = False
    step, logs = start_step, {}
    callback_list.on_train_begin()
    for epoch in range(schedule.epoch_of(start_step), schedule.epochs):
        model.reset_metrics()
        callback_list.on_epoch_begin(epoch)
        batch = step - epoch * schedule.steps_per_epoch  # > 0 when resuming mid-epoch
        for count in schedule.executions(epoch, step):
            callback_list.on_train_batch_begin(batch)
            logs = run(iterator, tf.constant(count, tf.int64))
            batch, step = batch + count, step + count
            callback_list.on_train_batch_end(batch - 1, logs)
            if model.stop_training:
                break
        logs = {k: float(v) for k, v in logs.items()}
        if validate is not None and not model.stop_training:
            logs.update({f"val_{k}": v for k, v in validate().items()})
        callback_list.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    callback_list.on_train_end(logs)
    return logs
