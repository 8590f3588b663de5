import keras
import numpy as np
import pytest
import tensorflow as tf

from acai.core import losses, networks, parts, walks
from acai.core import model as model_lib
from acai.core.config import Config
from acai.core.model import ACAI


def test_fold_alpha_maps_into_half_interval():
    u = np.linspace(0, 1, 101).astype(np.float32)
    a = np.asarray(losses.fold_alpha(u))
    assert a.min() == 0 and a.max() == 0.5
    np.testing.assert_allclose(a, np.minimum(u, 1 - u), atol=1e-7)


def test_mix_latents_pairs_each_example_with_its_mirror():
    z = np.arange(3, dtype=np.float32).reshape(3, 1)
    mixed = np.asarray(losses.mix_latents(z, np.array([[0.0], [0.5], [1.0]], np.float32)))
    np.testing.assert_allclose(mixed[:, 0], [2.0, 1.0, 2.0])


def test_slerp_mixing_walks_the_great_circle_from_the_partner():
    rng = np.random.default_rng(3)
    z = rng.normal(size=(4, 2, 2, 3)).astype(np.float32)
    alpha = np.array([0.0, 0.2, 0.5, 1.0], np.float32).reshape(4, 1, 1, 1)
    mixed = np.asarray(losses.mix_latents(z, alpha, path="slerp"))
    partner = z[::-1]
    for i, t in enumerate(alpha.ravel()):  # alpha of the way from the partner to z, per latent
        expected = np.asarray(walks.slerp(partner[i : i + 1], z[i : i + 1], float(t)))
        np.testing.assert_allclose(mixed[i : i + 1], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(mixed[0], partner[0], atol=1e-6)
    np.testing.assert_allclose(mixed[3], z[3], atol=1e-6)
    lerped = np.asarray(losses.mix_latents(z, alpha))
    assert (norms(mixed[1:3]) > norms(lerped[1:3])).all()  # lerp cuts the corner, slerp not


def test_slerp_mixing_has_finite_gradients_for_parallel_and_self_pairs():
    # An odd batch mixes its middle latent with itself; a duplicate pair is parallel.
    z = tf.Variable(np.array([[1.0, 2.0], [3.0, -1.0], [2.0, 4.0]], np.float32))
    for latents in (z, tf.Variable([[1.0, 2.0], [2.0, 4.0]])):
        alpha = tf.fill((latents.shape[0], 1), 0.3)
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(losses.mix_latents(latents, alpha, path="slerp") ** 2)
        grad = tape.gradient(loss, latents).numpy()
        assert np.isfinite(grad).all() and np.abs(grad).sum() > 0


def test_losses_match_hand_computation():
    x = np.ones((2, 2, 2, 1), np.float32)
    x_hat = np.zeros_like(x)
    critic_mix = np.array([[0.2], [0.4]], np.float32)
    total, mse, fool = losses.autoencoder_loss(x, x_hat, critic_mix, advweight=0.5)
    assert float(mse) == pytest.approx(1.0)
    assert float(fool) == pytest.approx((0.04 + 0.16) / 2)
    assert float(total) == pytest.approx(1.0 + 0.5 * 0.1)
    alpha = np.array([[0.1], [0.4]], np.float32)
    total, regress, real = losses.critic_loss(
        critic_mix, np.array([[1.0], [0.0]], np.float32), alpha
    )
    assert float(regress) == pytest.approx((0.01 + 0.0) / 2)
    assert float(real) == pytest.approx(0.5)
    assert float(total) == pytest.approx(0.505)
    assert float(losses.rmse_255(1.0)) == pytest.approx(127.5)


# --- lerp and slerp --------------------------------------------------------------------------


def norms(x):
    return np.linalg.norm(np.asarray(x).reshape(len(x), -1), axis=1)


def test_interpolations_are_exact_at_the_ends():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 5, 4, 4, 16)).astype(np.float32)
    for f in (walks.lerp, walks.slerp):
        np.testing.assert_array_equal(np.asarray(f(a, b, 0.0)), a)
        np.testing.assert_array_equal(np.asarray(f(a, b, 1.0)), b)


def test_slerp_keeps_the_norm_of_equal_norm_inputs():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(2, 8, 64)).astype(np.float32)
    b *= (norms(a) / norms(b))[:, None]
    for t in (0.1, 0.5, 0.77):
        np.testing.assert_allclose(norms(walks.slerp(a, b, t)), norms(a), rtol=1e-5)
    assert (norms(walks.lerp(a, b, 0.5)) < norms(a) * 0.95).all()  # lerp cuts the corner


