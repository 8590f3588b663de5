import keras
import numpy as np
import pytest
import tensorflow as tf

from acai.core import losses
from acai.training import classifier as classifier_lib
from acai.training import features as features_lib


def test_the_feature_network_in_bfloat16_keeps_its_weights_features_and_gradients():
    keras.utils.set_random_seed(3)
    model = classifier_lib.build(10)
    fast = features_lib.in_policy(model, "mixed_bfloat16")
    assert features_lib.in_policy(model, "float32") is model
    assert fast.get_layer("stem").dtype_policy.name == "mixed_bfloat16"
    for w0, w1 in zip(model.weights, fast.weights):
        np.testing.assert_array_equal(w0.numpy(), w1.numpy())
    rng = np.random.default_rng(3)
    x = tf.constant(rng.uniform(-1, 1, (5, 32, 32, 3)), tf.float32)  # an odd batch
    y = tf.constant(rng.uniform(-1, 1, (5, 32, 32, 3)), tf.float32)
    found = []
    for net in (model, fast):
        extractor = features_lib.activations(net)
        with tf.GradientTape() as tape:
            tape.watch(y)
            loss = losses.feature_distance(extractor(x), extractor(y))
        found.append((float(loss), tape.gradient(loss, y).numpy()))
    (loss32, grad32), (loss16, grad16) = found
    assert loss32 > 0 and loss16 == pytest.approx(loss32, rel=2e-2)
    cosine = (grad32 * grad16).sum() / np.linalg.norm(grad32) / np.linalg.norm(grad16)
    norm16, norm32 = np.linalg.norm(grad16), np.linalg.norm(grad32)
    assert cosine > 0.99 and norm16 == pytest.approx(norm32, rel=5e-2)


def _randomised_batch_norm(model, rng, *, negative: bool):
    """Gives every batch normalisation of `model` trained-looking statistics; with `negative`
    a third of the scales are below zero (the max-pooled layers' hard case)."""
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            width = layer.gamma.shape[0]
            gamma = rng.uniform(0.5, 1.5, width) * np.where(
                negative & (np.arange(width) % 3 == 0), -1, 1
            )
            layer.set_weights(
                [
                    gamma,
                    rng.normal(0, 0.3, width),
                    rng.normal(0, 0.5, width),
                    rng.uniform(0.2, 2.0, width),
                ]
            )


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
@pytest.mark.parametrize("negative", [False, True])
def test_folding_batch_norm_keeps_the_features_and_their_gradients(policy, negative):
    keras.utils.set_random_seed(5)
    rng = np.random.default_rng(5)
    shape = (18, 22, 3)  # odd sizes: the max-pools drop a row and a column
    model = classifier_lib.build(10, image_shape=shape, widths=(8, 12, 16))
    _randomised_batch_norm(model, rng, negative=negative)
    net = features_lib.in_policy(model, policy)
    folded = features_lib.fold_batch_norm(net)
    kinds = {type(layer).__name__ for layer in folded.layers}
    assert "BatchNormalization" not in kinds
    assert ("ChannelAffine" in kinds) == negative  # only a negative scale needs it after a pool
    x = tf.constant(rng.uniform(-1, 1, (5,) + shape), tf.float32)  # an odd batch
    y = tf.constant(rng.uniform(-1, 1, (5,) + shape), tf.float32)
    found = []
    for m in (net, folded):
        extractor = features_lib.activations(m)
        with tf.GradientTape() as tape:
            tape.watch(y)
            maps = extractor(y)
            loss = losses.feature_distance(extractor(x), maps)
        found.append(([a.numpy().astype(np.float32) for a in maps], tape.gradient(loss, y).numpy()))
    (maps0, grad0), (maps1, grad1) = found
    assert len(maps0) == len(maps1) == 7
    tol = 1e-5 if policy == "float32" else 2e-2  # bfloat16 keeps 8 bits of mantissa
    for a, b in zip(maps0, maps1):
        assert a.shape == b.shape and np.linalg.norm(a) > 0
        assert np.linalg.norm(b - a) < tol * np.linalg.norm(a)
    cosine = (grad0 * grad1).sum() / np.linalg.norm(grad0) / np.linalg.norm(grad1)
    assert cosine > (0.9999 if policy == "float32" else 0.99)
    # the copy stands apart: training the original afterwards leaves it as it was
    model.get_layer("stem").kernel.assign(np.zeros(model.get_layer("stem").kernel.shape))
    np.testing.assert_array_equal(features_lib.activations(folded)(y)[0].numpy(), maps1[0])


def test_folding_leaves_a_network_that_is_not_a_chain_as_it_is():
    resnet = classifier_lib.build_resnet(10)
    assert features_lib.fold_batch_norm(resnet) is resnet
