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


def test_kid_is_the_unbiased_mmd_with_the_cubic_kernel():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(4, 3))

    def k(a, b):
        return (a @ b / 3 + 1) ** 3

    pairs_x = [k(x[i], x[j]) for i in range(5) for j in range(5) if i != j]
    pairs_y = [k(y[i], y[j]) for i in range(4) for j in range(4) if i != j]
    cross = [k(a, b) for a in x for b in y]
    direct = np.mean(pairs_x) + np.mean(pairs_y) - 2 * np.mean(cross)
    assert metrics.kid(x, y) == pytest.approx(direct, rel=1e-12)


def test_kid_is_near_zero_for_one_distribution_and_grows_with_the_shift():
    rng = np.random.default_rng(1)
    real = rng.normal(size=(2000, 16))
    same = metrics.kid(rng.normal(size=(500, 16)), real)
    shifted = [metrics.kid(rng.normal(size=(500, 16)) + s, real) for s in (0.5, 1.0)]
    assert abs(same) < 0.1 * shifted[0]
    assert 0 < shifted[0] < shifted[1]


def test_kid_refuses_mismatched_features():
    with pytest.raises(ValueError, match="KID needs"):
        metrics.kid(np.zeros((4, 3)), np.zeros((4, 2)))
    with pytest.raises(ValueError, match="KID needs"):
        metrics.kid(np.zeros((1, 3)), np.zeros((4, 3)))