def test_slerp_of_orthogonal_unit_vectors_follows_the_circle():
    a, b = np.array([[1.0, 0.0]], np.float32), np.array([[0.0, 1.0]], np.float32)
    mid = np.asarray(walks.slerp(a, b, 0.5))
    np.testing.assert_allclose(mid, [[np.sqrt(0.5), np.sqrt(0.5)]], rtol=1e-6)


def test_slerp_parallel_antipodal_and_zero_inputs_are_finite():
    a = np.array([[1.0, 2.0], [1.0, 2.0], [0.0, 0.0], [0.0, 0.0]], np.float32)
    b = np.array([[2.0, 4.0], [-1.0, -2.0], [1.0, 1.0], [0.0, 0.0]], np.float32)
    out = np.asarray(walks.slerp(a, b, 0.25))
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[:2], np.asarray(walks.lerp(a, b, 0.25))[:2], rtol=1e-6)


def test_vector_t_gives_one_batch_per_position():
    rng = np.random.default_rng(2)
    a, b = rng.normal(size=(2, 3, 2, 2, 4)).astype(np.float32)
    t = np.linspace(0, 1, 7, dtype=np.float32)
    for f in (walks.lerp, walks.slerp):
        out = np.asarray(f(a, b, t))
        assert out.shape == (7, 3, 2, 2, 4)
        np.testing.assert_allclose(out[3], np.asarray(f(a, b, t[3])), rtol=1e-5, atol=1e-6)


# --- the model -------------------------------------------------------------------------------


def tiny_model(
    cls=ACAI,
    optimizer=networks.FusedAdam,
    jit_compile=False,
    policy="float32",
    feature_extractor=None,
    image_shape=(32, 32, 3),
    **fields,
):
    """A compiled ACAI of depth 4 and a 4x4x4 latent; `fields` set the rest of its config."""
    config = Config(**{"depth": 4, "latent": 4, "latent_width": 4, **fields})
    model = cls(
        config,
        image_shape=image_shape,
        num_classes=2,
        policy=policy,
        feature_extractor=feature_extractor,
    )
    model.compile(
        **{name: optimizer(1e-3) for name in model.optimizer_names}, jit_compile=jit_compile
    )
    model.build_optimizers()
    return model


def test_plain_autoencoder_loss_does_not_reach_the_critic():
    x = tf.ones((2, 4, 4, 3))
    x_hat = tf.zeros((2, 4, 4, 3))
    critic_mix = tf.constant([[0.2], [0.4]])
    for advweight, connected in ((0.0, False), (0.5, True)):
        with tf.GradientTape() as tape:
            tape.watch(critic_mix)
            total, mse, _ = losses.autoencoder_loss(x, x_hat, critic_mix, advweight=advweight)
        # advweight = 0 leaves the critic out of the autoencoder's backward pass entirely
        assert (tape.gradient(total, critic_mix) is not None) == connected
    assert float(total) == pytest.approx(float(mse) + 0.5 * 0.1)


@pytest.mark.parametrize("policy", ["float32", "mixed_float16"])
def test_one_train_step_updates_all_three_networks(policy):
    model = tiny_model(policy=policy)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32)
    y = np.array([0, 1, 0, 1], np.int32)
    before = {
        n: [w.numpy().copy() for w in getattr(model, n).trainable_weights]
        for n in ("encoder", "decoder", "critic", "probe")
    }
    logs = model.train_step((x, y))
    for name, weights in before.items():
        after = getattr(model, name).trainable_weights
        assert any(not np.array_equal(w0, w1.numpy()) for w0, w1 in zip(weights, after)), name
    assert int(model.step.numpy()) == 1
    for key in (
        "loss_ae",
        "loss_ae_critic",
        "loss_critic",
        "loss_critic_real",
        "loss_probe",
        "rmse",
        "probe_accuracy",
    ):
        assert np.isfinite(float(logs[key])), key


