"""Run as a script: three ACAI steps of `acai.training.loop` under MultiWorkerMirroredStrategy, or
the same three steps on one device.

    python multiworker_check.py worker OUT.npz   # TF_CONFIG (set by the caller) names the workers
    python multiworker_check.py single OUT.npz   # one device, mix_groups=2

Both save the losses after the last step and every trainable weight to OUT.npz. Each of the two
workers reads its own half of every global batch of 8; the single device reads the whole batch,
mixing latents within the same two halves.
"""

import sys

import fixed_alpha  # beside this script
import keras
import numpy as np
import tensorflow as tf

from acai.training import data as data_lib
from acai.training import loop

STEPS, BATCH, WORKERS = 3, 8, 2


def build(mix_groups):
    keras.utils.set_random_seed(0)  # the same initial weights in every process
    return fixed_alpha.build(mix_groups)


def batches():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (STEPS * BATCH, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 2, STEPS * BATCH).astype(np.int32)
    return data_lib.eval_dataset(images, labels, batch=BATCH)


def main(mode, out):
    if mode == "worker":
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        with strategy.scope():
            model = build(mix_groups=1)

        def shard(context):  # worker i takes images 4i..4i+3 of every batch of 8
            half = context.get_per_replica_batch_size(BATCH)
            i = context.input_pipeline_id
            return batches().map(
                lambda x, y: (x[half * i : half * (i + 1)], y[half * i : half * (i + 1)])
            )

        iterator = loop.distribute(strategy, shard)
    else:
        strategy = tf.distribute.get_strategy()
        model = build(mix_groups=WORKERS)
        iterator = loop.distribute(strategy, lambda context: batches())
    initial = [w.numpy() for w in model.trainable_weights]
    logs = loop.fit(
        model,
        strategy,
        iterator,
        schedule=loop.Schedule(STEPS, STEPS),
        start_step=0,
        callbacks=[],
        verbose=0,
    )
    np.savez(
        out,
        replicas=strategy.num_replicas_in_sync,
        step=int(model.step.numpy()),
        losses=np.array([logs[k] for k in sorted(logs)]),
        moved=max(np.abs(w.numpy() - w0).max() for w, w0 in zip(model.trainable_weights, initial)),
        **{f"w{i}": w.numpy() for i, w in enumerate(model.trainable_weights)},
    )


if __name__ == "__main__":
    main(*sys.argv[1:])
