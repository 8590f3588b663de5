"""Judging images: scores as pure functions, the pegasus `Judge`, the cross-fade baseline, the
scorecard, and the realism judges (`ClassifierJudge`, the classifier-free `SwdJudge`)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from acai.errors import AcaiError
from acai.files import sha256_file
from acai.images import decode_image, to_float, to_uint8
from acai.pegasi.baselines import dissolve_index
from acai.pegasi.metrics import kid, sq_distances, swd_of_sets
from acai.training import data as data_lib
from acai.training.run import SAMPLES, Run


def sharpness(images: np.ndarray) -> np.ndarray:
    """Variance of the Laplacian of each image's luminance (0-255 scale); higher is sharper.

    Args:
      images: uint8 or float (B, H, W, 3) on the 0-255 scale.

    Returns:
      (B,) float64.
    """
    grey = np.asarray(images, np.float64) @ np.array([0.299, 0.587, 0.114])  # (B, H, W)
    lap = (
        4 * grey[:, 1:-1, 1:-1]
        - grey[:, :-2, 1:-1]
        - grey[:, 2:, 1:-1]
        - grey[:, 1:-1, :-2]
        - grey[:, 1:-1, 2:]
    )
    return lap.var(axis=(1, 2))


def nearest_distance(images: np.ndarray, pool: np.ndarray) -> np.ndarray:
    """RMSE (0-255) from each image to its nearest neighbour in `pool`.

    Args:
      images: (B, H, W, C) images.
      pool: (N, H, W, C) images, e.g. the training set.

    Returns:
      (B,) distances.
    """
    pixels = np.asarray(images, np.float32)
    d2 = sq_distances(pixels, pool)  # (B, N)
    return np.sqrt(d2.min(axis=1) / pixels[0].size)


def spread(images: np.ndarray) -> float:
    """Mean pairwise RMSE (0-255) within a batch; near 0 means the batch collapsed to one image."""
    pixels = np.asarray(images, np.float32)
    if len(pixels) < 2:
        return 0.0
    d2 = sq_distances(pixels, pixels) / pixels[0].size  # (B, B)
    return float(np.sqrt(d2)[np.triu_indices(len(pixels), 1)].mean())


def whiteness(images: np.ndarray) -> np.ndarray:
    """Share of each image's pixels that are bright and grey (white-ish), in [0, 1]."""
    x = np.asarray(images, np.float32)
    bright = x.min(-1) > 170
    grey = (x.max(-1) - x.min(-1)) < 40
    return (bright & grey).mean(axis=(1, 2))


# The dissolve index of a true in-between (a photo moved 2 px, fitted on itself and moved 4 px,
# measured on CIFAR-10): a pegasus blended less than this loses nothing for blending.
IN_BETWEEN_INDEX = 0.7
BLEND_PENALTY = 0.2  # what a pure blend of the two ends (index 1) loses


def combined_score(
    p_horse, p_bird, critic_alpha, sharp_ratio, white=None, *, prefer_white=False, blend=None
):
    """The ranking score of a pegasus, at most 1 (1.3 with prefer_white); higher is better.

    0.6 * recognisability + 0.2 * realism + 0.2 * sharpness, where recognisability is
    2 * min(P(horse), P(bird)) (1 when the classifier is torn 50/50 between the two), realism is
    1 - 2 * critic alpha (the critic's alpha is 0 for real-looking reconstructions and at most
    0.5), and sharpness is the image's Laplacian variance relative to real horse and bird
    photos, capped at 1. prefer_white adds 0.3 * whiteness. With `blend`, the dissolve index
    of each pegasus against its two ends' reconstructions, it loses up to BLEND_PENALTY, in
    proportion to how far the index lies above a true in-between's (IN_BETWEEN_INDEX).
    """
    recognisable = 2 * np.minimum(p_horse, p_bird)
    realism = 1 - 2 * np.clip(critic_alpha, 0, 0.5)
    score = 0.6 * recognisable + 0.2 * realism + 0.2 * np.clip(sharp_ratio, 0, 1)
    if prefer_white:
        score = score + 0.3 * np.asarray(white)
    if blend is not None:
        excess = (np.asarray(blend) - IN_BETWEEN_INDEX) / (1 - IN_BETWEEN_INDEX)
        score = score - BLEND_PENALTY * np.clip(excess, 0, 1)
    return score


@dataclasses.dataclass
class Judge:
    """Everything needed to score pegasi: the run's critic, a classifier, real photos."""

    run: Run | None  # None: score any images, without the critic's alpha
    classifier: (
        object | None
    )  # acai.training.classifier.Classifier, or None to skip P(horse)/P(bird)
    train_images: np.ndarray | None  # None: no nearest-training-image search (it reads NaN)
    real_sharpness: float  # median over real test horses and birds (or the sample photos)

    def score(
        self,
        decoded: np.ndarray,
        *,
        prefer_white: bool = False,
        nearest: bool = True,
        ends: tuple | None = None,
    ) -> dict[str, np.ndarray]:
        """Scores float images in [-1, 1] (B, 32, 32, 3); returns one array per score.

        nearest=False skips the (slow) nearest-training-image search; it reads NaN then.
        `ends`, the reconstructions (B, 32, 32, 3) of each pegasus's horse and bird, add its
        dissolve index ("blend"), which the ranking score then penalises.
        """
        images = np.asarray(to_uint8(decoded))
        critic = (
            self.run.model.critic(decoded, training=False)
            if self.run
            else np.zeros((len(images), 1))
        )
        out = {
            "critic_alpha": np.asarray(critic)[:, 0],
            "sharpness": sharpness(images),
            "nearest_train_rmse": nearest_distance(images, self.train_images)
            if nearest and self.train_images is not None
            else np.full(len(images), np.nan),
            "whiteness": whiteness(images),
        }
        out["sharpness_vs_real"] = out["sharpness"] / self.real_sharpness
        if ends is not None:  # as served: the uint8 images, in [-1, 1]
            served = [to_float(np.asarray(to_uint8(e))) for e in ends]
            out["blend"] = dissolve_index(to_float(images), *served)
        if self.classifier is not None:
            probs = self.classifier.probabilities(images)
            out["p_horse"], out["p_bird"], called = horse_or_bird(self.classifier, probs)
            out["horse_or_bird"] = called.astype(np.float32)
            out["score"] = combined_score(
                out["p_horse"],
                out["p_bird"],
                out["critic_alpha"],
                out["sharpness_vs_real"],
                out["whiteness"],
                prefer_white=prefer_white,
                blend=out.get("blend"),
            )
        return out


