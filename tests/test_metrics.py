import numpy as np
import pytest

from acai.pegasi import metrics


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


# --- the classifier-free judge ---------------------------------------------------------------


def test_laplacian_pyramid_sums_back_to_the_images():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 32, 32, 3)).astype(np.float64)
    bands = metrics.laplacian_pyramid(images, 3)
    assert [b.shape[1] for b in bands] == [32, 16, 8]
    rebuilt = bands[-1]
    for band in reversed(bands[:-1]):
        rebuilt = band + metrics._upsample(rebuilt)
    np.testing.assert_allclose(rebuilt, images, atol=1e-9)
    flat = np.full((1, 32, 32, 3), 100.0)  # a flat image has no detail: its bands are 0
    assert np.abs(metrics.laplacian_pyramid(flat, 3)[0]).max() < 1e-9


def test_sliced_wasserstein_is_zero_for_equal_sets_and_sees_a_shift():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 6))
    assert metrics.sliced_wasserstein(a, a[::-1], rng) == pytest.approx(0, abs=1e-12)
    # a shift by d along one axis moves a projection on unit u by d * u_0; |u_0| averages to
    # about sqrt(2 / (pi * D)) for random directions in D dimensions
    shifted = metrics.sliced_wasserstein(a, a + [3.0, 0, 0, 0, 0, 0], rng, directions=4000)
    assert shifted == pytest.approx(3.0 * np.sqrt(2 / (np.pi * 6)), rel=0.1)
    with pytest.raises(ValueError, match="equal"):
        metrics.sliced_wasserstein(a, a[:10], rng)


def test_swd_of_sets_gives_each_set_its_own_swd():
    # one reference serves every set of a size: each set's figures are those of swd alone
    rng = np.random.default_rng(2)
    real = rng.integers(0, 256, (40, 32, 32, 3)).astype(np.uint8)
    sets = {
        "a": rng.integers(0, 256, (12, 32, 32, 3)),
        "b": rng.integers(0, 128, (12, 32, 32, 3)),
        "c": rng.integers(0, 256, (20, 32, 32, 3)),
    }
    together = metrics.swd_of_sets(sets, real, seed=3)
    assert together == {name: metrics.swd(images, real, seed=3) for name, images in sets.items()}
    assert together["b"]["mean"] > together["a"]["mean"]  # the darker set is further from real


def test_swd_ranks_photos_above_their_blur_and_noise():
    # stand-in photos: smooth random fields with edges, at several scales
    rng = np.random.default_rng(1)
    base = rng.uniform(0, 255, (200, 4, 4, 3))
    photos = np.kron(base, np.ones((1, 8, 8, 1)))  # (200, 32, 32, 3) blocks with sharp edges
    photos = np.clip(photos + rng.normal(0, 8, photos.shape), 0, 255)
    other = np.clip(np.kron(rng.uniform(0, 255, (200, 4, 4, 3)), np.ones((1, 8, 8, 1))), 0, 255)
    other = np.clip(other + rng.normal(0, 8, other.shape), 0, 255)
    same = metrics.swd(other, photos, seed=0)["mean"]
    blurred = metrics.swd(metrics._blur(metrics._blur(other)), photos, seed=0)["mean"]
    noisy = metrics.swd(np.clip(other + rng.normal(0, 40, other.shape), 0, 255), photos, seed=0)
    assert same < blurred and same < noisy["mean"]
    assert len(noisy["levels"]) == metrics.SWD_LEVELS
