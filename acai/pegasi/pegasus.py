"""Pegasi: read the inputs, walk between a horse's and a bird's latents, rank and write.

The scores and the judge are in `acai.pegasi.judge`."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from acai.core import walks as walks_lib
from acai.core.model import strips
from acai.core.walks import PATHS, crossfade
from acai.errors import AcaiError
from acai.files import write_atomic, write_json
from acai.images import (
    TooManyPixels,
    decode_image,
    figure_png,
    in_batches,
    pyplot,
    save_png,
    tile,
    to_float,
    to_uint8,
)
from acai.pegasi import judge as judge_lib
from acai.pegasi import realism as realism_lib
from acai.pegasi.judge import Judge, horse_and_bird, make_judge, nearest_distance, summarise
from acai.pegasi.settings import PEGASI_CANDIDATES, PEGASI_T, check_t_steps
from acai.training import data as data_lib
from acai.training import run as run_lib
from acai.training.run import SAMPLES, Run

__all__ = ["pegasi", "pick", "setup", "walk"]

VIEW_SCALE = 8  # a 32x32 pegasus is saved at 256x256
SCORE_BATCH = 2048  # images scored in one call (the critic and the classifier see them all)


# --- opening a model -------------------------------------------------------------------------


def setup(
    workdir: str | Path | None,
    classifier: str | Path,
    *,
    data: str | None = None,
    need_data: bool = False,
    need_classifier: bool = False,
):
    """Loads what interpolate and pegasus need: the model, its data and a judge.

    Args:
      workdir: a trained run or an `acai export` folder; None for the shipped model.
      classifier: a `classifier.keras` from `acai classifier`; used when it exists.
      data: the data source, if not the run's own (the shipped model has none).
      need_data: refuse to go on without the data (ranking pegasi needs test photos).
      need_classifier: refuse to go on without the classifier (ranking pegasi needs it).

    Returns:
      (run, data or None, judge); the data hold every class, so indices are test indices.
    """
    from acai.training import classifier as classifier_lib

    run = run_lib.open(workdir)
    source = run_lib.data_source(run, data)
    if source is None and need_data:
        raise AcaiError(
            f"the model keeps only its data's file name ('{run.config.data}'): pass --data "
            "path/to/cifar10"
        )
    loaded = data_lib.load(source) if source else None
    judge_model = None
    if Path(classifier).is_file() or need_classifier:
        judge_model = classifier_lib.Classifier(classifier)  # says how to train one if missing
    return run, loaded, make_judge(run, loaded, judge_model)


# --- choosing the inputs ---------------------------------------------------------------------


@dataclasses.dataclass
class Picked:
    image: np.ndarray  # (32, 32, 3) uint8
    description: str
    index: int | None = None  # the test-set index, when it came from the test set


def pick(
    spec: str,
    *,
    data: data_lib.ImageData | None,
    want: str,
    any_class: bool = False,
    rng: np.random.Generator | None = None,
) -> Picked:
    """Resolves HORSE= or BIRD=: "sample", "random", a test-set index, or an image file.

    Args:
      spec: the user's text. "sample" is the first shipped sample photo of the class;
        "random" a random test image of the class (a random sample photo without data).
      data: the data set whose test split the indices refer to, or None (the shipped model).
      want: the class an index must have ("horse" or "bird").
      any_class: accept an index of any class.
      rng: draws the "random" image.

    Returns:
      The image and a description of it.
    """
    spec = str(spec).strip()
    rng = rng or np.random.default_rng()
    if spec == "sample" or (spec == "random" and data is None):
        files = sorted(SAMPLES.glob(f"{want}_*.jpg"))
        path = files[0] if spec == "sample" else files[int(rng.integers(len(files)))]
        return Picked(decode_image(path), f"sample photo {path.name}")
    if spec == "random":
        (label,) = data_lib.class_indices(data, (want,))
        index = int(rng.choice(np.flatnonzero(data.test_labels == label)))
        return Picked(data.test_images[index], f"test image {index} ({want}, random)", index)
    if spec.lstrip("-").isdigit():
        if data is None:
            raise AcaiError(
                f"{spec} is a test-set index, and the shipped model comes without data; pass an "
                "image file, 'sample' or 'random', or --data path/to/cifar10"
            )
        return _pick_index(int(spec), data=data, want=want, any_class=any_class)
    path = Path(spec).expanduser()
    if not path.is_file():
        raise AcaiError(
            f"'{spec}' is neither 'sample', 'random', a test-set index, nor an image file"
        )
    try:
        return Picked(decode_image(path), f"file {path.name}")
    except TooManyPixels as e:
        raise AcaiError(f"'{spec}': {e}") from None
    except ValueError:
        raise AcaiError(f"'{spec}' is not an image file PIL can read; pass a PNG or JPEG") from None


def _pick_index(index: int, *, data: data_lib.ImageData, want: str, any_class: bool) -> Picked:
    n = len(data.test_images)
    if not 0 <= index < n:
        raise AcaiError(f"index {index} is out of range: the test set has {n} images (0-{n - 1})")
    found = data.class_names[data.test_labels[index]]
    if found != want and not any_class:
        raise AcaiError(
            f"test image {index} is a {found}, not a {want}; pass a {want}'s index, "
            "'random', an image file, or --any-class"
        )
    return Picked(data.test_images[index], f"test image {index} ({found})", index)


# --- one walk: make interpolate --------------------------------------------------------------


def walk(
    run: Run,
    judge: Judge,
    horse: Picked,
    bird: Picked,
    *,
    t: float = 0.5,
    steps: int = 11,
    out: str | Path,
) -> dict:
    """Writes the pegasus at t (nearest and smooth upscales) and a lerp/slerp strip.

    Args:
      run: a loaded run (`acai.load_run`).
      judge: scores the results (`make_judge`).
      horse, bird: the two input images.
      t: where on the path the pegasus sits: 0 is the horse, 1 the bird.
      steps: points on each strip row, both ends included.
      out: the output folder.

    Returns:
      {"files": [...], "lerp": scores at t, "slerp": scores at t}.
    """
    check_t_steps(t, steps)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model = run.model
    x = to_float(np.stack([horse.image, bird.image]))
    za, zb = np.asarray(model.encode(x[:1])), np.asarray(model.encode(x[1:]))  # (1, h, w, latent)
    ends = (np.linalg.norm(za) + np.linalg.norm(zb)) / 2
    at_t = {}
    for path in PATHS:
        decoded = np.asarray(model.decode_path(za, zb, np.float32(t), path=path))
        scores = {k: float(v[0]) for k, v in judge.score(decoded).items()}
        zt = np.asarray(walks_lib.walk(za, zb, np.float32(t), path))  # (1, h, w, latent)
        scores["latent_norm_vs_ends"] = float(np.linalg.norm(zt) / max(ends, 1e-12))
        at_t[path] = (decoded[0], scores)

    ts = np.linspace(0, 1, steps, dtype=np.float32)
    rows = {path: row[0] for path, row in strips(model, x[:1], x[1:], ts).items()}
    pegasus = np.asarray(to_uint8(at_t["slerp"][0]))
    files = [
        save_png(pegasus, out / "pegasus.png", scale=VIEW_SCALE),
        save_png(pegasus, out / "pegasus_smooth.png", scale=VIEW_SCALE, smooth=True),
        save_strip(rows, ts, out / "strip.png"),
    ]
    result = {
        "horse": horse.description,
        "bird": bird.description,
        "t": t,
        "steps": steps,
        "files": [str(f) for f in files],
        "lerp": at_t["lerp"][1],
        "slerp": at_t["slerp"][1],
    }
    write_json(out / "pegasus.json", result)
    result["files"].append(str(out / "pegasus.json"))
    return result


def save_strip(rows: dict, ts, path: Path) -> Path:
    """A figure of one row per walk from the horse to the bird, the photos at both ends.

    Args:
      rows: {path: (T + 2, H, W, C) float in [-1, 1]}, a pair's `strips`.
      ts: the T positions decoded.
      path: the PNG to write.
    """
    plt = pyplot()
    n = len(ts) + 2
    fig, axes = plt.subplots(len(rows), n, figsize=(1.1 * n, 1.3 * len(rows)), squeeze=False)
    labels = ["horse", *[f"t={t:.2f}" for t in ts], "bird"]
    for r, (name, row) in enumerate(rows.items()):
        row = np.asarray(to_uint8(row))
        for c in range(n):
            ax = axes[r, c]
            ax.imshow(row[c], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(labels[c], fontsize=7)
            if c == 0:
                ax.set_ylabel(name, fontsize=9)
    fig.tight_layout(pad=0.3)
    return write_atomic(path, figure_png(fig, dpi=100))


# --- a batch: make pegasi --------------------------------------------------------------------


def pegasi(
    run: Run,
    judge: Judge,
    data: data_lib.ImageData,
    *,
    n: int = 64,
    t: float | tuple[float, ...] = PEGASI_T,
    candidates: int = PEGASI_CANDIDATES,
    seed: int = 0,
    prefer_white: bool = False,
    path: str = "slerp",
    realism_pairs: int = realism_lib.PAIRS,
    out: str | Path,
) -> dict:
    """Makes `n` pegasi from distinct test horse-bird pairs, keeping the best-scoring ones.

    `candidates` distinct pairs are drawn, each decoded along `path` at every t given and scored;
    each pair keeps its best t, and the `n` pairs with the highest combined score are kept,
    best first, each horse and each bird at most once while there are enough. The same pairs'
    pixel cross-fades at the same t are scored too, as the baseline a pegasus must beat.

    Args:
      run: a loaded run.
      judge: the scorer, with a classifier.
      data: the data set holding the test horses and birds.
      n: pegasi to keep (64 makes an 8x8 grid).
      t: position on the path, 0 the horse and 1 the bird; or several, each pair's best kept.
      candidates: pairs to score (at least n).
      seed: seeds the choice of pairs.
      prefer_white: rank white-ish pegasi higher.
      path: the walk the pegasi are decoded along, "lerp" or "slerp".
      realism_pairs: random pairs, every one kept, on which `acai.pegasi.realism` measures realism.
      out: the output folder.

    Returns:
      The manifest written to `pegasi.json`.
    """
    ts = tuple(np.atleast_1d(np.asarray(t, np.float64)).tolist())
    _check_pegasi_args(ts, judge, data, n=n, candidates=candidates)
    rng = np.random.default_rng(seed)
    pairs = realism_lib.draw_pairs(data, candidates, rng, fix="lower candidates")  # (cand, 2)
    images_h, images_b = data.test_images[pairs[:, 0]], data.test_images[pairs[:, 1]]
    decoded, scores, pair_t = best_of_each_pair(
        run, judge, images_h, images_b, ts, prefer_white=prefer_white, path=path
    )
    keep = best_distinct(pairs, scores["score"], n)
    images = np.asarray(to_uint8(decoded[keep]))
    scores["nearest_train_rmse"][keep] = nearest_distance(images, judge.train_images)

    w = pair_t[keep].reshape(-1, 1, 1, 1)
    fades = crossfade(to_float(images_h[keep]), to_float(images_b[keep]), w)
    fade_scores = judge.score(fades)
    judges = judge_lib.from_files(  # the ranking classifier, the independent judge, SWD
        [judge.classifier.path, judge_lib.JUDGE_PATH], feature_model=run.config.perceptual_model
    )
    random_picture, random_about = realism_lib.random_sheet(run, data, seed=seed, path=path)
    manifest = {
        "run": {"step": run.step, "config": run.config.to_dict()},
        "t": list(ts),
        "interpolation": path,
        "candidates": candidates,
        "seed": seed,
        "prefer_white": prefer_white,
        "classifier_test_accuracy": judge.classifier.info.get("test_accuracy"),
        "real_photo_sharpness": judge.real_sharpness,
        "summary": {
            "pegasi": summarise(scores, keep, images),
            "crossfade": summarise(fade_scores, slice(None), np.asarray(to_uint8(fades))),
        },
        "realism": realism_lib.realism(run, data, judges, pairs=realism_pairs, seed=seed),
        "random": random_about,
        "images": [
            {
                "rank": r,
                "horse_index": int(pairs[i, 0]),
                "bird_index": int(pairs[i, 1]),
                "t": round(float(pair_t[i]), 4),
                **{k: round(float(v[i]), 5) for k, v in scores.items()},
            }
            for r, i in enumerate(keep)
        ],
    }
    return write_pegasi(out, images, manifest, random_sheet=random_picture)


def _check_pegasi_args(ts, judge: Judge, data, *, n: int, candidates: int) -> None:
    for value in ts:
        check_t_steps(value, 2)
    if judge.classifier is None:
        raise AcaiError("pegasi need the classifier to rank them; train it: make classifier")
    if n < 1 or candidates < n:
        raise AcaiError(f"need 1 <= n <= candidates, got n={n}, candidates={candidates}")
    horse_and_bird(data)


def best_of_each_pair(
    run: Run, judge: Judge, horses, birds, ts, *, prefer_white: bool = False, path: str = "slerp"
):
    """Decodes each horse-bird pair along `path` at every t, and keeps each pair's best t (the
    ranking of `make pegasi` and of the demo's "best t"): `judge.score`'s combined score, less
    its penalty for a pegasus that is a blend of the pair's two reconstructions.

    Args:
      run: a loaded run.
      judge: the scorer, with a classifier.
      horses, birds: (P, 32, 32, 3) uint8 photos, pair i being horses[i] and birds[i].
      ts: positions on the path.
      prefer_white: rank white-ish pegasi higher.
      path: the walk, "lerp" or "slerp".

    Returns:
      (decoded (P, 32, 32, 3) in [-1, 1], {score: (P,)}, t (P,)), each at the pair's best t;
      the nearest-training-image search is left out (NaN), as it is slow.
    """

    def walk_pairs(h, b):  # every pair encoded once, decoded at every t and at both ends
        ends = np.float32([0.0, 1.0, *ts])
        return run.model.interpolate(to_float(h), to_float(b), ends, path=path)

    walked = in_batches(walk_pairs, horses, birds, axis=1)  # (2 + T, P, 32, 32, 3)
    decoded, steps, pairs = walked[2:], len(ts), len(horses)
    flat = decoded.reshape(steps * pairs, *decoded.shape[2:])  # every t of every pair
    ends = [np.broadcast_to(e, decoded.shape).reshape(flat.shape) for e in walked[:2]]
    parts = [
        judge.score(
            flat[i : i + SCORE_BATCH],
            prefer_white=prefer_white,
            nearest=False,
            ends=(ends[0][i : i + SCORE_BATCH], ends[1][i : i + SCORE_BATCH]),
        )
        for i in range(0, len(flat), SCORE_BATCH)
    ]
    per_t = {k: np.concatenate([p[k] for p in parts]).reshape(steps, pairs) for k in parts[0]}
    best_t = np.argmax(per_t["score"], axis=0)  # (P,)
    rows = np.arange(pairs)
    scores = {k: v[best_t, rows] for k, v in per_t.items()}
    return decoded[best_t, rows], scores, np.asarray(ts, np.float32)[best_t]


def write_pegasi(
    out: str | Path, images: np.ndarray, manifest: dict, *, random_sheet: np.ndarray | None = None
) -> dict:
    """Writes a batch's grid, its best pegasus (blocky and smooth), the random pairs' sheet
    when given (`random_pegasi.png`) and `pegasi.json`.

    Args:
      out: the output folder.
      images: (n, H, W, C) uint8 pegasi, best first.
      manifest: what `pegasi.json` holds.
      random_sheet: `acai.pegasi.realism.random_sheet`'s picture.

    Returns:
      The manifest with "files" listing what was written.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    side = int(np.ceil(np.sqrt(len(images))))
    files = [
        save_png(tile(images, side), out / "pegasi.png", scale=3),
        save_png(images[0], out / "best_pegasus.png", scale=VIEW_SCALE),
        save_png(images[0], out / "best_pegasus_smooth.png", scale=VIEW_SCALE, smooth=True),
    ]
    if random_sheet is not None:
        files.append(save_png(random_sheet, out / "random_pegasi.png", scale=2))
    files.append(out / "pegasi.json")
    manifest = {**manifest, "files": [str(f) for f in files[:-1]]}
    write_json(out / "pegasi.json", manifest)
    return {**manifest, "files": [str(f) for f in files]}


def best_distinct(pairs: np.ndarray, score: np.ndarray, n: int) -> np.ndarray:
    """Indices of the n best-scoring pairs, best first, using each horse and each bird once
    while that leaves n pairs (a photo that scores well would otherwise fill the grid).

    Args:
      pairs: (P, 2) horse and bird indices.
      score: (P,) higher is better.
      n: pairs to keep.

    Returns:
      (min(n, P),) indices into pairs.
    """
    order = np.argsort(-np.asarray(score), kind="stable")
    used, keep = (set(), set()), []
    for i in order:
        horse, bird = int(pairs[i, 0]), int(pairs[i, 1])
        if horse not in used[0] and bird not in used[1]:
            keep.append(i)
            used[0].add(horse)
            used[1].add(bird)
    if len(keep) < n:  # too few distinct photos: fill with the best of the rest
        kept = set(keep)
        keep += [i for i in order if i not in kept][: n - len(keep)]
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    return np.asarray(sorted(keep[:n], key=lambda i: rank[i]), np.int64)  # best first
