"""Distances, latent clustering accuracy and realism (KID), as pure numpy functions."""

from __future__ import annotations

import numpy as np


def sq_distances(a, b, *, chunk: int = 4096) -> np.ndarray:
    """Squared Euclidean distances between the rows of two sets of points.

    Args:
      a: (N, ...) points, flattened per row.
      b: (M, ...) points.
      chunk: rows of `b` compared at once (memory: N x chunk floats).

    Returns:
      (N, M) float, clipped at 0 (the expansion below can round to tiny negatives).
    """
    a = np.asarray(a).reshape(len(a), -1)
    dtype = np.result_type(a.dtype, np.float32)
    a = a.astype(dtype)
    a2 = (a**2).sum(1)[:, None]
    parts = []
    for start in range(0, len(b), chunk):
        part = np.asarray(b[start : start + chunk]).reshape(-1, a.shape[1]).astype(dtype)
        parts.append(a2 - 2 * a @ part.T + (part**2).sum(1)[None])  # |a|^2 - 2 a.b + |b|^2
    return np.maximum(np.concatenate(parts, axis=1) if parts else np.zeros((len(a), 0)), 0)


def kmeans(points, k: int, *, seed: int = 0, iterations: int = 100, restarts: int = 3):
    """Lloyd's k-means with k-means++ starts; the best of `restarts` by inertia.

    Returns:
      (N,) cluster indices in [0, k).
    """
    points = np.asarray(points, np.float64).reshape(len(points), -1)
    rng = np.random.default_rng(seed)
    best, best_inertia = None, np.inf
    for _ in range(restarts):
        centres = _kmeans_pp(points, k, rng)
        for _ in range(iterations):
            d = sq_distances(points, centres)  # (N, k)
            assign = d.argmin(axis=1)
            moved = np.array(
                [
                    points[assign == c].mean(axis=0) if np.any(assign == c) else centres[c]
                    for c in range(k)
                ]
            )
            if np.allclose(moved, centres):
                break
            centres = moved
        inertia = d[np.arange(len(points)), assign].sum()
        if inertia < best_inertia:
            best, best_inertia = assign, inertia
    return best


def _kmeans_pp(points, k, rng):
    centres = [points[rng.integers(len(points))]]
    for _ in range(1, k):
        d = sq_distances(points, np.array(centres)).min(axis=1)
        centres.append(points[rng.choice(len(points), p=d / d.sum())])
    return np.array(centres)


def clustering_accuracy(labels, clusters) -> float:
    """Accuracy of cluster indices against labels under the best one-to-one matching
    (the Hungarian algorithm, scipy's linear_sum_assignment)."""
    from scipy.optimize import linear_sum_assignment

    labels, clusters = np.asarray(labels), np.asarray(clusters)
    size = max(labels.max(), clusters.max()) + 1
    counts = np.zeros((size, size), np.int64)
    np.add.at(counts, (clusters, labels), 1)
    rows, cols = linear_sum_assignment(-counts)
    return float(counts[rows, cols].sum() / len(labels))


def polynomial_kernel(a, b) -> np.ndarray:
    """KID's kernel between rows of features: k(x, y) = (x.y / d + 1)^3, d the feature count."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return (a @ b.T / a.shape[1] + 1.0) ** 3


def kid(features, real_features) -> float:
    """Kernel inception distance: the unbiased estimate of the squared MMD between two sets
    of features under `polynomial_kernel` (Binkowski et al. 2018), over the whole sets.

    Args:
      features: (N, d) features of the images judged, N >= 2.
      real_features: (M, d) features of real images, M >= 2.

    Returns:
      The estimate; its expectation is 0 when both sets come from one distribution, and it can
      read slightly below 0 then.
    """
    x, y = np.asarray(features), np.asarray(real_features)
    if len(x) < 2 or len(y) < 2 or x.shape[1] != y.shape[1]:
        raise ValueError(
            f"KID needs two sets of >= 2 same-length features, got {x.shape} {y.shape}"
        )
    n, m = len(x), len(y)
    k_xx, k_yy = polynomial_kernel(x, x), polynomial_kernel(y, y)
    within_x = (k_xx.sum() - np.trace(k_xx)) / (n * (n - 1))
    within_y = (k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within_x + within_y - 2.0 * polynomial_kernel(x, y).mean())
