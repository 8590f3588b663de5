"""The demo's model side: the photos it has seen, their latents, pegasi and their scores, the
best t, random pairs and the strips."""

from __future__ import annotations

import collections
import hashlib
import re
import threading
from pathlib import Path

import numpy as np

from acai.core.model import strips
from acai.core.walks import PATHS
from acai.errors import AcaiError
from acai.images import grid, to_float, to_uint8
from acai.pegasi.judge import Judge
from acai.pegasi.pegasus import best_of_each_pair
from acai.training import data as data_lib
from acai.training.run import Run

__all__ = ["BEST_T", "Refusal", "SCORES", "STRIP_STEPS", "Studio"]

STRIP_STEPS = 11  # decoded points on each row of the strip, both ends included
CACHE = 256  # uploaded photos whose latents are kept (the samples are always kept)
BEST_T = np.round(np.linspace(0, 1, 101), 2)  # where "best t" looks: every slider position
SCORES = ("critic_alpha", "sharpness_vs_real", "p_horse", "p_bird", "score")  # on the page


class Refusal(AcaiError):
    """A request the demo cannot answer; `status` is its HTTP status code (4xx)."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Studio:
    """The loaded model, its judge and the latents of every photo it has seen; one model call
    at a time."""

    def __init__(self, run: Run, judge: Judge, *, data=None, cache: int = CACHE):
        self.run, self.judge = run, judge  # judge.classifier may be None
        self.data = data  # an acai.training.data.ImageData for random test photos, or None
        self.samples: dict[str, list] = {"horse": [], "bird": []}  # filled by `start`
        self._photos: collections.OrderedDict[str, tuple] = collections.OrderedDict()
        self._pinned: set[str] = set()
        self._cache = cache
        self._rng = np.random.default_rng()
        self._lock = threading.Lock()  # Keras models and the cache are shared by all threads

    def add(self, image: np.ndarray, *, name: str = "photo", pin: bool = False) -> dict:
        """Encodes a uint8 (32, 32, 3) photo once and keeps its latent.

        Returns:
          {"id", "name" (the first name it was given), "known" (seen before), "photo" (URL)}.
        """
        image = np.ascontiguousarray(image, np.uint8)
        key = hashlib.sha256(image.tobytes()).hexdigest()[:16]
        with self._lock:
            known = key in self._photos
            if not known:
                latent = np.asarray(self.run.model.encode(to_float(image[None])))  # (1, h, w, c)
                self._photos[key] = (image, latent, name)
            self._photos.move_to_end(key)
            if pin:
                self._pinned.add(key)
            unpinned = [k for k in self._photos if k not in self._pinned]
            for old in unpinned[: max(0, len(unpinned) - self._cache)]:
                del self._photos[old]
            first = self._photos[key][2]
        return {"id": key, "name": first, "known": known, "photo": f"/api/photo.png?id={key}"}

    def photo(self, key: str) -> tuple[np.ndarray, np.ndarray, str]:
        """(image, latent, name) of a photo `add` returned `key` for."""
        with self._lock:
            if key not in self._photos:
                raise Refusal(404, f"no photo '{key}' here (the demo restarted?); pick it again")
            return self._photos[key]

    def pegasus(self, horse: str, bird: str, t: float, path: str) -> tuple[np.ndarray, dict]:
        """The decoded pegasus (32, 32, 3) uint8 at t on the path, and its SCORES (P(horse),
        P(bird) and the ranking score only with a classifier): the ranking `best_t` maximises,
        its blend of the two ends' reconstructions penalised."""
        (_, za, _), (_, zb, _) = self.photo(horse), self.photo(bird)
        with self._lock:
            z = self.run.model.decode_path(za, zb, t, path=path)
            decoded = np.asarray(z)  # (1, H, W, C) in [-1, 1]
            ends = np.asarray(self.run.model.decode(np.concatenate([za, zb])))  # (2, H, W, C)
            scores = self.judge.score(decoded, nearest=False, ends=(ends[:1], ends[1:]))
        return np.asarray(to_uint8(decoded))[0], _first(scores)

    def best_t(self, horse: str, bird: str, path: str) -> tuple[float, dict]:
        """The t in BEST_T whose pegasus `make pegasi` would rank highest, and its scores."""
        if self.judge.classifier is None:
            raise Refusal(
                409,
                "best t ranks pegasi as make pegasi does, by P(horse) and P(bird) too, and this "
                "demo has no classifier: make classifier trains one; then restart the demo",
            )
        (x_h, _, _), (x_b, _, _) = self.photo(horse), self.photo(bird)
        with self._lock:
            _, scores, best = best_of_each_pair(
                self.run, self.judge, x_h[None], x_b[None], BEST_T, path=path
            )
        return float(best[0]), _first(scores)

    def strip(self, horse: str, bird: str) -> np.ndarray:
        """Two rows, lerp then slerp: the horse, STRIP_STEPS decoded points, the bird."""
        (x_h, _, _), (x_b, _, _) = self.photo(horse), self.photo(bird)
        ts = np.linspace(0, 1, STRIP_STEPS, dtype=np.float32)
        with self._lock:
            rows = strips(self.run.model, to_float(x_h[None]), to_float(x_b[None]), ts)
        return grid([np.asarray(to_uint8(rows[path][0])) for path in PATHS])

    def random_pair(self, horse: str, bird: str) -> dict:
        """A random horse and bird: test photos when there are data, else sample photos other
        than `horse` and `bird` (the pair shown now)."""
        pair = {}
        for side, now in (("horse", horse), ("bird", bird)):
            if self.data is None:
                others = [s for s in self.samples[side] if s["id"] != now] or self.samples[side]
                pair[side] = others[int(self._rng.integers(len(others)))]
                continue
            (label,) = data_lib.class_indices(self.data, (side,))
            index = int(self._rng.choice(np.flatnonzero(self.data.test_labels == label)))
            pair[side] = self.add(self.data.test_images[index], name=f"test_{side}_{index}")
        return {**pair, "from": "the samples" if self.data is None else "the test set"}

    def download_name(self, horse: str, bird: str, t: float, path: str) -> str:
        """pegasus_<horse>_<bird>_<path>_t<t>.png, from the photos' names."""
        stems = [
            re.sub(r"[^A-Za-z0-9_-]+", "-", Path(self.photo(k)[2]).stem)[:40] for k in (horse, bird)
        ]
        return f"pegasus_{stems[0]}_{stems[1]}_{path}_t{t:.2f}.png"


def _first(scores: dict) -> dict:
    """The SCORES of the first image, as floats."""
    return {k: float(scores[k][0]) for k in SCORES if k in scores}