def test_train_step_mixes_along_the_models_path(monkeypatch):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32)
    y = np.array([0, 1, 0, 1], np.int32)
    mixes = []

    def spy(z, alpha, **kwargs):
        out = mix_latents(z, alpha, **kwargs)
        mixes.append((kwargs["path"], np.asarray(out), np.asarray(z), np.asarray(alpha)))
        return out

    mix_latents = losses.mix_latents
    monkeypatch.setattr(model_lib, "mix_latents", spy)
    for mix in ("lerp", "slerp"):
        model = tiny_model(mix=mix)
        assert model.get_config()["config"]["mix"] == mix
        logs = model.train_step((x, y))  # eager: the spy sees the step's own tensors
        assert all(np.isfinite(float(v)) for v in logs.values())
    assert [m[0] for m in mixes] == ["lerp", "slerp"]
    _, mixed, z, alpha = mixes[1]
    assert mixed.shape == z.shape
    for i in range(4):
        row = walks.slerp(z[::-1][i : i + 1], z[i : i + 1], float(alpha[i].ravel()[0]))
        np.testing.assert_allclose(mixed[i : i + 1], np.asarray(row), rtol=1e-4, atol=1e-6)


def test_the_probe_reads_the_latents_it_trains_on_not_the_moving_averages():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32)
    model = tiny_model(ema=0.999)
    for w in model.ema_encoder.weights:  # an average far from the weights
        w.assign(np.zeros(w.shape, w.dtype))
    live = np.asarray(model.probe(model.encoder(x, training=False)))
    np.testing.assert_allclose(np.asarray(model.probe_logits(x)), live, rtol=1e-6)
    assert not np.allclose(np.asarray(model.probe(model.encode(x))), live)


def test_plain_autoencoder_ignores_the_critic():
    # With advweight 0 the autoencoder's update must not depend on the critic's weights.
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32)
    y = np.zeros(4, np.int32)
    results = []
    for critic_seed in (1, 2):
        keras.utils.set_random_seed(0)
        model = tiny_model(advweight=0.0)
        keras.utils.set_random_seed(critic_seed)
        for w in model.critic.trainable_weights:
            w.assign(np.random.default_rng(critic_seed).normal(0, 0.1, w.shape))
        model.train_step((x, y))
        results.append([w.numpy() for w in model.decoder.trainable_weights])
    for w0, w1 in zip(*results):
        np.testing.assert_allclose(w0, w1, rtol=1e-6, atol=1e-7)


def test_interpolate_decodes_the_latent_path():
    model = tiny_model()
    rng = np.random.default_rng(0)
    a, b = rng.uniform(-1, 1, (2, 3, 32, 32, 3)).astype(np.float32)
    ends = np.asarray(model.interpolate(a, b, np.array([0.0, 1.0], np.float32)))
    assert ends.shape == (2, 3, 32, 32, 3)
    np.testing.assert_allclose(ends[0], np.asarray(model(a)), atol=1e-5)
    np.testing.assert_allclose(ends[1], np.asarray(model(b)), atol=1e-5)


def test_feature_distance_is_the_mean_over_layers_of_each_layers_mse():
    a = [np.zeros((2, 4, 4, 3), np.float32), np.ones((2, 2), np.float32)]
    b = [np.full((2, 4, 4, 3), 2.0, np.float32), np.array([[1, 1], [1, 5]], np.float32)]
    # layer 1: every difference 2 -> mse 4; layer 2: one difference of 4 in 4 -> mse 4
    assert float(losses.feature_distance(a, b)) == pytest.approx((4.0 + 16 / 4) / 2)
    assert float(losses.feature_distance(a, a)) == 0.0


def _extractor():
    x = keras.Input((32, 32, 3))
    h1 = keras.layers.ReLU()(keras.layers.Conv2D(4, 3, padding="same")(x))
    h2 = keras.layers.ReLU()(keras.layers.Conv2D(4, 3, strides=2, padding="same")(h1))
    extractor = keras.Model(x, [h1, h2])
    extractor.trainable = False
    return extractor


