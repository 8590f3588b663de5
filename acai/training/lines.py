"""The paper's synthetic lines: drawing them, and the Mean Distance and Smoothness metrics."""

from __future__ import annotations

import numpy as np

from acai.core.config import IMAGE_SIZE

# One line from the centre outwards at a random angle, on a 32x32x1 image, drawn as the original
# code draws it: a bar 2 pixels thick from the centre to radius 15, scan-converted with its
# area-coverage rule (30 to 45 pixels lit, depending on the angle).
LINES_SOURCE = "lines32"
_THICKNESS = 2.0  # the bar's width across its major axis, in pixels
LINES_TRAIN, LINES_TEST = 65536, 5000
LINES_CLASSES = 10  # labels: the angle in ten equal sectors, for the latent probe
REFERENCE_LINES = 10_000  # true lines at evenly spaced angles, as in the paper
# The paper's Table 1 (arXiv 1807.07543), lerp between two test lines: ACAI and its plain
# autoencoder baseline, after 2^24 training images.
PAPER_FIGURES = {
    "ACAI": {"mean_distance": 0.24e-3, "smoothness": 0.10},
    "plain autoencoder": {"mean_distance": 6.88e-3, "smoothness": 0.44},
}
FLAT_TOTAL = 1e-4  # smoothness is undefined below this total angle change (radians)
# How the original code reads a run: it scores every 64 kimg, and a run's figure is the median of
# its last 20 scores (the last 1,280 of its 16,384 kimg).
PAPER_LAST_SCORES = 20


# --- drawing ---------------------------------------------------------------------------------


def _geometry(angles: np.ndarray, size: int):
    """Per-angle scan-conversion set-up, with the original's float operations and order."""
    centre = size * 0.5
    radius = centre - 1
    # End point: column grows with cos(angle); row shrinks with sin(angle).
    col_end = centre + radius * np.cos(-angles)
    row_end = centre + radius * np.sin(-angles)
    n = len(angles)
    col_start = np.full(n, centre)
    row_start = np.full(n, centre)

    # Step along the axis with the larger extent ("major"); ties step along rows.
    transposed = np.abs(row_start - row_end) < np.abs(col_start - col_end)
    major0 = np.where(transposed, col_start, row_start)
    major1 = np.where(transposed, col_end, row_end)
    minor0 = np.where(transposed, row_start, col_start)
    minor1 = np.where(transposed, row_end, col_end)

    # Walk from the smaller major coordinate to the larger one.
    backwards = major1 < major0
    major0, major1 = np.where(backwards, major1, major0), np.where(backwards, major0, major1)
    minor0, minor1 = np.where(backwards, minor1, minor0), np.where(backwards, minor0, minor1)

    # The bar's lower minor edge: centre line shifted down by half the thickness.
    minor0 = minor0 - _THICKNESS / 2
    minor1 = minor1 - _THICKNESS / 2
    d_minor = minor1 - minor0
    d_major = major1 - major0
    safe = np.where(d_major != 0, d_major, 1.0)
    slope = np.where(d_major != 0, d_minor / safe, 0.0)
    return transposed, major0, major1, minor0, slope


