"""What a midpoint must beat, and how much of it is a blend: the one-line pixel baselines and
the dissolve index, as pure functions of float images in [-1, 1] (B, H, W, C)."""

from __future__ import annotations

import numpy as np

from acai.core.walks import crossfade


def contrast_restored(a, b, t: float = 0.5) -> np.ndarray:
    """The cross-fade with its contrast put back: per image and colour channel, its deviations
    from its own mean are scaled so that its standard deviation is (1 - t) and t of the two
    photos' (a 50/50 fade of unrelated photos has about 0.7 of their contrast). Clipped to
    [-1, 1].

    Args:
      a, b: float images (B, H, W, C) in [-1, 1].
      t: the position, 0 being a and 1 b.

    Returns:
      float32 (B, H, W, C).
    """
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    fade = crossfade(a, b, t)
    axes = (1, 2)  # per image and channel
    mean = fade.mean(axis=axes, keepdims=True)
    spread = fade.std(axis=axes, keepdims=True)
    wanted = (1 - t) * a.std(axis=axes, keepdims=True) + t * b.std(axis=axes, keepdims=True)
    gain = np.where(spread > 1e-6, wanted / np.maximum(spread, 1e-6), 1.0)
    return np.clip(mean + (fade - mean) * gain, -1.0, 1.0).astype(np.float32)


def half_and_half(a, b) -> np.ndarray:
    """The trivial "both in one image": the left half of a beside the right half of b."""
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    out = a.copy()
    middle = a.shape[2] // 2
    out[:, :, middle:] = b[:, :, middle:]
    return out


def dissolve_index(mid, end_a, end_b) -> np.ndarray:
    """How much of each image is a blend of two others: the R^2 of the least-squares fit
    mid ~ p * end_a + q * end_b + r, per image and colour channel (the channels' residuals and
    variances pooled). 1 for a cross-fade of the two; a midpoint where something moves or
    changes shape scores far lower.

    Args:
      mid: the images to explain (B, H, W, C).
      end_a, end_b: what they are explained by, usually the model's reconstructions of the two
        ends of each walk, (B, H, W, C).

    Returns:
      (B,) R^2 in [0, 1].
    """
    mid, end_a, end_b = (np.asarray(x, np.float64) for x in (mid, end_a, end_b))
    batch, channels = mid.shape[0], mid.shape[-1]
    y, u, v = (x.reshape(batch, -1, channels).transpose(0, 2, 1) for x in (mid, end_a, end_b))
    design = np.stack([u, v, np.ones_like(u)], axis=-1)  # (B, C, pixels, 3)
    # the normal equations of every image and channel at once; the tiny ridge keeps an end
    # that is flat, or equal to the other, solvable (it changes no fit measurably)
    gram = np.einsum("bcpi,bcpj->bcij", design, design) + 1e-9 * np.eye(3)
    coef = np.linalg.solve(gram, np.einsum("bcpi,bcp->bci", design, y)[..., None])
    fitted = (design @ coef)[..., 0]  # (B, C, pixels)
    residual = ((y - fitted) ** 2).sum(axis=(1, 2))
    total = ((y - y.mean(axis=2, keepdims=True)) ** 2).sum(axis=(1, 2))
    return np.clip(1.0 - residual / np.maximum(total, 1e-12), 0.0, 1.0)


def shifted(images, pixels: int) -> np.ndarray:
    """The images moved `pixels` to the right, the edge column repeated into the gap: with
    `dissolve_index(shifted(x, 2), x, shifted(x, 4))` a true in-between, the scale's reference."""
    images = np.asarray(images, np.float32)
    if pixels == 0:
        return images.copy()
    left = np.repeat(images[:, :, :1], pixels, axis=2)
    return np.concatenate([left, images[:, :, :-pixels]], axis=2)