def horse_and_bird(data: data_lib.ImageData, *, fix: str = "pass data with both") -> list[int]:
    """The labels of the horses and of the birds in `data`: the one lookup of the two classes a
    pegasus is made of; `fix` ends the error when one is missing."""
    return data_lib.class_indices(data, ("horse", "bird"), fix=fix)


def make_judge(run: Run, data: data_lib.ImageData | None, classifier=None) -> Judge:
    """Builds the scorer for a run; real-photo sharpness comes from its test horses and birds,
    or from the shipped sample photos when there are no data."""
    if data is None:
        real = np.stack([decode_image(p) for p in sorted(SAMPLES.glob("*.jpg"))])
        return Judge(run, classifier, None, float(np.median(sharpness(real))))
    real = data.test_images[np.isin(data.test_labels, horse_and_bird(data))]
    return Judge(run, classifier, data.train_images, float(np.median(sharpness(real))))


# --- the baseline and summaries --------------------------------------------------------------


def horse_or_bird(classifier, probs: np.ndarray):
    """(P(horse), P(bird), whether the most likely class is one of the two) per image, from a
    classifier's probabilities (B, classes)."""
    horse, bird = classifier.index("horse"), classifier.index("bird")
    return probs[:, horse], probs[:, bird], np.isin(probs.argmax(1), [horse, bird])


def scorecard(judge: Judge, images: np.ndarray) -> dict:
    """The pegasus scorecard of any uint8 images (B, 32, 32, 3), e.g. photos or cross-fades.

    Needs a judge with a classifier; its run may be None (then critic alpha reads 0).
    """
    images = np.asarray(images, np.uint8)
    return summarise(judge.score(to_float(images)), slice(None), images)


def summarise(scores: dict, keep, images: np.ndarray) -> dict:
    """The scorecard of a set of images: shares, means and the best recognisability."""
    pick_ = {k: np.asarray(v)[keep] for k, v in scores.items()}
    recog = np.minimum(pick_["p_horse"], pick_["p_bird"])
    return {
        "horse_or_bird_share": float(pick_["horse_or_bird"].mean()),
        "mean_min_p": float(recog.mean()),
        "best_min_p": float(recog.max()),
        "mean_critic_alpha": float(pick_["critic_alpha"].mean()),
        "mean_sharpness_vs_real": float(pick_["sharpness_vs_real"].mean()),
        "mean_nearest_train_rmse": float(pick_["nearest_train_rmse"].mean()),
        "spread_rmse": spread(images),
    }


# --- judges of realism: a distance between a set of images and real photos ----------------

JUDGE_PATH = Path("runs") / "judge" / "classifier.keras"  # acai classifier --architecture resnet


class ClassifierJudge:
    """KID x 1000 in a classifier's penultimate features, and what the classifier calls each
    image (horse or bird, min(P(horse), P(bird)))."""

    kind = "kid"

    def __init__(self, classifier, *, sibling: bool = False):
        self.classifier = classifier  # an acai.training.classifier.Classifier
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
        out = {}
        for name, images in sets.items():
            features, probs = self.classifier.features_and_probabilities(images)
            p_horse, p_bird, called = horse_or_bird(self.classifier, probs)
            out[name] = {
                "distance": 1000 * kid(features, reference),
                "horse_or_bird": called,
                "min_p": np.minimum(p_horse, p_bird),
            }
        return out


class SwdJudge:
    """The classifier-free judge: `acai.pegasi.metrics.swd` (x 1000, mean over pyramid levels)."""

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
        verdicts = swd_of_sets(sets, real, seed=seed)
        return {name: {"distance": verdicts[name]["mean"]} for name in sets}


def from_files(paths, *, feature_model: str | Path | None = None) -> list:
    """A `ClassifierJudge` per classifier file that exists, then an `SwdJudge`.

    Args:
      paths: classifier files (from `acai classifier`); missing ones are skipped.
      feature_model: the run's feature-loss network (config `perceptual_model`), if any. A
        judge that is that very file is refused: it would grade the decoder by what it was
        trained toward. A judge of its architecture is kept but marked not independent.

    Returns:
      The judges, each classifier judge once.
    """
    from acai.training.classifier import Classifier, architecture_of

    feature_hash = feature_family = None
    if feature_model and Path(feature_model).is_file():
        feature_hash = sha256_file(feature_model)
        feature_family = architecture_of(feature_model)  # its facts file: no model to load
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
