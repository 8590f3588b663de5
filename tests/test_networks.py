import keras
import numpy as np
import pytest
import tensorflow as tf

from acai.core import networks


def count(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def test_encoder_and_decoder_shapes_and_sizes():
    enc = networks.encoder((32, 32, 3), depth=8, latent=4, scales=3)
    dec = networks.decoder((4, 4, 4), depth=8, colors=3, scales=3)
    assert enc.output_shape == (None, 4, 4, 4)
    assert dec.output_shape == (None, 32, 32, 3)
    # Hand count: 1x1 stem, two 3x3 convs per level (8, 16, 32 channels), neck 64, latent 4.
    convs = [
        (3, 8, 1),
        (8, 8, 3),
        (8, 8, 3),
        (8, 16, 3),
        (16, 16, 3),
        (16, 32, 3),
        (32, 32, 3),
        (32, 64, 3),
        (64, 4, 3),
    ]
    assert count(enc) == sum(i * o * k * k + o for i, o, k in convs)
    # The decoder: levels 32, 16, 8 channels, then a depth-8 head and the RGB conv.
    convs = [
        (4, 32, 3),
        (32, 32, 3),
        (32, 16, 3),
        (16, 16, 3),
        (16, 8, 3),
        (8, 8, 3),
        (8, 8, 3),
        (8, 3, 3),
    ]
    assert count(dec) == sum(i * o * k * k + o for i, o, k in convs)


def test_the_critic_scores_each_image_by_the_mean_of_its_last_map():
    critic = networks.critic((32, 32, 3), depth=4, latent=4, scales=3, dtype="mixed_bfloat16")
    images = np.random.default_rng(0).uniform(-1, 1, (5, 32, 32, 3)).astype(np.float32)
    out = critic(images)
    assert tuple(out.shape) == (5, 1) and out.dtype == "float32"
    body = np.asarray(critic.get_layer("critic_body")(images), np.float32)  # (5, 4, 4, 4)
    np.testing.assert_allclose(np.asarray(out)[:, 0], body.mean(axis=(1, 2, 3)), rtol=1e-5)
    assert np.ptp(np.asarray(out)) > 0  # one score per image, not one per batch


def test_mixed_precision_outputs_stay_float32():
    enc = networks.encoder((32, 32, 3), depth=4, latent=4, scales=3, dtype="mixed_bfloat16")
    z = enc(np.zeros((2, 32, 32, 3), np.float32))
    assert "float32" in str(z.dtype)
    assert all("float32" in str(w.dtype) for w in enc.weights)  # variables stay float32


@pytest.mark.parametrize("fan_in_channels", [64])
def test_conv_init_is_he_normal_corrected_for_the_leak(fan_in_channels):
    enc = networks.encoder((32, 32, 3), depth=fan_in_channels, latent=4, scales=1)
    kernel = enc.get_layer("down0_a").kernel.numpy()  # 3x3, 64 -> 64
    expected = 1.0 / np.sqrt((1 + 0.2**2) * 9 * fan_in_channels)
    assert kernel.std() == pytest.approx(expected, rel=0.05)


@pytest.mark.parametrize(
    "shape, filters",
    [((2, 4, 4, 5), 7), ((2, 4, 4, 7), 5), ((3, 5, 6, 4), 4)],  # C < F, C > F, C = F, H != W
)
def test_the_matmul_kernel_gradient_is_conv2d_backprop_filter(shape, filters):
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(size=shape), tf.float32)
    dy = tf.constant(rng.normal(size=(*shape[:3], filters)), tf.float32)
    expected = tf.raw_ops.Conv2DBackpropFilter(
        input=x,
        filter_sizes=[3, 3, shape[-1], filters],
        out_backprop=dy,
        strides=[1, 1, 1, 1],
        padding="SAME",
    )
    got = networks.conv3x3_kernel_grad(x, dy)
    assert got.shape == (3, 3, shape[-1], filters)
    np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-5, atol=1e-5)


def test_conv2d_with_the_matmul_gradient_computes_what_keras_conv2d_does():
    rng = np.random.default_rng(1)
    x = tf.constant(rng.normal(size=(2, 8, 8, 6)), tf.float32)
    ours = networks.Conv2D(4, 3, padding="same", matmul_grad=True)
    stock = keras.layers.Conv2D(4, 3, padding="same")
    ours.build(x.shape)
    stock.build(x.shape)
    stock.set_weights([w + rng.normal(size=w.shape) for w in ours.get_weights()])
    ours.set_weights(stock.get_weights())
    assert ours.kernel_grad_by_matmul
    results = []
    for layer in (ours, stock):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(tf.sin(y))  # a gradient that differs from pixel to pixel
        results.append([y, *tape.gradient(loss, [x, layer.kernel, layer.bias])])
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-5)


def test_the_matmul_gradient_is_used_on_small_bfloat16_maps_only():
    def by_matmul(dtype):
        enc = networks.encoder((32, 32, 3), depth=4, latent=4, scales=3, dtype=dtype)
        return {la.name for la in enc.layers if getattr(la, "kernel_grad_by_matmul", False)}

    # 8x8 and 4x4 maps: the last level's two convolutions, the neck and the latent
    assert by_matmul("mixed_bfloat16") == {"down2_a", "down2_b", "neck", "latent"}
    assert by_matmul("float32") == set()
    stock = networks.encoder((32, 32, 3), depth=4, latent=4, scales=3, stock=True)
    assert all(type(la) is not networks.Conv2D for la in stock.layers)


def test_a_decoder_mlp_maps_each_latent_position_alone_before_the_convolutions():
    dec = networks.decoder((4, 4, 4), depth=4, colors=3, scales=3, mlp=2)
    mlp = [dec.get_layer(f"mlp{i}") for i in range(2)]
    assert [(la.kernel_size, la.filters) for la in mlp] == [((1, 1), 64)] * 2  # 4 * (4 << 2)
    z = np.random.default_rng(0).normal(size=(2, 4, 4, 4)).astype(np.float32)
    assert dec(z).shape == (2, 32, 32, 3)
    # 1x1: changing one latent position changes what the mlp makes at that position only
    head = keras.Model(dec.input, dec.get_layer("mlp1_act").output)
    moved = z.copy()
    moved[:, 1, 2] += 1.0
    changed = np.any(np.asarray(head(moved)) != np.asarray(head(z)), axis=(0, 3))
    assert changed.sum() == 1 and changed[1, 2]
    flat = networks.decoder((32, 32, 4), depth=4, colors=3, scales=0, mlp=1)  # no levels
    assert flat.get_layer("mlp0").filters == 16 and flat.output.shape == (None, 32, 32, 3)
