"""XLA, the GPU's default path, run on the CPU: a few fit() steps compiled with XLA match the same
steps run as a TensorFlow graph, for each precision policy."""

import keras
import numpy as np
import pytest

from acai.training import data as data_lib
from tests.fixed_alpha import FixedAlpha
from tests.test_model import tiny_model

STEPS, BATCH = 3, 8
# 8x8 images and one scale: every kind of layer, in a fraction of the 32x32 networks' compile
# time (XLA compiles slowly on a CPU).
SHAPE = {"image_shape": (8, 8, 3), "latent_width": 16}  # one 2x down-sampling level

# The largest relative gap allowed between the two runs, for the logged losses and for the
# weights' change over the run. float32: the two compilers order sums and fuse ops differently
# (gaps measured here about 3e-7). float16 and bfloat16 keep 11 and 8 significant bits, and XLA
# rounds a fused chain of 16-bit ops once where the graph rounds after each op; the critic's
# output, a mean of terms that nearly cancel, squared in the losses, magnifies those gaps
# (measured here about 2e-3 and 5e-2).
TOLERANCE = {"float32": 1e-4, "mixed_float16": 1e-2, "mixed_bfloat16": 1e-1}


def sgd(_):
    # SGD moves each weight in proportion to its gradient (Adam's first steps move every weight
    # by about the learning rate), so the weights' change compares the gradients.
    return keras.optimizers.SGD(0.1)


def relative_gap(a, b):
    return np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(np.asarray(b))


@pytest.mark.parametrize("policy", list(TOLERANCE))
def test_xla_fit_matches_the_graph(policy):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (STEPS * BATCH, 8, 8, 3), dtype=np.uint8)
    labels = rng.integers(0, 2, STEPS * BATCH).astype(np.int32)
    graph, xla = (
        tiny_model(FixedAlpha, optimizer=sgd, policy=policy, jit_compile=jit, **SHAPE)
        for jit in (False, True)
    )
    xla.set_weights(graph.get_weights())
    initial = [w.numpy() for w in graph.trainable_weights]
    histories = [
        model.fit(
            data_lib.eval_dataset(images, labels, batch=BATCH), shuffle=False, verbose=0
        ).history
        for model in (graph, xla)
    ]
    assert xla.jit_compile and not graph.jit_compile
    if policy == "mixed_float16":
        assert isinstance(xla.ae_optimizer, keras.optimizers.LossScaleOptimizer)
    assert int(xla.step.numpy()) == int(graph.step.numpy()) == STEPS
    tolerance = TOLERANCE[policy]
    for key in ("loss_ae", "loss_ae_critic", "loss_critic", "loss_critic_real", "loss_probe"):
        assert relative_gap(histories[1][key], histories[0][key]) < tolerance, key
    moved = [
        np.concatenate(
            [(w.numpy() - w0).ravel() for w, w0 in zip(model.trainable_weights, initial)]
        )
        for model in (xla, graph)
    ]
    assert np.linalg.norm(moved[1]) > 0
    assert relative_gap(*moved) < tolerance