def test_the_photos_features_from_the_data_give_the_step_it_computes_itself():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (5, 32, 32, 3), dtype=np.uint8)  # an odd batch
    x, y = tf.constant(images.astype(np.float32) / 127.5 - 1), np.zeros(5, np.int32)
    extractor = _extractor()
    feature_loss = {"perceptual": 1.0, "perceptual_model": "classifier.keras"}
    part = tiny_model(feature_extractor=extractor, **feature_loss).part("features")
    known = part.per_image(images)
    assert [k.shape for k in known] == [(5, 32, 32, 4), (5, 16, 16, 4)]
    assert part.per_image(images, limit_bytes=1000) is None
    found = []
    zeros = tuple(tf.zeros(k.shape) for k in known)  # to show the step reads what it is given
    for data in ((x, y), (x, y, {"features": known}), (x, y, {"features": zeros})):
        keras.utils.set_random_seed(0)  # the same networks and alpha both times
        model = tiny_model(feature_extractor=extractor, **feature_loss)
        logs = model.train_step(data)
        found.append((logs, [w.numpy() for w in model.trainable_weights]))
    (logs0, weights0), (logs1, weights1), (other, _) = found
    assert float(logs0["loss_ae_features"]) > 0
    assert float(other["loss_ae_features"]) != pytest.approx(float(logs0["loss_ae_features"]))
    for name in ("loss_ae", "loss_ae_features", "loss_critic"):
        assert float(logs1[name]) == pytest.approx(float(logs0[name]), rel=1e-5)
    for w0, w1 in zip(weights0, weights1):
        np.testing.assert_allclose(w1, w0, rtol=1e-4, atol=1e-6)


def test_feature_loss_trains_the_autoencoder_and_leaves_the_extractor_alone():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32)
    y = np.zeros(4, np.int32)
    decoders = []
    for with_features in (False, True):
        keras.utils.set_random_seed(0)
        count = len(tiny_model(advweight=0.0).weights)
        extractor = _extractor() if with_features else None
        if with_features:
            frozen = [w.numpy().copy() for w in extractor.weights]
        keras.utils.set_random_seed(0)
        model = tiny_model(
            advweight=0.0,
            perceptual=1.0,
            perceptual_model="classifier.keras",
            feature_extractor=extractor,
        )
        logs = model.train_step((x, y))
        decoders.append([w.numpy() for w in model.decoder.trainable_weights])
    assert float(logs["loss_ae_features"]) > 0
    # the extractor is frozen, and outside the model's weights (so checkpoints leave it out)
    assert all(np.array_equal(w0, w.numpy()) for w0, w in zip(frozen, extractor.weights))
    assert len(model.weights) == count
    assert any(not np.allclose(a, b) for a, b in zip(*decoders))  # the loss reached the decoder


def test_realism_losses_are_the_non_saturating_gan_losses():
    real = np.array([[0.0], [2.0]], np.float32)
    fake = np.array([[-1.0], [0.0], [3.0]], np.float32)
    disc, decoder = losses.realism_losses(real, fake)

    def softplus(v):
        return np.log1p(np.exp(v))

    assert float(disc) == pytest.approx(softplus(-real).mean() + softplus(fake).mean(), rel=1e-6)
    assert float(decoder) == pytest.approx(softplus(-fake).mean(), rel=1e-6)
    # a discriminator sure of every answer has nearly no loss; its decoder, a large one
    sure_disc, fooled_not = losses.realism_losses(np.full((2, 1), 20.0), np.full((2, 1), -20.0))
    assert float(sure_disc) < 1e-6 and float(fooled_not) == pytest.approx(20.0, rel=1e-6)


def test_hinge_realism_losses():
    real = np.array([[0.5], [2.0]], np.float32)
    fake = np.array([[-3.0], [0.0], [0.5]], np.float32)
    disc, decoder = losses.realism_losses(real, fake, kind="hinge")
    # relu(1 - real) = (0.5, 0); relu(1 + fake) = (0, 1, 1.5); the decoder's -fake
    assert float(disc) == pytest.approx(0.25 + 2.5 / 3, rel=1e-6)
    assert float(decoder) == pytest.approx(2.5 / 3, rel=1e-6)


def test_r1_penalty_is_the_squared_input_gradient_and_differentiable_again():
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(size=(3, 2, 2, 1)), tf.float32)
    w = tf.Variable(rng.normal(size=(1, 2, 2, 1)), dtype=tf.float32)

    def score(images):  # linear: its input gradient is w for every image
        return tf.reduce_sum(w * images * 2.0, axis=(1, 2, 3))[:, None]

    with tf.GradientTape() as tape:
        penalty, logits = losses.r1_penalty(score, x)
    np.testing.assert_allclose(logits.numpy(), score(x).numpy(), rtol=1e-6)
    assert float(penalty) == pytest.approx(4.0 * float(tf.reduce_sum(w * w)), rel=1e-5)
    np.testing.assert_allclose(tape.gradient(penalty, w).numpy(), 8.0 * w.numpy(), rtol=1e-5)


