"""Pictures: the one image reader, pixel conversion, batches, a grid of tiles, PNG writing."""

from __future__ import annotations

import io
import threading
import warnings
from pathlib import Path

import numpy as np

from acai.files import write_atomic

# --- reading an image file -------------------------------------------------------------------

MAX_PIXELS = 4096 * 3072  # the most pixels one image is decoded at (a 12-megapixel photo)
BYTES_PER_PIXEL = 9  # the most one decode holds per pixel: a palette image, its RGBA copy and
# the premultiplied copy `reduce` makes; so a decode holds at most about 113 MB
GROUND = (255, 255, 255)  # transparent parts are composited over white, as a browser shows them
_OPENING = threading.Lock()  # warnings.catch_warnings is not thread-safe; opening is quick


class TooManyPixels(ValueError):
    """An image with more pixels than `decode_image` decodes."""


def decode_image(data: bytes | str | Path, size: int = 32, *, max_pixels: int = MAX_PIXELS):
    """Reads an image as a person sees it, as RGB uint8 (size, size, 3).

    The EXIF orientation is applied; 16-bit, palette, CMYK and grey images are converted, and
    transparency is composited over white (GROUND). A non-square image is centre-cropped. A
    JPEG is decoded at reduced size (its draft mode, 1/2 to 1/8 each way); any image that still
    has more than `max_pixels` is refused before its pixels are decoded, so one call holds at
    most about BYTES_PER_PIXEL * max_pixels bytes.

    Args:
      data: the encoded bytes, or a file path.
      size: the output width and height (32: CIFAR-10's, acai.core.config.IMAGE_SIZE).
      max_pixels: the most pixels decoded.

    Returns:
      The image array. Raises ValueError when `data` is not a readable image, TooManyPixels
      (a ValueError) when it has too many pixels.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with _open(data) as im:
            full = im.size
            if im.format == "JPEG":
                im.draft(None, (4 * size, 4 * size))  # scaled in the DCT, before decoding
            if im.width * im.height > max_pixels:
                raise TooManyPixels(_too_many(im.format, _sizes(full, im.size), max_pixels))
            im.load()
            square = _centre_square(im, 4 * size)
        picture = _to_rgb(ImageOps.exif_transpose(square))  # the EXIF rides along in .info
        if picture.size != (size, size):
            picture = picture.resize((size, size), Image.Resampling.LANCZOS)
        return np.asarray(picture, np.uint8)
    except UnidentifiedImageError:  # its message names the file object, e.g. <_io.BytesIO ...>
        raise ValueError("not a readable image: not in any image format PIL knows") from None
    except Image.DecompressionBombError:  # PIL's own refusal, on opening: over 2x its bound
        found = f"has over {2 * Image.MAX_IMAGE_PIXELS:,} pixels"
        raise TooManyPixels(_too_many(_format_name(data), found, max_pixels)) from None
    except (OSError, SyntaxError) as e:
        raise ValueError(f"not a readable image: {e}") from None


def _open(data):
    from PIL import Image

    with _OPENING, warnings.catch_warnings():
        # PIL warns above 89 M pixels; this reader applies its own bound (max_pixels) instead
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(io.BytesIO(data) if isinstance(data, bytes) else data)


def _centre_square(im, at_least: int):
    """The centre square of a loaded image, shrunk by a whole factor while its side stays at
    least `at_least` (box averages, in the image's own mode)."""
    w, h = im.size
    side = min(w, h)
    box = ((w - side) // 2, (h - side) // 2, (w + side) // 2, (h + side) // 2)
    if im.mode == "1":
        im = im.convert("L")
    elif im.mode in ("P", "PA"):  # averaging palette indices would mix unrelated colours
        im = im.convert("RGBA" if im.has_transparency_data else "RGB")
    elif im.mode.startswith("I;16"):
        im = im.convert("I")
    factor = max(1, side // at_least)
    return im.reduce(factor, box=box) if factor > 1 else im.crop(box)


def _to_rgb(im):
    """Any mode -> RGB: 16-bit values scaled to 8 bits, transparency over GROUND."""
    from PIL import Image

    if im.mode == "I" or im.mode.startswith("I;16"):  # 16-bit grey, 0-65535
        grey = np.clip(np.round(np.asarray(im, np.float64) / 257), 0, 255)
        return Image.fromarray(grey.astype(np.uint8)).convert("RGB")
    if im.has_transparency_data:
        ground = Image.new("RGBA", im.size, (*GROUND, 255))
        ground.alpha_composite(im.convert("RGBA"))
        im = ground
    return im.convert("RGB")


def _too_many(kind: str, found: str, max_pixels: int) -> str:
    fix = "shrink it" if kind == "JPEG" else "shrink it, or save it as a JPEG (read reduced)"
    return f"too many pixels: this {kind} {found}; at most {max_pixels:,} are decoded; {fix}"


def _sizes(full, decoded) -> str:
    found = f"is {full[0]}x{full[1]}"
    if decoded != full:
        found += f", {decoded[0]}x{decoded[1]} at the smallest size a JPEG is read at"
    return found


def _format_name(data) -> str:
    """The format an image file's first bytes name, for messages."""
    if isinstance(data, bytes):
        head = data[:12]
    else:
        with open(data, "rb") as f:
            head = f.read(12)
    magic = {b"\x89PNG": "PNG", b"\xff\xd8": "JPEG", b"GIF8": "GIF", b"BM": "BMP", b"II*": "TIFF"}
    magic |= {b"MM\x00*": "TIFF", b"RIFF": "WebP"}
    return next((name for start, name in magic.items() if head.startswith(start)), "image")


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


def sheet(columns, *, per_row: int, gap: int = 4, fill: int = 255) -> np.ndarray:
    """Lays groups of images out in rows, each group's images touching, groups apart.

    Args:
      columns: k uint8 arrays (n, H, W, C); group i is columns[0][i] to columns[k - 1][i], left
        to right.
      per_row: groups to a row.
      gap: pixels of `fill` between neighbouring groups and between rows.
      fill: the pixel value of the gaps and of a short last row.

    Returns:
      A (rows * (H + gap) - gap, per_row * (k * W + gap) - gap, C) uint8 picture, rows being
      n / per_row rounded up.
    """
    groups = np.concatenate([np.asarray(c, np.uint8) for c in columns], axis=2)  # (n, H, kW, C)
    n, h, w, c = groups.shape
    rows = -(-n // per_row)
    out = np.full((rows * (h + gap) - gap, per_row * (w + gap) - gap, c), fill, np.uint8)
    for i, group in enumerate(groups):
        top, left = (h + gap) * (i // per_row), (w + gap) * (i % per_row)
        out[top : top + h, left : left + w] = group
    return out


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
