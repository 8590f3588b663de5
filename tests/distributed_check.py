"""Run as a script: one ACAI fit() over 2 logical CPU replicas against the same on one device.

TensorFlow must split the CPU before it initialises, hence a separate process. Prints one JSON
line with the largest differences found.
"""

import json
import sys

import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

import fixed_alpha  # noqa: E402  (beside this script)
import keras  # noqa: E402
import numpy as np  # noqa: E402

from acai.training import data as data_lib  # noqa: E402

STEPS, BATCH = 3, 8


def main():
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (STEPS * BATCH, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 2, STEPS * BATCH).astype(np.int32)

    def dataset():  # the same batches in the same order for both runs
        return data_lib.eval_dataset(images, labels, batch=BATCH)

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with mirrored.scope():
        twin = fixed_alpha.build(mix_groups=1)  # each replica reverses its own 4 images
    single = fixed_alpha.build(mix_groups=2)  # one device, reversing within the same two halves
    ungrouped = fixed_alpha.build(
        mix_groups=1
    )  # one device, reversing the whole batch: must differ
    initial = twin.get_weights()
    single.set_weights(initial)
    ungrouped.set_weights(initial)
    h_twin = twin.fit(dataset(), epochs=1, verbose=0, shuffle=False).history
    h_single = single.fit(dataset(), epochs=1, verbose=0, shuffle=False).history
    ungrouped.fit(dataset(), epochs=1, verbose=0, shuffle=False)

    def largest_gap(a, b):
        return max(float(np.abs(np.asarray(x) - np.asarray(y)).max()) for x, y in zip(a, b))

    def trained(model):  # the trainable weights of all four networks
        return [w.numpy() for w in model.trainable_weights]

    loss_diff = max(abs(h_twin[k][-1] - h_single[k][-1]) for k in h_single)
    weight_diff = largest_gap(trained(twin), trained(single))
    moved = largest_gap(trained(twin), [initial[i] for i in _trainable_indices(twin)])
    ungrouped_diff = largest_gap(trained(twin), trained(ungrouped))
    averages = [net.weights for net in twin.sampler], [net.weights for net in single.sampler]
    average_diff = largest_gap(sum(averages[0], []), sum(averages[1], []))
    average_lag = largest_gap(sum(averages[0], []), twin.encoder.weights + twin.decoder.weights)

    # A checkpoint written with 2 replicas restores into a model on 1 device.
    path = tf.train.Checkpoint(model=twin).write(sys.argv[1])
    restored = fixed_alpha.build(mix_groups=1)
    tf.train.Checkpoint(model=restored).read(path).assert_existing_objects_matched()
    restore_diff = largest_gap(twin.get_weights(), restored.get_weights())
    print(
        json.dumps(
            {
                "replicas": mirrored.num_replicas_in_sync,
                "steps": int(twin.step.numpy()),
                "loss_diff": loss_diff,
                "weight_diff": weight_diff,
                "restore_diff": restore_diff,
                "weights_moved": moved,
                "ungrouped_weight_diff": ungrouped_diff,
                "average_diff": average_diff,
                "average_lag": average_lag,
                "losses": {k: v[-1] for k, v in h_twin.items()},
            }
        )
    )


def _trainable_indices(model):
    trainable = {id(w) for w in model.trainable_weights}
    return [i for i, w in enumerate(model.weights) if id(w) in trainable]


if __name__ == "__main__":
    main()
