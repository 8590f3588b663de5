"""Realism of interpolants, the way generative models are compared: KID against real photos.

On the same random test horse-bird pairs, each set of images below is compared, in the
penultimate features of the classifier, with real training horses and birds:
reconstructions, slerp and lerp interpolants at t = 0.5, the pixel cross-fade of the photos,
the cross-fade of their reconstructions, and real test photos (the floor). Two independent
draws of pairs and real photos show how much a figure moves.
"""

from __future__ import annotations

import numpy as np

from acai import data as data_lib
from acai import model as model_lib
from acai.errors import AcaiError
from acai.images import to_float, to_uint8
from acai.metrics import kid
from acai.run import Run

PAIRS = 500  # horse-bird pairs per draw
REAL = 2000  # real training horses and birds per draw
DRAWS = 2
SETS = ("real", "reconstruction", "slerp", "lerp", "crossfade", "crossfade_reconstructions")


def horses_and_birds(data: data_lib.ImageData) -> tuple[np.ndarray, np.ndarray]:
    """The test indices of the horses and of the birds."""
    missing = [c for c in ("horse", "bird") if c not in data.class_names]
    if missing:
        raise AcaiError(f"realism needs horses and birds; the data has no '{missing[0]}'")
    horse, bird = (data.class_names.index(c) for c in ("horse", "bird"))
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


def image_sets(run: Run, data: data_lib.ImageData, pairs: np.ndarray, *, t: float = 0.5):
    """The uint8 image sets of `SETS` for these pairs; "real" and "reconstruction" take the
    horse of every even pair and the bird of every odd one, so they hold both classes."""
    horses = to_float(data.test_images[pairs[:, 0]])
    birds = to_float(data.test_images[pairs[:, 1]])
    z_h, z_b = run.model.encode(horses), run.model.encode(birds)
    rec_h, rec_b = np.asarray(run.model.decode(z_h)), np.asarray(run.model.decode(z_b))
    slerp = np.asarray(run.model.decode(model_lib.slerp(z_h, z_b, t)))
    lerp = np.asarray(run.model.decode(model_lib.lerp(z_h, z_b, t)))
    odd = (np.arange(len(pairs)) % 2 == 1)[:, None, None, None]
    sets = {
        "real": np.where(odd, birds, horses),
        "reconstruction": np.where(odd, rec_b, rec_h),
        "slerp": slerp,
        "lerp": lerp,
        "crossfade": (1 - t) * horses + t * birds,
        "crossfade_reconstructions": (1 - t) * rec_h + t * rec_b,
    }
    return {name: np.asarray(to_uint8(images)) for name, images in sets.items()}


def real_photos(data: data_lib.ImageData, n: int, rng: np.random.Generator) -> np.ndarray:
    """n random training horses and birds (uint8)."""
    labels = [data.class_names.index(c) for c in ("horse", "bird")]
    pool = np.flatnonzero(np.isin(data.train_labels, labels))
    return data.train_images[rng.choice(pool, size=min(n, len(pool)), replace=False)]


def realism(
    run: Run,
    data: data_lib.ImageData,
    classifier,
    *,
    pairs: int = PAIRS,
    real: int = REAL,
    draws: int = DRAWS,
    seed: int = 0,
) -> dict:
    """KID of each image set against real training photos, and how the judge sees them.

    Args:
      run: a loaded run.
      data: its data, with horses and birds.
      classifier: an `acai.classifier.Classifier` (the judge and its features).
      pairs: random test horse-bird pairs per draw (all of them, if there are fewer).
      real: real training horses and birds per draw.
      draws: independent draws of pairs and real photos.
      seed: seeds the draws.

    Returns:
      {"kid": {set: mean over draws}, "kid_draws": {set: [per draw]}, "kid_moves": the largest
      change of any set's KID between draws, "horse_or_bird_share" and "mean_min_p": {set:
      over every pair of every draw}, and the sizes}.
    """
    rng = np.random.default_rng(seed)
    horse, bird = classifier.index("horse"), classifier.index("bird")
    horses, birds = horses_and_birds(data)
    pairs = min(pairs, len(horses) * len(birds))  # small data sets: every pair
    per_draw = {name: [] for name in SETS}
    share = {name: [] for name in SETS}
    min_p = {name: [] for name in SETS}
    for _ in range(draws):
        sets = image_sets(run, data, draw_pairs(data, pairs, rng))
        reference = classifier.features(real_photos(data, real, rng))
        for name, images in sets.items():
            features, probs = classifier.features_and_probabilities(images)
            per_draw[name].append(kid(features, reference))
            share[name].append(np.isin(probs.argmax(1), [horse, bird]))
            min_p[name].append(np.minimum(probs[:, horse], probs[:, bird]))
    return {
        "kid": {name: float(np.mean(v)) for name, v in per_draw.items()},
        "kid_draws": {name: [round(x, 5) for x in v] for name, v in per_draw.items()},
        "kid_moves": float(max(np.ptp(v) for v in per_draw.values())),
        "horse_or_bird_share": {n: float(np.concatenate(v).mean()) for n, v in share.items()},
        "mean_min_p": {n: float(np.concatenate(v).mean()) for n, v in min_p.items()},
        "pairs": pairs,
        "real_images": real,
        "draws": draws,
        "t": 0.5,
        "classifier_test_accuracy": classifier.info.get("test_accuracy"),
    }
