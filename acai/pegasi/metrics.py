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


# --- a classifier-free judge: sliced Wasserstein distance of Laplacian-pyramid patches ----------

BINOMIAL = np.array([1, 4, 6, 4, 1], np.float64) / 16  # the 5-tap Gaussian of the pyramid
SWD_LEVELS = 3  # 32x32, 16x16 and 8x8 for CIFAR-10
SWD_PATCH = 7  # patch side, as Karras et al. (2018)
SWD_PATCHES = 64  # patches drawn per image and level
SWD_DIRECTIONS = 128  # random projections per repeat
SWD_REPEATS = 4


def _blur(images: np.ndarray) -> np.ndarray:
    """The separable 5x5 binomial blur of (B, H, W, C) images, edges reflected."""
    padded = np.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="reflect")
    h, w = images.shape[1:3]
    rows = sum(k * padded[:, i : i + h] for i, k in enumerate(BINOMIAL))  # (B, H, W + 4, C)
    return sum(k * rows[:, :, i : i + w] for i, k in enumerate(BINOMIAL))


def laplacian_pyramid(images, levels: int = SWD_LEVELS) -> list[np.ndarray]:
    """The Laplacian pyramid of images: `levels` band-pass images, finest first, the last one the
    low-pass residue.

    Args:
      images: (B, H, W, C), H and W divisible by 2 ** (levels - 1).
      levels: bands.

    Returns:
      [(B, H, W, C), (B, H / 2, W / 2, C), ...]; summing the bands back up (upsampled) gives the
      images again.
    """
    current = np.asarray(images, np.float64)
    bands = []
    for _ in range(levels - 1):
        small = _blur(current)[:, ::2, ::2]  # (B, H / 2, W / 2, C)
        bands.append(current - _upsample(small))
        current = small
    return [*bands, current]


def _upsample(images: np.ndarray) -> np.ndarray:
    """2x upsampling by zero insertion and the binomial blur (x4 keeps the brightness)."""
    b, h, w, c = images.shape
    up = np.zeros((b, 2 * h, 2 * w, c))
    up[:, ::2, ::2] = images
    return 4 * _blur(up)


def patch_descriptors(band: np.ndarray, rng: np.random.Generator, *, per_image=SWD_PATCHES):
    """Random SWD_PATCH x SWD_PATCH patches of one pyramid band, flattened.

    Args:
      band: (B, H, W, C).
      rng: draws the patch corners.
      per_image: patches per image (all positions, drawn with replacement).

    Returns:
      (B * per_image, SWD_PATCH * SWD_PATCH * C).
    """
    return _patches(band, _patch_corners(band.shape, rng, per_image))


def _patch_corners(shape, rng: np.random.Generator, per_image: int = SWD_PATCHES):
    """The random top-left corners (ys, xs), each (B, per_image), of patches of a band `shape`."""
    b, h, w, _ = shape
    size = min(SWD_PATCH, h, w)
    ys = rng.integers(0, h - size + 1, (b, per_image))
    xs = rng.integers(0, w - size + 1, (b, per_image))
    return ys, xs


def _patches(band: np.ndarray, corners) -> np.ndarray:
    """The patches of `band` at `corners` (from `_patch_corners`), flattened."""
    b, h, w, _ = band.shape
    ys, xs = corners
    offsets = np.arange(min(SWD_PATCH, h, w))
    rows = (ys[..., None] + offsets)[..., :, None]  # (B, P, size, 1)
    cols = (xs[..., None] + offsets)[..., None, :]  # (B, P, 1, size)
    patches = band[np.arange(b)[:, None, None, None], rows, cols]  # (B, P, size, size, C)
    return patches.reshape(b * ys.shape[1], -1)


def _unit_directions(dims: int, rng: np.random.Generator, count: int) -> np.ndarray:
    """(dims, count) random unit columns, the projections of one repeat of SWD."""
    u = rng.normal(size=(dims, count))
    return u / np.linalg.norm(u, axis=0, keepdims=True)


def sliced_wasserstein(
    a, b, rng: np.random.Generator, *, directions=SWD_DIRECTIONS, repeats=SWD_REPEATS
):
    """The sliced Wasserstein distance between two equal-sized point sets: the mean, over random
    unit directions, of the mean absolute difference of the sorted projections.

    Args:
      a, b: (N, D) points each.
      rng: draws the directions.
      directions, repeats: directions per repeat, and repeats (averaged).

    Returns:
      A float >= 0; 0 for identical sets.
    """
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"sliced_wasserstein needs equal sets, got {a.shape} and {b.shape}")
    units = [_unit_directions(a.shape[1], rng, directions) for _ in range(repeats)]
    return _sorted_distance(a, [np.sort(b @ u, axis=0) for u in units], units)


