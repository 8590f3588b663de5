"""Realism of interpolants, the way generative models are compared, under several judges.

On the same random horse-bird pairs (of the test split, or of the validation split that recipe
choices are made on), each set of images below is compared with real training horses and
birds: reconstructions, slerp and lerp interpolants at t = 0.5, the pixel cross-fade of the
photos, the cross-fade of their reconstructions, and real photos (the floor). Each judge gives
one distance per set: KID in the penultimate features of a classifier (`ClassifierJudge`),
or the sliced Wasserstein distance of Laplacian-pyramid patches, which learns nothing
(`SwdJudge`). A judge counts as independent only if no training loss used its network or one
of its architecture. Two independent draws of pairs and real photos show how much a figure
moves.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from acai import data as data_lib
from acai import model as model_lib
from acai.errors import AcaiError
from acai.files import sha256_file
from acai.images import to_float, to_uint8
from acai.metrics import kid, swd
from acai.run import Run

JUDGE_PATH = Path("runs") / "judge" / "classifier.keras"  # acai classifier --architecture resnet
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


class ClassifierJudge:
    """KID x 1000 in a classifier's penultimate features, and what the classifier calls each
    image (horse or bird, min(P(horse), P(bird)))."""

    kind = "kid"

    def __init__(self, classifier, *, sibling: bool = False):
        self.classifier = classifier  # an acai.classifier.Classifier
        self.sibling = sibling  # of a training loss's architecture: it flatters the model
        self.name = f"kid {classifier.path.parent.name}/{classifier.path.name}"

    def describe(self) -> dict:
        return {
            "kind": self.kind,
            "file": self.classifier.path.name,
            "sha256": self.classifier.sha256,
            "architecture": self.classifier.architecture,
            "test_accuracy": self.classifier.info.get("test_accuracy"),
            "independent": not self.sibling,
        }

    def judge(self, sets: dict, real: np.ndarray, *, seed: int) -> dict:
        """{set: {"distance", "horse_or_bird" (B,) bool, "min_p" (B,)}} for uint8 image sets."""
        reference = self.classifier.features(real)
        horse, bird = self.classifier.index("horse"), self.classifier.index("bird")
        out = {}
        for name, images in sets.items():
            features, probs = self.classifier.features_and_probabilities(images)
            out[name] = {
                "distance": 1000 * kid(features, reference),
                "horse_or_bird": np.isin(probs.argmax(1), [horse, bird]),
                "min_p": np.minimum(probs[:, horse], probs[:, bird]),
            }
        return out


class SwdJudge:
    """The classifier-free judge: `acai.metrics.swd` (x 1000, mean over pyramid levels)."""

    kind = "swd"
    name = "swd"

    def describe(self) -> dict:
        return {
            "kind": self.kind,
            "file": None,
            "sha256": None,
            "architecture": "none",
            "independent": True,
        }

    def judge(self, sets: dict, real: np.ndarray, *, seed: int) -> dict:
        return {
            name: {"distance": swd(images, real, seed=seed)["mean"]}
            for name, images in sets.items()
        }


def judges_from_files(paths, *, feature_model: str | Path | None = None) -> list:
    """A `ClassifierJudge` per classifier file that exists, then an `SwdJudge`.

    Args:
      paths: classifier files (from `acai classifier`); missing ones are skipped.
      feature_model: the run's feature-loss network (config `perceptual_model`), if any. A
        judge that is that very file is refused: it would grade the decoder by what it was
        trained toward. A judge of its architecture is kept but marked not independent.

    Returns:
      The judges, each classifier judge once.
    """
    from acai.classifier import Classifier

    feature_hash = feature_family = None
    if feature_model and Path(feature_model).is_file():
        feature_hash = sha256_file(feature_model)
        feature_family = Classifier(feature_model).architecture
    judges, seen = [], set()
    for path in paths:
        if not Path(path).is_file():
            continue
        classifier = Classifier(path)
        if classifier.sha256 == feature_hash:
            raise AcaiError(
                f"judge '{path}' is the run's own feature-loss network ({feature_model}); "
                "judge with a classifier nothing trained against: acai classifier "
                "--architecture resnet"
            )
        if classifier.sha256 not in seen:
            seen.add(classifier.sha256)
            sibling = classifier.architecture == feature_family
            judges.append(ClassifierJudge(classifier, sibling=sibling))
    return [*judges, SwdJudge()]


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
        validation view of `acai.data.carve_validation` to judge on validation pairs).
      judges: `ClassifierJudge`s and `SwdJudge`s (`judges_from_files`).
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
    for draw in range(draws):
        sets = image_sets(run, data, draw_pairs(data, pairs, rng))
        reference = real_photos(data, real, rng)
        for judge in judges:
            for name, verdict in judge.judge(sets, reference, seed=seed + draw).items():
                seen[judge.name][name].append(verdict)
    return {
        "judges": {j.name: {**j.describe(), **_summary(seen[j.name])} for j in judges},
        "pairs": pairs,
        "real_images": real,
        "draws": draws,
        "t": 0.5,
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
