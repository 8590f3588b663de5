import numpy as np
import pytest

from acai import networks


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


def test_critic_outputs_one_float32_score_per_image():
    critic = networks.critic((32, 32, 3), depth=4, latent=4, scales=3, dtype="mixed_bfloat16")
    out = critic(np.zeros((5, 32, 32, 3), np.float32))
    assert tuple(out.shape) == (5, 1)
    assert str(out.dtype) == "<dtype: 'float32'>" or "float32" in str(out.dtype)


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
