"""Pictures: pixel conversion, batches of images, one grid of tiles, one PNG encoder and writer."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from acai.files import write_atomic

# --- pixels ----------------------------------------------------------------------------------


def to_float(images):
    """uint8 pixels [0, 255] -> float32 [-1, 1], the networks' input range."""
    import tensorflow as tf

    return tf.cast(images, tf.float32) / 127.5 - 1.0


def to_uint8(images):
    """float [-1, 1] -> uint8 [0, 255], rounding and clipping."""
    import tensorflow as tf

    pixels = tf.round((tf.cast(images, tf.float32) + 1.0) * 127.5)
    return tf.cast(tf.clip_by_value(pixels, 0, 255), tf.uint8)


def in_batches(fn, *arrays, size: int = 256, axis: int = 0, join=np.concatenate):
    """fn applied to `size` rows of the arrays at a time, its outputs joined along `axis`: the
    one chunked-batch helper.

    Args:
      fn: takes one slice of each array, returns an array or tensor, or a tuple or list of them.
      arrays: arrays of the same length.
      size: rows per call (bounds the memory one call needs).
      axis: where the outputs are joined (1 for outputs shaped (T, rows, ...)).
      join: joins a list of pieces along `axis`: `np.concatenate` gives a NumPy array,
        `tf.concat` keeps tensors as tensors.

    Returns:
      The joined output, or a tuple of them when `fn` returns several.
    """
    n = len(arrays[0])
    outputs = [fn(*(a[i : i + size] for a in arrays)) for i in range(0, max(n, 1), size)]
    if isinstance(outputs[0], tuple | list):
        return tuple(join(list(pieces), axis=axis) for pieces in zip(*outputs))
    return join(outputs, axis=axis)


# --- pictures --------------------------------------------------------------------------------


def grid(rows, *, fill: int = 0) -> np.ndarray:
    """Lays rows of tiles out as one picture; short rows are padded with `fill`.

    Args:
      rows: a list of (n_i, H, W, C) uint8 arrays, one per row (n_i may be 0).
      fill: the pixel value of the padding.

    Returns:
      A (len(rows) * H, max n_i * W, C) uint8 array.
    """
    shape = next(np.shape(r)[1:] for r in rows if len(r))
    width = max(len(r) for r in rows)
    tiles = np.full((len(rows), width, *shape), fill, np.uint8)  # (rows, width, H, W, C)
    for i, row in enumerate(rows):
        tiles[i, : len(row)] = row
    n_rows, n_cols, h, w, c = tiles.shape
    return tiles.transpose(0, 2, 1, 3, 4).reshape(n_rows * h, n_cols * w, c)


def tile(images: np.ndarray, side: int) -> np.ndarray:
    """(B, H, W, C) -> one (side * H, side * W, C) square grid, row by row, padded with black."""
    padded = np.zeros((side * side, *images.shape[1:]), np.uint8)
    padded[: len(images)] = images
    return grid([padded[r * side : (r + 1) * side] for r in range(side)])


def png_bytes(image: np.ndarray, *, scale: int = 1, smooth: bool = False) -> bytes:
    """Encodes a uint8 (H, W, C) picture as PNG, upscaled `scale` times.

    Args:
      image: RGB or single-channel pixels.
      scale: the upscaling factor.
      smooth: Lanczos resampling instead of nearest-neighbour blocks.
    """
    from PIL import Image

    image = np.asarray(image, np.uint8)
    picture = Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)
    if scale != 1:
        method = Image.Resampling.LANCZOS if smooth else Image.Resampling.NEAREST
        picture = picture.resize((picture.width * scale, picture.height * scale), method)
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return buffer.getvalue()


def figure_png(fig, *, dpi: int = 80) -> bytes:
    """A matplotlib figure as PNG bytes; the figure is closed."""
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    plt.close(fig)
    return buffer.getvalue()


def pyplot():
    """matplotlib.pyplot on the Agg backend (no screen needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_png(image: np.ndarray, path: str | Path, *, scale: int = 1, smooth: bool = False) -> Path:
    """Writes a uint8 (H, W, C) picture as a PNG file, atomically (see `png_bytes`)."""
    return write_atomic(path, png_bytes(image, scale=scale, smooth=smooth))
