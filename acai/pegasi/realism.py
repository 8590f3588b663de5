"""Realism of interpolants, the way generative models are compared, under several judges.

On the same random horse-bird pairs (of the test split, or of the validation split that recipe
choices are made on), each set of images below is compared with real training horses and
birds: reconstructions, slerp and lerp interpolants at t = 0.5, the pixel cross-fade of the
photos, the cross-fade of their reconstructions, and real photos (the floor). Each judge
(`acai.pegasi.judge.ClassifierJudge`, `acai.pegasi.judge.SwdJudge`) gives one distance per
set; it counts as independent only if no training loss used its network or one of its
architecture. Two
independent draws of pairs and real photos show how much a figure moves.
"""

from __future__ import annotations

import numpy as np

from acai.core.walks import PATHS, crossfade
from acai.errors import AcaiError
from acai.images import sheet, to_float, to_uint8
from acai.pegasi import baselines
from acai.pegasi.judge import horse_and_bird
from acai.training import data as data_lib
from acai.training.run import Run

PAIRS = 500  # horse-bird pairs per draw
REAL = 2000  # real training horses and birds per draw
DRAWS = 2
SETS = (
    "real",
    "reconstruction",
    "slerp",
    "lerp",
    "crossfade",
    "crossfade_contrast",
    "half_cut",
    "crossfade_reconstructions",
)
# The dissolve index's rows: the walks' midpoints, and the scale's references.
DISSOLVE_ROWS = ("slerp", "lerp", "crossfade_reconstructions", "unrelated", "shifted_photo")


def horses_and_birds(data: data_lib.ImageData) -> tuple[np.ndarray, np.ndarray]:
    """The test indices of the horses and of the birds."""
    horse, bird = horse_and_bird(data, fix="realism needs both")
    return np.flatnonzero(data.test_labels == horse), np.flatnonzero(data.test_labels == bird)