def test_r1_penalty_under_a_loss_scale_keeps_a_float16_input_gradient():
    # Two float16 factors of 1e-4: the input gradient, 1e-8, is below float16's smallest
    # number, so unscaled it flushes to zero; scaled by 2**15 it survives and is divided back.
    x = tf.ones((2, 4, 4, 1), tf.float32)
    small = tf.constant(1e-4, tf.float16)

    def score(images):
        return tf.reduce_sum(small * (small * tf.cast(images, tf.float16)), axis=(1, 2, 3))[:, None]

    flushed, _ = losses.r1_penalty(score, x)
    kept, logits = losses.r1_penalty(score, x, scale=2.0**15)
    assert float(flushed) == 0.0
    assert float(kept) == pytest.approx(16 * float(small) ** 4, rel=2e-2)  # 16 pixels of (1e-8)^2
    assert logits.dtype == tf.float16


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16"])
def test_r1_through_our_layers_matches_keras_layers(precision):
    # The gradient of a gradient passes through our LeakyReLU's and Conv2D's custom gradients.
    keras.utils.set_random_seed(2)
    ours = networks.critic((16, 16, 3), depth=4, latent=3, scales=2, dtype=precision)
    stock = networks.with_keras_layers(ours)
    x = tf.constant(np.random.default_rng(2).uniform(-1, 1, (3, 16, 16, 3)), tf.float32)
    found = []
    for net in (ours, stock):
        with tf.GradientTape() as tape:
            penalty, _ = losses.r1_penalty(lambda v, n=net: n(v, training=True), x)
        zero = tf.UnconnectedGradients.ZERO  # the last bias does not move an input gradient
        variables = [v.value for v in net.trainable_variables]  # the tf.Variables
        grads = tape.gradient(penalty, variables, unconnected_gradients=zero)
        found.append((float(penalty), grads))
    (p0, g0), (p1, g1) = found
    tolerance = 1e-5 if precision == "float32" else 2e-2
    assert p0 > 0 and p0 == pytest.approx(p1, rel=tolerance)
    for a, b in zip(g0, g1):
        scale = float(tf.reduce_max(tf.abs(b))) + 1e-12
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=tolerance * scale)


def test_a_discriminator_trains_and_its_loss_reaches_the_decoder():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32)
    y = np.zeros(4, np.int32)
    decoders = []
    for discweight in (0.0, 1.0):
        keras.utils.set_random_seed(0)
        model = tiny_model(discweight=discweight)
        if discweight:
            before = [w.numpy().copy() for w in model.discriminator.trainable_weights]
        logs = model.train_step((x, y))
        decoders.append([w.numpy() for w in model.decoder.trainable_weights])
    assert model.optimizer_names == (*model_lib.OPTIMIZERS, "disc_optimizer")
    assert np.isfinite(float(logs["loss_disc"])) and float(logs["loss_ae_disc"]) > 0
    after = model.discriminator.trainable_weights
    assert any(not np.array_equal(w0, w1.numpy()) for w0, w1 in zip(before, after))
    assert int(model.disc_optimizer.iterations.numpy()) == 1
    # the same seed builds the same autoencoder; only the discriminator's loss tells them apart
    assert any(not np.allclose(a, b) for a, b in zip(*decoders))


def test_a_discriminator_shown_mixes_only_leaves_the_reconstructions_to_their_own_losses():
    rng = np.random.default_rng(0)
    x, x_hat, x_mix = (
        tf.constant(rng.uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32)) for _ in range(3)
    )
    alpha = tf.constant(0.3, shape=(4, 1, 1, 1))
    step = parts.Step(x=x, x_hat=x_hat, x_mix=x_mix, alpha=alpha)
    config = Config(depth=4, latent=4, discweight=0.5, disc_loss="hinge", disc_fakes="mixes")
    part = parts.Realism(config, (32, 32, 3), policy="float32")
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([x_hat, x_mix])
        terms = part.terms(step)
    score = part.discriminator
    disc, fool = losses.realism_losses(score(x), score(x_mix), kind="hinge")
    assert float(terms.reported["loss_disc"]) == pytest.approx(float(disc), rel=1e-5)
    assert float(terms.losses["autoencoder"]) == pytest.approx(0.5 * float(fool), rel=1e-5)
    assert tape.gradient(terms.losses["autoencoder"], x_hat) is None
    assert tape.gradient(terms.losses["autoencoder"], x_mix) is not None
    both = parts.Realism(config.replace(disc_fakes="both"), (32, 32, 3), policy="float32")
    both.discriminator.set_weights(score.get_weights())
    with tf.GradientTape() as tape:
        tape.watch(x_hat)
        fool_both = both.terms(step).losses["autoencoder"]
    assert tape.gradient(fool_both, x_hat) is not None  # the default shows it both


