import keras
import numpy as np

from acai import bench
from acai.config import Config
from tests.test_model import tiny_model


def test_multiply_adds_counts_convolutions_and_dense_layers_in_nested_models():
    inner_in = keras.Input((8, 8, 2))
    inner = keras.Model(inner_in, keras.layers.Conv2D(4, 3, padding="same")(inner_in))
    x = keras.Input((8, 8, 2))
    h = keras.layers.Flatten()(keras.layers.ReLU()(inner(x)))
    outer = keras.Model(x, keras.layers.Dense(3)(h))
    assert bench.multiply_adds(outer) == 8 * 8 * 4 * 3 * 3 * 2 + 8 * 8 * 4 * 3


def test_flops_per_image_counts_two_decoder_and_two_critic_passes_forward_and_back():
    model = tiny_model()
    forward = (
        bench.multiply_adds(model.encoder)
        + 2 * bench.multiply_adds(model.decoder)
        + 2 * bench.multiply_adds(model.critic)
        + bench.multiply_adds(model.probe)
    )
    assert bench.multiply_adds(model.decoder) > 0
    assert bench.flops_per_image(model) == 3 * 2 * forward


def test_reference_step_trains_the_same_networks_and_the_peak_is_timed():
    config = Config(depth=4, latent=4, latent_width=4, batch=4)
    step = bench.reference_step(
        config, image_shape=(32, 32, 3), num_classes=2, precision="float32", jit=False
    )
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32)
    y = np.array([0, 1, 0, 1], np.int32)
    losses = [float(step((x, y))) for _ in range(3)]
    assert np.isfinite(losses).all() and losses[-1] < losses[0]
    assert bench.peak_timer("float32", size=64, repeats=1)() > 0
