import numpy as np
import tensorflow as tf

from acai import classifier as classifier_lib


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