def test_a_decoder_mlp_is_built_trained_and_kept_in_the_config():
    x = np.random.default_rng(0).uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32)
    model = tiny_model(decoder_mlp=1)
    before = model.decoder.get_layer("mlp0").kernel.numpy().copy()
    model.train_step((x, np.zeros(4, np.int32)))
    assert not np.array_equal(before, model.decoder.get_layer("mlp0").kernel.numpy())
    again = ACAI.from_config(model.get_config())
    assert again.config.decoder_mlp == 1
    assert again.decoder.count_params() == model.decoder.count_params()
    assert tiny_model().decoder.count_params() < model.decoder.count_params()


DISSOLVE_ALPHAS = [0.1, 0.2, 0.3, 0.5]


def dissolve_step():
    """A step of four reconstructions (in [-0.5, 0.5], so restoring contrast never clips) mixed
    with their mirror partners at DISSOLVE_ALPHAS."""
    rng = np.random.default_rng(0)
    x_hat = tf.constant(rng.uniform(-0.5, 0.5, (4, 32, 32, 3)).astype(np.float32))
    alpha = tf.constant(DISSOLVE_ALPHAS, shape=(4, 1, 1, 1))
    return parts.Step(x=x_hat, x_hat=x_hat, x_mix=x_hat, alpha=alpha)


def critic_error(critic, blends):
    """The critic's mean squared error in reading DISSOLVE_ALPHAS off the blends."""
    guess = np.asarray(critic(blends, training=True))
    return np.mean((guess - np.reshape(DISSOLVE_ALPHAS, (-1, 1))) ** 2)


def test_the_critic_shown_dissolves_reads_pixel_blends_of_the_mixed_pairs():
    step, model = dissolve_step(), tiny_model()
    part = parts.Dissolves(model.critic, weight=2.0)
    with tf.GradientTape() as tape:
        tape.watch(step.x_hat)
        terms = part.terms(step)
    x_hat, alpha = step.x_hat, step.alpha
    blends = alpha * x_hat + (1 - alpha) * x_hat[::-1]  # each image with its mirror partner
    expected = critic_error(model.critic, blends)
    assert float(terms.reported["loss_critic_dissolves"]) == pytest.approx(expected, rel=1e-5)
    assert float(terms.losses["critic"]) == pytest.approx(2 * expected, rel=1e-5)
    assert set(terms.losses) == {"critic"}
    assert tape.gradient(terms.losses["critic"], x_hat) is None  # the blends are constants


def test_the_critic_shown_contrast_restored_dissolves_reads_them_as_mixes():
    step, model = dissolve_step(), tiny_model()
    part = parts.ContrastDissolves(model.critic, weight=1.0)
    blends = np.asarray(part.blends(step))
    plain = np.asarray(parts.Dissolves(model.critic, weight=1.0).blends(step))
    a = np.reshape(DISSOLVE_ALPHAS, (4, 1))
    spread = step.x_hat.numpy().std(axis=(1, 2))  # (4, 3)
    wanted = a * spread + (1 - a) * spread[::-1]  # each blend's ends' contrast, mixed alike
    assert (plain.std(axis=(1, 2))[1:3] < 0.9 * wanted[1:3]).all()  # a blend loses contrast
    np.testing.assert_allclose(blends.std(axis=(1, 2)), wanted, rtol=1e-4)  # this one keeps it
    terms = part.terms(step)
    expected = critic_error(model.critic, blends)
    reported = float(terms.reported["loss_critic_dissolves_contrast"])
    assert reported == pytest.approx(expected, rel=1e-5)
    assert set(terms.losses) == {"critic"}


def test_both_kinds_of_dissolves_train_beside_each_other():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32)
    model = tiny_model(critic_dissolves=1.0, critic_dissolves_contrast=1.0)
    assert [p.name for p in model.parts] == ["dissolves", "dissolves_contrast"]
    logs = model.train_step((x, np.zeros(4, np.int32)))
    assert float(logs["loss_critic_dissolves"]) > 0
    assert float(logs["loss_critic_dissolves_contrast"]) > 0


