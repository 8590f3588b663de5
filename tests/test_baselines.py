"""The pixel baselines a midpoint must beat, and the dissolve index that a blend cannot pass."""

import numpy as np
import pytest

from acai.core.walks import crossfade
from acai.pegasi import baselines


@pytest.fixture
def photos():
    rng = np.random.default_rng(0)
    return rng.uniform(-0.5, 0.5, (2, 4, 32, 32, 3)).astype(np.float32)  # (a, b), 4 pairs


def test_the_contrast_restored_fade_has_the_photos_mean_spread(photos):
    a, b = photos
    fade = crossfade(a, b, 0.5)
    restored = baselines.contrast_restored(a, b, 0.5)
    wanted = (a.std(axis=(1, 2)) + b.std(axis=(1, 2))) / 2  # (4, 3)
    assert (fade.std(axis=(1, 2)) < 0.8 * wanted).all()  # a fade loses contrast
    np.testing.assert_allclose(restored.std(axis=(1, 2)), wanted, rtol=1e-4)
    np.testing.assert_allclose(restored.mean(axis=(1, 2)), fade.mean(axis=(1, 2)), atol=0.03)
    np.testing.assert_allclose(baselines.contrast_restored(a, b, 0.0), a, atol=1e-5)


def test_the_critics_contrast_restored_blends_are_the_baselines_own(photos):
    # acai.core.losses.restore_contrast, in ops for the training step, is the same trick as the
    # baseline it is named after: a mix alpha of the way from the partner to each image.
    from acai.core.losses import mix_latents, restore_contrast

    a, _ = photos
    alphas = [0.1, 0.25, 0.4, 0.5]
    alpha = np.array(alphas, np.float32).reshape(4, 1, 1, 1)
    blends = mix_latents(a, alpha)
    restored = np.asarray(restore_contrast(blends, a, alpha))
    for i, t in enumerate(alphas):
        want = baselines.contrast_restored(a[::-1][i : i + 1], a[i : i + 1], t)
        np.testing.assert_allclose(restored[i : i + 1], want, atol=1e-5)


def test_half_and_half_cuts_down_the_middle(photos):
    a, b = photos
    cut = baselines.half_and_half(a, b)
    np.testing.assert_array_equal(cut[:, :, :16], a[:, :, :16])
    np.testing.assert_array_equal(cut[:, :, 16:], b[:, :, 16:])


def test_the_dissolve_index_is_one_for_a_blend_and_low_for_an_unrelated_image(photos):
    a, b = photos
    assert baselines.dissolve_index(0.3 * a + 0.6 * b + 0.1, a, b) == pytest.approx(1.0)
    unrelated = np.random.default_rng(1).uniform(-1, 1, a.shape)
    assert (baselines.dissolve_index(unrelated, a, b) < 0.05).all()


def test_a_shifted_photo_is_no_blend_of_its_neighbours():
    # a sharp slanted edge: an edge moved 2 px is what a blend of it at 0 and 4 px cannot make
    x = np.linspace(-1, 1, 32, dtype=np.float32)
    image = np.tanh(100 * (x[None, :, None] + 0.3 * x[:, None, None])) * np.ones((32, 32, 3))
    images = image[None].astype(np.float32)
    moved = baselines.shifted(images, 2)
    np.testing.assert_array_equal(moved[:, :, 2:], images[:, :, :-2])
    index = baselines.dissolve_index(moved, images, baselines.shifted(images, 4))[0]
    fade = baselines.dissolve_index(
        crossfade(images, baselines.shifted(images, 4), 0.5), images, baselines.shifted(images, 4)
    )[0]
    assert fade == pytest.approx(1.0) and index < 0.95
