import keras
import numpy as np
import pytest

from acai.bench import bench, flops, profile, timers
from acai.bench import reference as reference_lib
from acai.core.config import Config
from tests.test_model import tiny_model


def test_multiply_adds_counts_convolutions_and_dense_layers_in_nested_models():
    inner_in = keras.Input((8, 8, 2))
    inner = keras.Model(inner_in, keras.layers.Conv2D(4, 3, padding="same")(inner_in))
    x = keras.Input((8, 8, 2))
    h = keras.layers.Flatten()(keras.layers.ReLU()(inner(x)))
    outer = keras.Model(x, keras.layers.Dense(3)(h))
    assert flops.multiply_adds(outer) == 8 * 8 * 4 * 3 * 3 * 2 + 8 * 8 * 4 * 3


def test_flops_per_image_counts_the_passes_forward_and_back():
    model = tiny_model()
    encoder, decoder, critic, probe = (
        flops.multiply_adds(getattr(model, name))
        for name in ("encoder", "decoder", "critic", "probe")
    )
    forward = encoder + 2 * decoder + 2 * critic + probe
    assert min(encoder, decoder, critic, probe) > 0
    # backward twice the forward, and the autoencoder's gradient through the critic on the mixes
    assert flops.flops_per_image(model) == 2 * (3 * forward + critic)
    assert flops.flops_per_image(tiny_model(advweight=0.0)) == 2 * 3 * forward
    disc = tiny_model(discweight=0.1)
    extra = flops.multiply_adds(disc.discriminator)  # called on 3 batches, 2 of them decoded
    assert flops.flops_per_image(disc) == 2 * (3 * (forward + 3 * extra) + critic + 2 * extra)
    r1 = tiny_model(discweight=0.1, disc_r1=1.0)  # the input gradient and its gradient too
    assert flops.flops_per_image(r1) == 2 * (3 * (forward + 3 * extra) + critic + 5 * extra)
    dissolves = tiny_model(critic_dissolves=1.0)  # the critic on the blends, forward and back
    assert flops.flops_per_image(dissolves) == 2 * (3 * (forward + critic) + critic)


@pytest.mark.parametrize("mix", ["lerp", "slerp"])
def test_reference_step_computes_train_steps_losses_and_update_on_the_same_weights(
    monkeypatch, mix
):
    import tensorflow as tf

    from acai.core import model as model_lib

    config = Config(depth=4, latent=4, latent_width=4, batch=4, mix=mix)
    model = model_lib.build(config, image_shape=(32, 32, 3), num_classes=2, precision="float32")
    step = reference_lib.reference_step(
        config, image_shape=(32, 32, 3), num_classes=2, precision="float32", jit=False
    )
    ours = (model.encoder, model.decoder, model.critic, model.probe)
    for theirs, mine in zip(step.networks, ours, strict=True):
        theirs.set_weights(mine.get_weights())
    alpha = tf.constant([0.1, 0.2, 0.3, 0.4], shape=(4, 1, 1, 1))  # the same draw for both
    monkeypatch.setattr(reference_lib, "fold_alpha", lambda u: alpha)
    monkeypatch.setattr(model, "draw_alpha", lambda images: alpha)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32)
    y = np.array([0, 1, 0, 1], np.int32)
    before = model.encoder.get_weights()
    reference = float(step((x, y)))
    logs = {k: float(v) for k, v in model.train_step((x, y)).items()}
    ours_total = logs["loss_ae"] + config.advweight * logs["loss_ae_critic"]
    assert reference == pytest.approx(ours_total, rel=1e-5) and ours_total > 0
    for theirs, mine in zip(step.networks, ours, strict=True):  # the same Adam update
        for a, b in zip(theirs.get_weights(), mine.get_weights(), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    moved = [not np.allclose(a, b) for a, b in zip(before, model.encoder.get_weights())]
    assert any(moved)  # the step did update the weights it compared


def test_the_peak_timer_counts_two_flops_per_multiply_add(monkeypatch):
    timer = timers.peak_timer("float32", size=64, repeats=3)
    clock = iter([10.0, 12.0])  # the timed products take 2 seconds
    monkeypatch.setattr(timers.time, "perf_counter", lambda: next(clock))
    assert timer() == 3 * 2 * 64**3 / 2.0


def test_the_feature_loss_is_timed_and_counted():
    assert bench.untrained_feature_extractor(Config(), "float32") is None
    extractor = bench.untrained_feature_extractor(
        Config(perceptual=0.1, perceptual_model="c.keras"), "float32"
    )
    features = flops.multiply_adds(extractor)
    assert features > 0 and not extractor.trainable
    plain = flops.flops_per_image(tiny_model())
    model = tiny_model(perceptual=0.1, perceptual_model="c.keras", feature_extractor=extractor)
    # forward on the reconstructions and their input gradient; the photos come with the data
    assert flops.flops_per_image(model) == plain + 2 * 2 * features


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
        step = reference_lib.reference_step(
            config,
            image_shape=(32, 32, 3),
            num_classes=2,
            precision="float32",
            jit=False,
            feature_extractor=bench.untrained_feature_extractor(config, "float32"),
        )
        losses = [float(step((x, y))) for _ in range(3)]
        assert np.isfinite(losses).all()
        first[perceptual] = losses[0]
    assert first[0.1] > first[0.0] + 1e-6  # the feature distance of an imperfect reconstruction


def test_the_bench_command_times_and_profiles_a_step(tmp_path):
    import json
    import subprocess
    import sys

    tiny = ["--set", "depth=4", "--set", "latent=4", "--set", "batch=8", "--set", "ema=0.9"]
    result = subprocess.run(
        [sys.executable, "-m", "acai.cli", "bench", *tiny, "--steps", "2", "--rounds", "1"]
        + ["--profile", str(tmp_path / "trace")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["images_per_second"] > 0 and figures["flops_per_image"] > 0
    assert list((tmp_path / "trace").glob("plugins/profile/*/*.xplane.pb"))  # for TensorBoard
    ops = figures["op_times"]
    assert {"encoder", "decoder", "critic", "decoder backward"} <= ops["by_network"].keys()
    assert "Conv2D" in " ".join(ops["by_op_type"])
    assert 0 < sum(ops["by_network"].values()) <= ops["ms_per_step"] + 0.1


def test_ops_are_put_in_their_network():
    assert profile.op_network("gradient_tape/decoder_3/conv1/Conv2DBackpropInput") == (
        "decoder backward"
    )
    assert profile.op_network("features_1/conv0_0/Conv2D") == "features"
    assert profile.op_network("ema_decoder/conv/BiasAdd") == "other"  # not trained, not a network
    assert profile.op_network("MatMul_3") == "other"