def test_the_dissolves_term_trains_the_critic_and_leaves_the_autoencoders_step_alone():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32)
    y = np.zeros(4, np.int32)
    after = []
    for weight in (0.0, 1.0):
        keras.utils.set_random_seed(0)
        model = tiny_model(critic_dissolves=weight)
        logs = model.train_step((x, y))
        after.append(
            {n: [w.numpy() for w in getattr(model, n).weights] for n in ("decoder", "critic")}
        )
    assert float(logs["loss_critic_dissolves"]) > 0
    for w0, w1 in zip(after[0]["decoder"], after[1]["decoder"]):
        np.testing.assert_array_equal(w0, w1)
    assert any(not np.allclose(a, b) for a, b in zip(after[0]["critic"], after[1]["critic"]))


def test_an_r1_hinge_discriminator_with_its_own_adam_trains():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32)
    config = Config(depth=4, latent=4, discweight=1.0, disc_loss="hinge", disc_r1=1.0)
    config = config.replace(disc_depth=8, disc_lr=5e-4, disc_beta1=0.0, disc_beta2=0.99)
    model = model_lib.build(config, image_shape=(32, 32, 3), num_classes=10, precision="float32")
    body = model.discriminator.get_layer("discriminator_body")
    convs = [layer for layer in body.layers if isinstance(layer, keras.layers.Conv2D)]
    assert (
        convs[0].filters == 8 and model.critic.count_params() < model.discriminator.count_params()
    )
    optimizer = model.disc_optimizer
    assert (optimizer.beta_1, optimizer.beta_2) == (0.0, 0.99)
    assert float(optimizer.learning_rate) == pytest.approx(5e-4)
    logs = model.train_step((x, np.zeros(4, np.int32)))
    assert float(logs["loss_disc_r1"]) > 0 and np.isfinite(float(logs["loss_disc"]))
    again = ACAI.from_config(model.get_config())  # the config round-trips, the model with it
    assert again.config == config
    assert again.discriminator.count_params() == model.discriminator.count_params()


def test_an_r1_discriminator_steps_under_mixed_float16_loss_scaling():
    x = np.random.default_rng(0).uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32)
    config = Config(depth=4, latent=4, discweight=1.0, disc_loss="hinge", disc_r1=1.0)
    model = model_lib.build(
        config.replace(disc_depth=4),
        image_shape=(32, 32, 3),
        num_classes=10,
        precision="mixed_float16",
    )
    assert isinstance(model.disc_optimizer, keras.optimizers.LossScaleOptimizer)
    logs = model.train_step((x, np.zeros(4, np.int32)))
    assert float(logs["loss_disc_r1"]) > 0 and np.isfinite(float(logs["loss_disc_r1"]))


def test_compile_fills_in_the_configs_optimizers_and_refuses_one_without_a_network():
    optimizers = {name: keras.optimizers.Adam(1e-3) for name in model_lib.OPTIMIZERS}
    config = Config(depth=4, latent=4, lr=2e-4, discweight=0.1, disc_lr=1e-3, disc_beta1=0.0)
    model = ACAI(config)
    model.compile()
    assert float(model.ae_optimizer.learning_rate) == pytest.approx(2e-4)
    assert float(model.disc_optimizer.learning_rate) == pytest.approx(1e-3)
    assert model.disc_optimizer.beta_1 == 0.0
    plain = ACAI(Config(depth=4, latent=4))
    assert plain.discriminator is None and plain.optimizer_names == tuple(model_lib.OPTIMIZERS)
    with pytest.raises(ValueError, match="has no discriminator"):
        plain.compile(**optimizers, disc_optimizer=keras.optimizers.Adam(1e-3))


def test_ema_decay_starts_low_and_reaches_the_set_decay():
    decays = [float(losses.ema_decay(0.999, step)) for step in (0, 10, 10_000)]
    assert decays == pytest.approx([0.1, 11 / 20, 0.999])


