import numpy as np
import pytest

from acai import data as data_lib
from acai import metrics


@pytest.fixture(scope="module")
def reference():
    return metrics.reference_lines(2000)  # a coarser grid keeps the tests fast


def test_lines_cover_every_angle_and_stay_in_range():
    angles = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    images = data_lib.draw_lines(angles)
    assert images.shape == (64, 32, 32, 1) and images.dtype == np.float32
    assert images.min() == -1.0 and images.max() == 1.0
    # about 2 px wide and 15 px long: about 30 lit pixels
    lit = ((images + 1) / 2).sum(axis=(1, 2, 3))
    assert np.all((lit > 25) & (lit < 38)), lit
    # the line points the right way: at angle 0 it lies right of the centre, at pi/2 above it
    right, up = data_lib.draw_lines([0.0, np.pi / 2])[..., 0]
    assert right[15:17, 20:31].min() > 0.9 and right[:, :14].max() == -1.0
    assert up[2:14, 15:17].min() > 0.9 and up[18:, :].max() == -1.0


def test_lines_data_set_is_seeded_with_uniform_angles_and_sector_labels():
    data = data_lib.load("lines32")
    assert data.image_shape == (32, 32, 1) and data.num_classes == 10
    assert len(data.train_images) == data_lib.LINES_TRAIN
    counts = np.bincount(data.train_labels, minlength=10)
    assert counts.min() > 0.9 * counts.mean()  # every sector, in equal shares
    np.testing.assert_array_equal(data.test_images[:50], data_lib.load("lines32").test_images[:50])
    assert data_lib.line_labels([0.0, np.pi, 2 * np.pi - 1e-9]).tolist() == [0, 5, 9]


def test_nearest_line_finds_the_angle_of_a_true_line(reference):
    angles = np.array([0.3, 2.0, 5.9])
    distance, found = metrics.nearest_lines(data_lib.draw_lines(angles), reference)
    assert np.all(distance < 1e-3)
    np.testing.assert_allclose(found, angles, atol=2 * np.pi / 2000)


def test_smoothness_is_zero_for_even_steps_and_high_for_a_jump():
    even = np.linspace(0.5, 1.5, 16)
    jump = np.r_[np.full(8, 0.5), np.full(8, 1.5)]
    wrapped = np.mod(np.linspace(6.0, 6.8, 16), 2 * np.pi)  # crosses 2 pi: unwrapped first
    scores = metrics.smoothness([even, jump, wrapped, np.full(16, 1.0)])
    np.testing.assert_allclose(scores[[0, 2]], 0.0, atol=1e-9)
    assert scores[1] == pytest.approx(1 - 1 / 15)
    assert np.isnan(scores[3])  # no change at all: undefined


def test_undefined_smoothness_counts_as_zero_in_the_mean(reference):
    still = np.repeat(data_lib.draw_lines([1.0])[:, None], 16, axis=1)  # (1, 16, 32, 32, 1)
    jump = metrics.crossfade_walk(data_lib.draw_lines([1.0]), data_lib.draw_lines([2.5]))
    scores = metrics.line_scores(np.concatenate([still, jump]), reference)
    assert scores["undefined_smoothness"] == 0.5
    _, angles = metrics.nearest_lines(jump[0], reference)
    assert scores["smoothness"] == pytest.approx(metrics.smoothness(angles[None])[0] / 2)
    assert scores["smoothness"] > 0.4


def test_exact_interpolation_scores_zero_and_a_cross_fade_clearly_worse(reference):
    pairs = metrics.line_pairs(32, seed=1)
    exact = metrics.exact_line_walk(pairs)
    fade = metrics.crossfade_walk(exact[:, 0], exact[:, -1])
    good, bad = metrics.line_scores(exact, reference), metrics.line_scores(fade, reference)
    assert good["mean_distance"] < 1e-4 and good["smoothness"] < 0.02
    assert bad["mean_distance"] > 20 * good["mean_distance"]
    assert bad["smoothness"] > 0.5


def test_line_pairs_are_fixed_by_the_seed():
    np.testing.assert_array_equal(metrics.line_pairs(8), metrics.line_pairs(8))
    assert not np.array_equal(metrics.line_pairs(8, seed=1), metrics.line_pairs(8))


def test_clustering_accuracy_matches_clusters_to_labels_one_to_one():
    labels = np.repeat([0, 1, 2], 4)
    renamed = np.repeat([2, 0, 1], 4)  # perfect clusters under other names
    assert metrics.clustering_accuracy(labels, renamed) == 1.0
    one_cluster = np.zeros(12, int)
    assert metrics.clustering_accuracy(labels, one_cluster) == pytest.approx(1 / 3)


def test_kmeans_recovers_well_separated_blobs():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 50)
    points = rng.normal(size=(200, 6)) + 8 * np.eye(6)[labels]
    assert metrics.clustering_accuracy(labels, metrics.kmeans(points, 4)) == 1.0
