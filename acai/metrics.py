"""The paper's interpolation metrics on lines32, and latent clustering accuracy: pure numpy."""

from __future__ import annotations

import numpy as np

from acai.data import draw_lines

REFERENCE_LINES = 10_000  # true lines at evenly spaced angles, as in the paper
FLAT_TOTAL = 1e-4  # smoothness is undefined below this total angle change (radians)


def reference_lines(n: int = REFERENCE_LINES) -> tuple[np.ndarray, np.ndarray]:
    """True lines at n evenly spaced angles in [0, 2 pi).

    Returns:
      (angles (n,), images (n, 32, 32, 1) in [-1, 1]).
    """
    angles = np.arange(n) * (2 * np.pi / n)
    return angles, draw_lines(angles)


def nearest_lines(images, reference=None, *, chunk: int = 2048):
    """Cosine distance from each image to its nearest true line, and that line's angle.

    The distance is taken on the [-1, 1] pixel values, as in the paper's code.

    Args:
      images: (N, H, W, 1) images in [-1, 1].
      reference: (angles, images) from `reference_lines`; made if not given.
      chunk: images compared at once (memory: chunk x len(reference) floats).

    Returns:
      (distances (N,), angles (N,)).
    """
    ref_angles, ref_images = reference if reference is not None else reference_lines()
    refs = _unit_rows(ref_images)  # (R, D)
    queries = _unit_rows(images)  # (N, D)
    distance, angle = np.empty(len(queries)), np.empty(len(queries))
    for start in range(0, len(queries), chunk):
        cos = queries[start : start + chunk] @ refs.T  # (chunk, R)
        best = np.argmax(cos, axis=1)
        distance[start : start + chunk] = 1.0 - cos[np.arange(len(best)), best]
        angle[start : start + chunk] = ref_angles[best]
    return np.maximum(distance, 0.0), angle


def _unit_rows(images) -> np.ndarray:
    flat = np.asarray(images, np.float32).reshape(len(images), -1)
    norm = np.linalg.norm(flat, axis=1, keepdims=True)
    return flat / np.maximum(norm, 1e-12)


def smoothness(angles) -> np.ndarray:
    """The paper's smoothness of each interpolation from the angles of its nearest lines.

    max |angle step| / |total angle change| - 1 / (n - 1), after unwrapping the angles: 0 for
    evenly spaced steps, near 1 for a jump. NaN where the total change is below 1e-4.

    Args:
      angles: (I, n) nearest-line angles along each of I interpolations of n images.

    Returns:
      (I,) scores, lower is better.
    """
    angles = np.unwrap(np.atleast_2d(np.asarray(angles, np.float64)), axis=-1)
    steps = np.abs(np.diff(angles, axis=-1))  # (I, n - 1)
    total = np.abs(angles[:, -1] - angles[:, 0])  # (I,)
    flat = total < FLAT_TOTAL
    with np.errstate(divide="ignore", invalid="ignore"):
        score = steps.max(axis=-1) / total - 1.0 / (angles.shape[1] - 1)
    return np.where(flat, np.nan, score)


def line_scores(interpolations, reference=None) -> dict:
    """Mean Distance and Smoothness of decoded line interpolations (both: lower is better).

    Args:
      interpolations: (I, n, H, W, 1) images in [-1, 1], I interpolations of n steps each.
      reference: as for `nearest_lines`.

    Returns:
      {"mean_distance", "smoothness", "undefined_smoothness"}: the mean over every image of the
      nearest-line distance; the mean smoothness with undefined (NaN) interpolations counted
      as 0, as the issue defines it; and the share of those undefined ones.
    """
    interpolations = np.asarray(interpolations)
    count, steps = interpolations.shape[:2]
    distance, angle = nearest_lines(interpolations.reshape(-1, *interpolations.shape[2:]),
                                    reference)  # fmt: skip
    scores = smoothness(angle.reshape(count, steps))
    undefined = np.isnan(scores)
    return {
        "mean_distance": float(distance.mean()),
        "smoothness": float(np.where(undefined, 0.0, scores).mean()),
        "undefined_smoothness": float(undefined.mean()),
    }


def line_pairs(count: int = 256, *, seed: int = 0) -> np.ndarray:
    """A fixed, seeded set of (start, end) angles for the lines evaluation, (count, 2)."""
    return np.random.default_rng(seed).uniform(0.0, 2 * np.pi, (count, 2))


def exact_line_walk(pairs, steps: int = 16) -> np.ndarray:
    """The ideal interpolation: lines whose angle turns evenly along the shorter arc.

    Returns:
      (len(pairs), steps, 32, 32, 1) images in [-1, 1].
    """
    pairs = np.asarray(pairs, np.float64)
    turn = np.mod(pairs[:, 1] - pairs[:, 0] + np.pi, 2 * np.pi) - np.pi  # in [-pi, pi)
    t = np.linspace(0.0, 1.0, steps)
    angles = pairs[:, :1] + turn[:, None] * t  # (I, steps)
    return draw_lines(angles.ravel()).reshape(len(pairs), steps, *draw_lines([0.0]).shape[1:])


def crossfade_walk(start, end, steps: int = 16) -> np.ndarray:
    """The pixel cross-fade (1 - t) a + t b between two batches of images: (B, steps, ...)."""
    t = np.linspace(0.0, 1.0, steps).reshape(1, steps, *([1] * (np.ndim(start) - 1)))
    return (1.0 - t) * np.asarray(start)[:, None] + t * np.asarray(end)[:, None]


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
            d = _sq_distances(points, centres)  # (N, k)
            assign = d.argmin(axis=1)
            moved = np.array([
                points[assign == c].mean(axis=0) if np.any(assign == c) else centres[c]
                for c in range(k)
            ])  # fmt: skip
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
        d = _sq_distances(points, np.array(centres)).min(axis=1)
        centres.append(points[rng.choice(len(points), p=d / d.sum())])
    return np.array(centres)


def _sq_distances(points, centres):
    return ((points**2).sum(1)[:, None] - 2 * points @ centres.T + (centres**2).sum(1)[None]).clip(
        min=0
    )


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