def test_the_moving_average_follows_the_weights_and_serves_inference():
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32)
    y = np.zeros(4, np.int32)
    model = tiny_model(ema=0.9)
    assert model.sampler == (model.ema_encoder, model.ema_decoder)
    for averages, net in ((model.ema_encoder, model.encoder), (model.ema_decoder, model.decoder)):
        assert not averages.trainable_weights  # the optimizers never touch them
        for a, w in zip(averages.weights, net.weights):
            np.testing.assert_array_equal(a.numpy(), w.numpy())  # they start as the weights
    for step in range(3):
        before = [a.numpy().copy() for a in model.ema_decoder.weights]
        model.train_step((x, y))
        decay = float(losses.ema_decay(0.9, step))
        for a0, a, w in zip(before, model.ema_decoder.weights, model.decoder.weights):
            expected = decay * a0 + (1 - decay) * w.numpy()
            np.testing.assert_allclose(a.numpy(), expected, rtol=1e-5, atol=1e-7)
    # inference decodes with the average, training with the weights: after 3 steps they differ
    z = model.encode(x)
    np.testing.assert_allclose(np.asarray(z), np.asarray(model.ema_encoder(x)), atol=1e-6)
    assert not np.allclose(np.asarray(model.decode(z)), np.asarray(model.decoder(z)), atol=1e-6)
    # so does reconstructing, with model(x)
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(model.decode(z)), atol=1e-6)
    plain = tiny_model()
    assert plain.ema_encoder is None and plain.sampler == (plain.encoder, plain.decoder)


def test_our_layers_take_the_same_step_as_keras_own(monkeypatch):
    # networks.Conv2D takes its matmul kernel gradient on every map here, in float32 too
    monkeypatch.setattr(networks.Conv2D, "MATMUL_GRAD_PIXELS", 32 * 32)
    monkeypatch.setattr(networks.Conv2D, "MATMUL_GRAD_DTYPES", ("float32",))
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (4, 32, 32, 3)).astype(np.float32)
    y = np.array([0, 1, 0, 1], np.int32)
    steps = []
    for stock in (False, True):
        keras.utils.set_random_seed(0)
        model = ACAI(Config(depth=4, latent=4), image_shape=(32, 32, 3), num_classes=2)
        shape = {"scales": 3, "stock": stock}
        for name, net in (
            ("encoder", networks.encoder((32, 32, 3), depth=4, latent=4, **shape)),
            ("decoder", networks.decoder((4, 4, 4), depth=4, colors=3, **shape)),
            ("critic", networks.critic((32, 32, 3), depth=4, latent=4, **shape)),
        ):
            net.set_weights(getattr(model, name).get_weights())  # the same weights for both
            setattr(model, name, net)
        by_matmul = [
            la.name for la in model.decoder.layers if getattr(la, "kernel_grad_by_matmul", False)
        ]
        assert len(by_matmul) == (0 if stock else 8), by_matmul  # every 3x3 convolution
        # plain SGD at rate 1: each weight moves by minus its gradient
        model.compile(**{name: keras.optimizers.SGD(1.0) for name in model.optimizer_names})
        model.build_optimizers()
        before = [w.numpy() for w in model.trainable_weights]
        logs = model.train_step((x, y))
        moves = [w0 - w.numpy() for w0, w in zip(before, model.trainable_weights)]
        steps.append(({k: float(v) for k, v in logs.items()}, moves))
    (our_logs, ours), (keras_logs, stock) = steps
    for name in ("loss_ae", "loss_ae_critic", "loss_critic", "loss_critic_real"):
        assert our_logs[name] == pytest.approx(keras_logs[name], rel=1e-5), name
    assert max(np.abs(g).max() for g in stock) > 1e-3  # the step does move the weights
    for g0, g1 in zip(ours, stock):  # the same gradients, to float32 round-off
        np.testing.assert_allclose(g0, g1, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("jit", [False, True])
def test_fused_adam_takes_keras_adams_steps(jit):
    rng = np.random.default_rng(0)
    shapes = [(3, 3, 4, 8), (8,)]
    start = [rng.normal(size=s).astype(np.float32) for s in shapes]
    grads = [[rng.normal(size=s).astype(np.float32) for s in shapes] for _ in range(3)]
    results = []
    for cls in (networks.FusedAdam, keras.optimizers.Adam):
        variables = [keras.Variable(w) for w in start]
        optimizer = cls(1e-2)
        optimizer.build(variables)
        apply = tf.function(lambda g: optimizer.apply(g, variables), jit_compile=jit)  # noqa: B023
        for g in grads:
            apply([tf.constant(x) for x in g])
        results.append([v.numpy() for v in variables])
        assert int(optimizer.iterations.numpy()) == 3
    fused, stock = results
    assert all(np.abs(w - w0).mean() > 1e-3 for w, w0 in zip(stock, start))  # the steps moved them
    for w0, w1 in zip(fused, stock):
        np.testing.assert_allclose(w0, w1, rtol=1e-5, atol=1e-7)
