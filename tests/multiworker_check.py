"""Run as a script, once per worker: a few ACAI fit() steps under MultiWorkerMirroredStrategy.

TF_CONFIG (set by the caller) names the workers. Prints one JSON line with this worker's
losses and a checksum of its weights, which every worker must agree on.
"""

import json

import keras
import numpy as np
import tensorflow as tf

from acai import data as data_lib
from acai import model as model_lib

STEPS, BATCH = 3, 8


def main():
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    keras.utils.set_random_seed(0)  # the same initial weights on every worker
    with strategy.scope():
        model = model_lib.ACAI(image_shape=(32, 32, 3), num_classes=2, depth=4, latent=4, scales=3)
        model.compile(**{name: keras.optimizers.Adam(1e-3) for name in model_lib.OPTIMIZERS})
        model.build_optimizers()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (STEPS * BATCH, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 2, STEPS * BATCH).astype(np.int32)
    history = model.fit(
        data_lib.eval_dataset(images, labels, batch=BATCH), epochs=1, verbose=0, shuffle=False
    ).history
    weights = [w.numpy() for w in model.trainable_weights]
    print(
        json.dumps(
            {
                "workers": strategy.cluster_resolver.cluster_spec().num_tasks("worker"),
                "replicas": strategy.num_replicas_in_sync,
                "step": int(model.step.numpy()),
                "losses": {k: v[-1] for k, v in history.items()},
                "checksum": float(sum(np.abs(w).sum() for w in weights)),
            }
        )
    )


if __name__ == "__main__":
    main()