def draw_lines(angles, *, size: int = IMAGE_SIZE) -> np.ndarray:
    """Draw one line image per angle, pixel-for-pixel as the original ACAI code.

    Convention: the line runs from the centre pixel coordinate (row, col) =
    (size/2, size/2) to (size/2 - r sin(angle), size/2 + r cos(angle)) with
    r = size/2 - 1. So angle 0 points right (+column), pi/2 up (-row), pi left and
    3 pi/2 down; angles grow counter-clockwise as seen on screen.

    Args:
      angles: angles in radians, any shape (flattened); any real value is accepted.
      size: height and width of the square images.

    Returns:
      (N, size, size, 1) float32 images in [-1, 1]; -1 is background and 1 a fully
      covered pixel (partially covered pixels lie in between).
    """
    angles = np.asarray(angles, dtype=np.float64).reshape(-1)
    n = len(angles)
    transposed, major0, major1, minor0, slope = _geometry(angles, size)

    # Major-axis steps: integers from trunc(major0) up to ceil(major1) - 1; the
    # extent is at most size/2 - 1 so size/2 + 1 candidate steps always suffice.
    steps = size // 2 + 1
    first = np.trunc(major0)
    step = first[:, None] + np.arange(steps)[None, :]  # (N, steps)
    valid = step < np.ceil(major1)[:, None]

    # Fractional coverage of the first and the last step along the major axis. (The
    # last-step branch can never fire, since steps stop below ceil(major1); it is kept
    # to follow the original's rule to the letter.)
    lo_full, hi_full = np.ceil(major0)[:, None], np.trunc(major1)[:, None]
    weight = np.where(
        step < lo_full,
        lo_full - major0[:, None],
        np.where(step > hi_full, major1[:, None] - hi_full, 1.0),
    )

    # Minor-axis interval [xs, xe) covered at this step. The 0.5 offset is the
    # original's: the interval is taken half a step before the step's index.
    xs = minor0[:, None] + (step - major0[:, None] - 0.5) * slope[:, None]
    xe = xs + _THICKNESS
    xs_up, xe_down = np.ceil(xs), np.trunc(xe)

    # Up to four (minor index, coverage) pairs per step, as a fixed-size stack.
    minor_idx = np.stack([np.trunc(xs), xs_up, xs_up + 1, xe_down], axis=-1)
    cover = np.stack([xs_up - xs, np.ones_like(xs), np.ones_like(xs), xe - xe_down], axis=-1)
    keep = np.stack(
        [
            xs_up != xs,  # left pixel only partly covered
            xs_up < xe_down,  # first fully covered pixel
            xs_up + 1 < xe_down,  # second one (xs integral, or xe rounded up)
            xe_down != xe,
        ],
        axis=-1,
    )  # right pixel only partly covered
    keep &= valid[..., None]

    major_idx = np.broadcast_to(step[..., None], minor_idx.shape)
    flip = transposed[:, None, None]
    rows = np.where(flip, minor_idx, major_idx)[keep].astype(np.int64)
    cols = np.where(flip, major_idx, minor_idx)[keep].astype(np.int64)
    image_idx = np.broadcast_to(np.arange(n)[:, None, None], keep.shape)[keep]
    values = 2 * (weight[..., None] * cover)[keep]

    # Each pixel receives at most one contribution, so a weighted bincount is an
    # exact scatter: 0 + value, then the original's "minus one, clip".
    flat = (image_idx * size + rows) * size + cols
    canvas = np.bincount(flat, weights=values, minlength=n * size * size)
    canvas = np.clip(canvas - 1.0, -1.0, 1.0)
    return canvas.reshape(n, size, size, 1).astype(np.float32)


def line_labels(angles) -> np.ndarray:
    """The angle sector (0..9) of each angle, the lines' class label."""
    turns = np.mod(np.asarray(angles, np.float64), 2 * np.pi) / (2 * np.pi)
    return np.minimum((turns * LINES_CLASSES).astype(np.int32), LINES_CLASSES - 1)


# --- the metrics ------------------------------------------------------------------------------


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
      as 0, or NaN when every one is undefined; and the share of those undefined ones.
    """
    interpolations = np.asarray(interpolations)
    count, steps = interpolations.shape[:2]
    distance, angle = nearest_lines(
        interpolations.reshape(-1, *interpolations.shape[2:]), reference
    )
    scores = smoothness(angle.reshape(count, steps))
    undefined = np.isnan(scores)
    # With no interpolation defined there is nothing to average: NaN, as the original code.
    mean = np.nan if undefined.all() else float(np.where(undefined, 0.0, scores).mean())
    return {
        "mean_distance": float(distance.mean()),
        "smoothness": mean,
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


def median_of_last(rows, last: int = PAPER_LAST_SCORES) -> dict:
    """A run's figure read as the paper reads one: the median of its last `last` scores.

    One score at the end of a run moves by a few hundredths of 1e-3 from one checkpoint to the
    next; the median of several is what the paper's table reports for a run.

    Args:
      rows: one run's scores, dicts with "kimg", "mean_distance" and "smoothness", any order.
      last: how many of the latest scores to take the median of.

    Returns:
      {"mean_distance", "smoothness"}: the medians (NaN where a score is undefined), and
      {"scores", "from_kimg", "to_kimg"}: how many scores, and the budgets they span.

    Raises:
      ValueError: fewer than `last` scores, or `last` below 1.
    """
    if last < 1:
        raise ValueError(f"the median needs at least one score, not {last}")
    rows = sorted(rows, key=lambda row: row["kimg"])
    if len(rows) < last:
        raise ValueError(
            f"the median of the last {last} scores needs {last}; the run has {len(rows)}"
        )
    taken = rows[-last:]
    return {
        "mean_distance": float(np.median([row["mean_distance"] for row in taken])),
        "smoothness": float(np.median([row["smoothness"] for row in taken])),
        "scores": last,
        "from_kimg": taken[0]["kimg"],
        "to_kimg": taken[-1]["kimg"],
    }
