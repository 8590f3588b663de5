import numpy as np
import tensorflow as tf

from acai.training import classifier as classifier_lib


def test_augment_crops_from_the_reflected_padding_and_sometimes_mirrors():
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (16, 8, 8, 3)).astype(np.float32)
    seed = tf.constant([3, 4], tf.int64)
    out = np.asarray(classifier_lib.augment(tf.constant(images), seed))
    assert out.shape == images.shape
    np.testing.assert_array_equal(out, classifier_lib.augment(tf.constant(images), seed))
    pad = classifier_lib.PAD
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")
    shifts = range(2 * pad + 1)
    mirrored = 0
    for image, source in zip(out, padded):
        crops = [source[r : r + 8, c : c + 8] for r in shifts for c in shifts]
        plain = any(np.array_equal(image, crop) for crop in crops)
        flipped = any(np.array_equal(image, crop[:, ::-1]) for crop in crops)
        assert plain or flipped  # every output is a crop of its own padded image, or its mirror
        mirrored += flipped and not plain
    assert 0 < mirrored < len(images)  # about half are mirrored
    other = np.asarray(classifier_lib.augment(tf.constant(images), seed + 1))
    assert not np.array_equal(out, other)


def test_cutout_blanks_one_clipped_square_per_image():
    images = tf.ones((32, 16, 16, 3))
    out = np.asarray(classifier_lib.cutout(images, tf.constant([1, 2], tf.int64), size=4))
    holes = (out == 0).all(-1)  # (B, H, W)
    for hole in holes:
        rows, cols = np.flatnonzero(hole.any(1)), np.flatnonzero(hole.any(0))
        assert 0 < hole.sum() <= 16 and hole.sum() == len(rows) * len(cols)  # one rectangle
        assert np.ptp(rows) < 4 and np.ptp(cols) < 4
    assert (out[~holes] == 1).all()
    assert len({tuple(np.argwhere(h)[0]) for h in holes}) > 1  # the squares move


def test_the_judges_resnet_is_another_family_than_the_feature_networks():
    plain = classifier_lib.build(10)
    resnet = classifier_lib.build_resnet(10)
    assert resnet(tf.zeros((2, 32, 32, 3))).shape == (2, 10)
    kinds = {type(layer).__name__ for layer in resnet.layers}
    assert {"Add", "GlobalAveragePooling2D"} <= kinds  # residual, averaged
    assert "MaxPooling2D" not in kinds
    assert "Add" not in {type(layer).__name__ for layer in plain.layers}
    assert resnet.get_layer("logits").input.shape[-1] == classifier_lib.WIDTHS[-1]
