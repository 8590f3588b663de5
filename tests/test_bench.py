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


def test_flops_per_image_counts_the_passes_forward_and_back():
    model = tiny_model()
    encoder, decoder, critic, probe = (
        bench.multiply_adds(getattr(model, name))
        for name in ("encoder", "decoder", "critic", "probe")
    )
    forward = encoder + 2 * decoder + 2 * critic + probe
    assert min(encoder, decoder, critic, probe) > 0
    # backward twice the forward, and the autoencoder's gradient through the critic on the mixes
    assert bench.flops_per_image(model) == 2 * (3 * forward + critic)
    assert bench.flops_per_image(tiny_model(advweight=0.0)) == 2 * 3 * forward
    disc = tiny_model(discweight=0.1)
    extra = bench.multiply_adds(disc.discriminator)  # called on 3 batches, 2 of them decoded
    assert bench.flops_per_image(disc) == 2 * (3 * (forward + 3 * extra) + critic + 2 * extra)


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


def test_the_feature_loss_is_timed_and_counted():
    assert bench.untrained_feature_extractor(Config()) is None
    extractor = bench.untrained_feature_extractor(
        Config(perceptual=0.1, perceptual_model="c.keras")
    )
    features = bench.multiply_adds(extractor)
    assert features > 0 and not extractor.trainable
    model = tiny_model()
    plain = bench.flops_per_image(model)
    model.use_feature_loss(extractor, 0.1)
    # forward on the images and the reconstructions, and the reconstructions' input gradient
    assert bench.flops_per_image(model) == plain + 2 * 3 * features


def test_the_reference_step_adds_the_feature_loss_when_the_config_has_it():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32)
    y = np.array([0, 1, 0, 1], np.int32)
    first = {}
    for perceptual in (0.0, 0.1):
        config = Config(
            depth=4,
            latent=4,
            latent_width=4,
            batch=4,
            ema=0.9,
            perceptual=perceptual,
            perceptual_model="not-read.keras",
        )
        keras.utils.set_random_seed(0)  # the same networks and alpha both times
        step = bench.reference_step(
            config,
            image_shape=(32, 32, 3),
            num_classes=2,
            precision="float32",
            jit=False,
            feature_extractor=bench.untrained_feature_extractor(config),
        )
        losses = [float(step((x, y))) for _ in range(3)]
        assert np.isfinite(losses).all()
        first[perceptual] = losses[0]
    assert first[0.1] > first[0.0] + 1e-6  # the feature distance of an imperfect reconstruction