def _sorted_distance(a: np.ndarray, sorted_b: list, units: list) -> float:
    """SWD of points `a` against a set whose projections on each of `units` are `sorted_b`."""
    total = 0.0
    for u, pb in zip(units, sorted_b):
        total += np.abs(np.sort(a @ u, axis=0) - pb).mean()  # (N, directions) each
    return total / len(units)


def swd(images, real_images, *, seed: int = 0, levels: int = SWD_LEVELS) -> dict:
    """The classifier-free realism judge: sliced Wasserstein distance between the patches of a
    set of images and of real photos, per Laplacian-pyramid level (Karras et al., *Progressive
    Growing of GANs*, ICLR 2018). Lower is more realistic; nothing is learnt, so no training
    loss can have been fitted to it.

    Both sets' descriptors are normalised by the real photos' per-channel mean and standard
    deviation at each level (Karras et al. normalise each set by its own, which would hide a
    colour cast), and the larger set is subsampled to the smaller one's size.

    Args:
      images: (B, H, W, C) uint8 or 0-255 float.
      real_images: (N, H, W, C) the same.
      seed: draws the patches, the subsample and the directions.
      levels: pyramid levels.

    Returns:
      {"levels": [SWD x 1000 per level, finest first], "mean": their mean}.
    """
    return swd_of_sets({"images": images}, real_images, seed=seed, levels=levels)["images"]


def swd_of_sets(sets: dict, real_images, *, seed: int = 0, levels: int = SWD_LEVELS) -> dict:
    """`swd` of each of several image sets against the same real photos: {name: swd(images,
    real_images)}, the same figures, with the real photos' side worked out once per set size.

    `swd` draws its random numbers (the subsamples, the patch corners, the directions) from
    `seed` in an order fixed by the sizes alone, so every set of one size meets the same real
    patches and the same directions.
    """
    real_images = np.asarray(real_images)
    out = {}
    for size in sorted({len(images) for images in sets.values()}):
        reference = _SwdReference(size, real_images, seed=seed, levels=levels)
        for name, images in sets.items():
            if len(images) == size:
                out[name] = reference.distance(images)
    return out


class _SwdReference:
    """The real photos' side of `swd` for image sets of `size`: the subsamples, and per pyramid
    level the normalisation, the patch corners, the directions and the sorted projections."""

    def __init__(self, size: int, real_images: np.ndarray, *, seed: int, levels: int):
        rng = np.random.default_rng(seed)
        n = min(size, len(real_images))
        self.pick = rng.choice(size, n, replace=False)  # drawn first, as swd always has
        picked = real_images[rng.choice(len(real_images), n, replace=False)]
        self.levels = levels
        self.bands = []  # per pyramid level, finest first
        for real_band in laplacian_pyramid(np.asarray(picked, np.float64) / 255.0, levels):
            channels = real_band.shape[-1]
            sample = patch_descriptors(real_band, rng).reshape(-1, channels)
            mean, std = sample.mean(0), sample.std(0) + 1e-8  # per colour channel
            corners = _patch_corners(real_band.shape, rng)  # where the images' patches come from
            real = self._normalised(patch_descriptors(real_band, rng), mean, std, channels)
            units = [
                _unit_directions(real.shape[1], rng, SWD_DIRECTIONS) for _ in range(SWD_REPEATS)
            ]
            sorted_real = [np.sort(real @ u, axis=0) for u in units]
            self.bands.append((mean, std, corners, units, sorted_real))

    @staticmethod
    def _normalised(descriptors, mean, std, channels):
        flat = descriptors.reshape(-1, channels)
        return ((flat - mean) / std).reshape(len(descriptors), -1)

    def distance(self, images) -> dict:
        """{"levels": [SWD x 1000 per level, finest first], "mean"} of `size` images."""
        picked = np.asarray(np.asarray(images)[self.pick], np.float64) / 255.0
        per_level = []
        for band, (mean, std, corners, units, sorted_real) in zip(
            laplacian_pyramid(picked, self.levels), self.bands
        ):
            own = self._normalised(_patches(band, corners), mean, std, band.shape[-1])
            per_level.append(1000 * _sorted_distance(own, sorted_real, units))
        return {"levels": per_level, "mean": float(np.mean(per_level))}