def draw_pairs(
    data: data_lib.ImageData, n: int, rng: np.random.Generator, *, fix: str = "ask for fewer"
) -> np.ndarray:
    """(n, 2) distinct random pairs of test indices, a horse and a bird each; `fix` ends the
    error when there are fewer than n pairs."""
    horses, birds = horses_and_birds(data)
    if len(horses) * len(birds) < n:
        raise AcaiError(f"only {len(horses) * len(birds)} horse-bird pairs; {fix}")
    flat = rng.choice(len(horses) * len(birds), size=n, replace=False)
    return np.stack([horses[flat // len(birds)], birds[flat % len(birds)]], 1)


T = 0.5  # where on each walk the midpoints are judged


def decode_pairs(run: Run, data: data_lib.ImageData, pairs: np.ndarray) -> dict:
    """Each pair's photos, their reconstructions and the midpoints at T along each walk, float
    in [-1, 1]: what `image_sets` and `dissolve_indices` are made of, decoded once.

    Returns:
      {"horse", "bird", "horse_reconstruction", "bird_reconstruction", "lerp", "slerp"}, each
      (pairs, H, W, C).
    """
    horses = to_float(data.test_images[pairs[:, 0]])
    birds = to_float(data.test_images[pairs[:, 1]])
    z_h, z_b = run.model.encode(horses), run.model.encode(birds)
    return {
        "horse": np.asarray(horses),
        "bird": np.asarray(birds),
        "horse_reconstruction": np.asarray(run.model.decode(z_h)),
        "bird_reconstruction": np.asarray(run.model.decode(z_b)),
        **{path: np.asarray(run.model.decode_path(z_h, z_b, T, path=path)) for path in PATHS},
    }


def image_sets(decoded: dict) -> dict:
    """The uint8 image sets of `SETS` from `decode_pairs`; "real" and "reconstruction" take the
    horse of every even pair and the bird of every odd one, so they hold both classes."""
    horses, birds = decoded["horse"], decoded["bird"]
    rec_h, rec_b = decoded["horse_reconstruction"], decoded["bird_reconstruction"]
    odd = (np.arange(len(horses)) % 2 == 1)[:, None, None, None]
    sets = {
        "real": np.where(odd, birds, horses),
        "reconstruction": np.where(odd, rec_b, rec_h),
        "slerp": decoded["slerp"],
        "lerp": decoded["lerp"],
        "crossfade": crossfade(horses, birds, T),
        "crossfade_contrast": baselines.contrast_restored(horses, birds, T),
        "half_cut": baselines.half_and_half(horses, birds),
        "crossfade_reconstructions": crossfade(rec_h, rec_b, T),
    }
    return {name: np.asarray(to_uint8(images)) for name, images in sets.items()}


def dissolve_indices(decoded: dict) -> dict:
    """`acai.pegasi.baselines.dissolve_index` of each pair's midpoints from `decode_pairs`, as
    the product serves them (uint8), fitted on the reconstructions of the pair's two photos;
    and of the scale's references: a cross-fade of those reconstructions (1), the
    reconstruction of an unrelated photo (the floor), and a true in-between, a photo moved 2
    pixels fitted on itself and moved 4 pixels.

    Returns:
      {row of `DISSOLVE_ROWS`: (pairs,) R^2}.
    """

    def served(images):  # as a PNG holds them
        return to_float(np.asarray(to_uint8(images)))

    rec_h = served(decoded["horse_reconstruction"])
    rec_b = served(decoded["bird_reconstruction"])
    horses = decoded["horse"]
    unrelated = np.roll(rec_h, 1, axis=0)  # another pair's horse
    index = baselines.dissolve_index
    return {
        **{path: index(served(decoded[path]), rec_h, rec_b) for path in PATHS},
        "crossfade_reconstructions": index(served(crossfade(rec_h, rec_b, T)), rec_h, rec_b),
        "unrelated": index(unrelated, rec_h, rec_b),
        "shifted_photo": index(baselines.shifted(horses, 2), horses, baselines.shifted(horses, 4)),
    }


RANDOM_SHEET = 64  # random pairs in the picture beside their contrast-restored cross-fades
SHEET_PER_ROW = 4  # pairs to a row of it


def random_sheet(
    run: Run, data: data_lib.ImageData, *, n: int = RANDOM_SHEET, seed: int = 0, path="slerp"
) -> tuple[np.ndarray, dict]:
    """The midpoints of n random horse-bird pairs, every one kept, beside the strongest
    one-line pixel trick: each pair is its horse, its bird, the midpoint at T along `path`, and
    the contrast-restored cross-fade of the two photos. The picture to count by eye which
    midpoints show one figure and which two laid over each other.

    Args:
      run: a loaded run.
      data: its data, with horses and birds in the test split (or the view given).
      n: pairs (all of them, if there are fewer).
      seed: seeds the pairs.
      path: the walk, "lerp" or "slerp".

    Returns:
      (picture: a uint8 `acai.images.sheet`, `SHEET_PER_ROW` pairs to a row,
      {"pairs": [[horse index, bird index], ...], "dissolve_index": [R^2 of each midpoint],
      "path", "t"}), pairs in the picture's order.
    """
    horses, birds = horses_and_birds(data)
    pairs = draw_pairs(data, min(n, len(horses) * len(birds)), np.random.default_rng(seed))
    decoded = decode_pairs(run, data, pairs)
    fades = baselines.contrast_restored(decoded["horse"], decoded["bird"], T)
    columns = [decoded["horse"], decoded["bird"], decoded[path], fades]
    picture = sheet([to_uint8(c) for c in columns], per_row=SHEET_PER_ROW)
    index = dissolve_indices(decoded)[path]
    about = {
        "pairs": pairs.tolist(),
        "dissolve_index": [round(float(r), 4) for r in index],
        "path": path,
        "t": T,
    }
    return picture, about


def real_photos(data: data_lib.ImageData, n: int, rng: np.random.Generator) -> np.ndarray:
    """n random training horses and birds (uint8)."""
    labels = horse_and_bird(data, fix="realism needs both")
    pool = np.flatnonzero(np.isin(data.train_labels, labels))
    return data.train_images[rng.choice(pool, size=min(n, len(pool)), replace=False)]


def realism(
    run: Run,
    data: data_lib.ImageData,
    judges: list,
    *,
    pairs: int = PAIRS,
    real: int = REAL,
    draws: int = DRAWS,
    seed: int = 0,
    split: str = "test",
) -> dict:
    """Each judge's distance of each image set from real training photos.

    Args:
      run: a loaded run.
      data: its data, with horses and birds; pairs come from its test split (pass the
        validation view of `acai.training.data.carve_validation` to judge on validation pairs).
      judges: `acai.pegasi.judge.ClassifierJudge`s and `SwdJudge`s (`acai.pegasi.judge.from_files`).
      pairs: random horse-bird pairs per draw (all of them, if there are fewer).
      real: real training horses and birds per draw.
      draws: independent draws of pairs and real photos.
      seed: seeds the draws.
      split: the name of the split the pairs come from, recorded with the figures.

    Returns:
      {"judges": {judge name: {"kind", "file", "sha256", "architecture", ..., "distance":
      {set: mean over draws}, "draws": {set: [per draw]}, "moves": the largest change of any
      set between draws, and for classifier judges "horse_or_bird_share" and "mean_min_p":
      {set: over every pair of every draw}}}, and the sizes}.
    """
    rng = np.random.default_rng(seed)
    horses, birds = horses_and_birds(data)
    pairs = min(pairs, len(horses) * len(birds))  # small data sets: every pair
    seen = {j.name: {name: [] for name in SETS} for j in judges}
    blended = {row: [] for row in DISSOLVE_ROWS}
    for draw in range(draws):
        decoded = decode_pairs(run, data, draw_pairs(data, pairs, rng))
        sets = image_sets(decoded)
        reference = real_photos(data, real, rng)
        for judge in judges:
            for name, verdict in judge.judge(sets, reference, seed=seed + draw).items():
                seen[judge.name][name].append(verdict)
        for row, values in dissolve_indices(decoded).items():
            blended[row].append(values)
    return {
        "judges": {j.name: {**j.describe(), **_summary(seen[j.name])} for j in judges},
        "dissolve_index": {
            row: float(np.median(np.concatenate(values))) for row, values in blended.items()
        },
        "pairs": pairs,
        "real_images": real,
        "draws": draws,
        "t": T,
        "split": split,
    }


def _summary(verdicts: dict) -> dict:
    """One judge's per-draw verdicts -> its means, draws and moves (and shares, if any)."""
    draws = {name: [v["distance"] for v in vs] for name, vs in verdicts.items()}
    out = {
        "distance": {name: float(np.mean(d)) for name, d in draws.items()},
        "draws": {name: [round(float(x), 4) for x in d] for name, d in draws.items()},
        "moves": float(max(np.ptp(d) for d in draws.values())),
    }
    if all("min_p" in v for vs in verdicts.values() for v in vs):
        out["horse_or_bird_share"] = {
            n: float(np.concatenate([v["horse_or_bird"] for v in vs]).mean())
            for n, vs in verdicts.items()
        }
        out["mean_min_p"] = {
            n: float(np.concatenate([v["min_p"] for v in vs]).mean()) for n, vs in verdicts.items()
        }
    return out
