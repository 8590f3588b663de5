import numpy as np
import pytest

from acai import metrics


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


def test_sq_distances_match_the_direct_formula_in_chunks():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(5, 2, 3)), rng.normal(size=(9, 2, 3))
    direct = ((a.reshape(5, 1, -1) - b.reshape(1, 9, -1)) ** 2).sum(-1)
    np.testing.assert_allclose(metrics.sq_distances(a, b, chunk=4), direct, rtol=1e-5)
    assert metrics.sq_distances(a, a).min() >= 0  # the diagonal rounds to 0, never below
