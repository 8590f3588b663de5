"""Walks between two points: lerp and slerp between latents, the one vocabulary for a path
("lerp" or "slerp"), and the pixel cross-fade that every walk is measured against."""

from __future__ import annotations

import numpy as np
from keras import ops

from acai.core.config import PATHS  # noqa: F401 (the walks' names, light for the command line)


def walk(a, b, t, path: str):
    """`lerp` or `slerp` by name.

    Args:
      a, b: latents of any shape (B, ...).
      t: a scalar, or a vector (T,) of positions in [0, 1].
      path: "lerp" or "slerp".

    Returns:
      (B, ...) for a scalar t, (T, B, ...) for a vector t.
    """
    if path not in PATHS:
        raise ValueError(f"path {path!r} is not a walk; use one of {', '.join(PATHS)}")
    return (slerp if path == "slerp" else lerp)(a, b, t)


def lerp(a, b, t):
    """Linear interpolation between latents, per example.

    Args:
      a, b: latents of any shape (B, ...).
      t: a scalar, or a vector (T,) of positions in [0, 1].

    Returns:
      (B, ...) for a scalar t, (T, B, ...) for a vector t.
    """
    a, b, t, shape = _flat_pairs(a, b, t)  # a, b: (1, B, D); t: (T, 1, 1)
    return ops.reshape(lerp_rows(a, b, t), shape)


def slerp(a, b, t, *, eps: float = 1e-6):
    """Spherical interpolation between latents, per example (flattened), as in the paper.

    slerp(a, b, t) = sin((1 - t) w) / sin(w) * a + sin(t w) / sin(w) * b, with w the angle
    between a and b. Nearly parallel or antipodal pairs (sin(w) < eps) fall back to lerp;
    zero vectors give finite results. t = 0 and t = 1 return a and b exactly.

    Args:
      a, b: latents of any shape (B, ...).
      t: a scalar, or a vector (T,) of positions in [0, 1].
      eps: the sin(w) below which lerp is used.

    Returns:
      (B, ...) for a scalar t, (T, B, ...) for a vector t.
    """
    a, b, t, shape = _flat_pairs(a, b, t)  # a, b: (1, B, D); t: (T, 1, 1)
    return ops.reshape(slerp_rows(a, b, t, eps=eps), shape)


def lerp_rows(a, b, t):
    """lerp along the last axis of a and b (..., D), t broadcastable to (..., 1)."""
    return (1.0 - t) * a + t * b


def slerp_rows(a, b, t, *, eps: float = 1e-6):
    """slerp along the last axis of a and b (..., D), t broadcastable to (..., 1).

    Training differentiates this through the encoder, so no branch may produce an infinite
    gradient, not even the one `where` discards: straight rows take arccos(0) in place of
    arccos(+-1), and the norms a floor before their square roots.
    """
    dot = ops.sum(a * b, axis=-1, keepdims=True)
    norms = ops.sqrt(ops.maximum(ops.sum(a * a, -1, keepdims=True), 1e-30)) * ops.sqrt(
        ops.maximum(ops.sum(b * b, -1, keepdims=True), 1e-30)
    )
    cos = ops.clip(dot / norms, -1.0, 1.0)
    straight = ops.stop_gradient(1.0 - cos * cos) < eps * eps  # sin(w) < eps: (nearly) parallel
    omega = ops.arccos(ops.where(straight, 0.0, cos))  # (..., 1)
    safe = ops.where(straight, 1.0, ops.sin(omega))
    wa = ops.where(straight, 1.0 - t, ops.sin((1.0 - t) * omega) / safe)
    wb = ops.where(straight, t, ops.sin(t * omega) / safe)
    return wa * a + wb * b


def _flat_pairs(a, b, t):
    a = ops.convert_to_tensor(a, "float32")
    b = ops.convert_to_tensor(b, "float32")
    t = ops.convert_to_tensor(t, "float32")
    batch_shape = tuple(ops.shape(a))
    flat = (1, batch_shape[0], -1)
    out = batch_shape if len(ops.shape(t)) == 0 else (ops.shape(t)[0], *batch_shape)
    return ops.reshape(a, flat), ops.reshape(b, flat), ops.reshape(t, (-1, 1, 1)), out


def crossfade(a, b, t) -> np.ndarray:
    """The pixel cross-fade (1 - t) a + t b of two batches of images in [-1, 1].

    Args:
      a, b: float images (B, H, W, C).
      t: a scalar; a vector (T,) of positions in [0, 1]; or one position per image,
        (B, 1, 1, 1).

    Returns:
      float32 (B, H, W, C), or (T, B, H, W, C) for a vector t.
    """
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    t = np.asarray(t, np.float32)
    if t.ndim == 1:
        t = t.reshape(-1, *([1] * a.ndim))  # (T, 1, 1, 1, 1)
    return (1.0 - t) * a + t * b
