"""Data sources (tensorflow-datasets, the official archive, image folders, lines32) -> tf.data."""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
import pickle
import socket
import tarfile
from pathlib import Path

import numpy as np

from acai.core.config import IMAGE_SIZE
from acai.errors import DataError
from acai.files import fingerprint, replacing
from acai.images import decode_image, to_float
from acai.training.lines import (
    LINES_CLASSES,
    LINES_SOURCE,
    LINES_TEST,
    LINES_TRAIN,
    draw_lines,
    line_labels,
)

log = logging.getLogger(__name__)

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
# Where tensorflow-datasets downloads CIFAR-10 from; probed first so that a machine without a
# network fails in seconds instead of retrying for minutes.
TFDS_DOWNLOAD_HOST = ("www.cs.toronto.edu", 443)
HOLDOUT_FRACTION = 0.1  # an image folder without a test/ split gives this share to test
_CACHE_FORMAT = 1


@dataclasses.dataclass(frozen=True)
class ImageData:
    """A labelled image data set held in memory as uint8 arrays of shape (N, 32, 32, C)."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    class_names: tuple[str, ...]

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_images.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def load(source: str, classes: tuple[str, ...] = ()) -> ImageData:
    """Loads a data set from any supported source, keeping only `classes` if given.

    Args:
      source: "tfds" for CIFAR-10 through tensorflow-datasets; "lines32" for the paper's
        synthetic lines (generated, no download; labels are ten angle sectors); a path to the
        official `cifar-10-python.tar.gz` or its extracted `cifar-10-batches-py/`; or an image
        folder `<split>/<class>/*.jpg|png` (splits train and test), or a .tar/.tar.gz of one.
      classes: class names to keep (labels are renumbered in the source's class order).

    Returns:
      The data set, decoded into memory.
    """
    if source == "tfds":
        data = load_tfds()
    elif source == LINES_SOURCE:
        data = load_lines()
    else:
        data = _cached(Path(source).expanduser(), _load_path)
    return select_classes(data, classes)


def class_indices(data: ImageData, names, *, fix: str = "pass image files instead") -> list[int]:
    """The labels of the classes `names`; a DataError names the first missing one.

    Args:
      data: the data set.
      names: class names, e.g. ("horse", "bird").
      fix: what the error tells the user to do.
    """
    missing = [n for n in names if n not in data.class_names]
    if missing:
        raise DataError(
            f"unknown class '{missing[0]}': this data set has {', '.join(data.class_names)}; {fix}"
        )
    return [data.class_names.index(n) for n in names]


def select_classes(data: ImageData, classes: tuple[str, ...]) -> ImageData:
    """Keeps the images of `classes` only and renumbers their labels from 0."""
    if not classes:
        return data
    class_indices(data, classes, fix="pick classes it has")
    keep = [i for i, name in enumerate(data.class_names) if name in classes]
    remap = np.full(len(data.class_names), -1, np.int32)
    remap[keep] = np.arange(len(keep))

    def pick(images, labels):
        mask = np.isin(labels, keep)
        return images[mask], remap[labels[mask]]

    return ImageData(
        *pick(data.train_images, data.train_labels),
        *pick(data.test_images, data.test_labels),
        tuple(data.class_names[i] for i in keep),
    )


def carve_validation(data: ImageData, per_class: int) -> tuple[ImageData, ImageData]:
    """Holds `per_class` training images of each class out as a validation split.

    Which images are held out depends only on each class's own training images (a fixed-seed
    permutation per class), not on the run's seed or on which other classes are kept, so every
    run and every judge with the same `per_class` holds out the same photos.

    Args:
      data: the data set.
      per_class: validation images per class; a class needs more training images than this.

    Returns:
      (the data without the validation images, the same with them as its test split).
    """
    held = []
    for label, name in enumerate(data.class_names):
        members = np.flatnonzero(data.train_labels == label)
        if len(members) <= per_class:
            raise DataError(
                f"class '{name}' has {len(members)} training images, too few to hold "
                f"{per_class} out for validation; lower validation"
            )
        order = np.random.default_rng(0).permutation(len(members))
        held.append(members[order[:per_class]])
    mask = np.zeros(len(data.train_labels), bool)
    mask[np.concatenate(held)] = True
    rest = (data.train_images[~mask], data.train_labels[~mask])
    return (
        ImageData(*rest, data.test_images, data.test_labels, data.class_names),
        ImageData(*rest, data.train_images[mask], data.train_labels[mask], data.class_names),
    )


# --- lines32 --------------------------------------------------------------------------------


def load_lines(*, train: int = LINES_TRAIN, test: int = LINES_TEST, seed: int = 0) -> ImageData:
    """The lines32 data set: angles uniform in [0, 2 pi), a fixed seed per split."""

    def split(n, rng):
        angles = rng.uniform(0.0, 2 * np.pi, n)
        images = np.concatenate([draw_lines(a) for a in np.array_split(angles, max(1, n // 4096))])
        return np.round((images + 1.0) * 127.5).astype(np.uint8), line_labels(angles)

    names = tuple(f"{36 * k:03d}-{36 * (k + 1):03d}deg" for k in range(LINES_CLASSES))
    rng = np.random.default_rng(seed)
    return ImageData(*split(train, rng), *split(test, rng), names)


# --- tensorflow-datasets -------------------------------------------------------------------


def load_tfds(data_dir: str | None = None) -> ImageData:
    """Loads CIFAR-10 through tensorflow-datasets, downloading it on first use."""
    import tensorflow_datasets as tfds

    builder = tfds.builder("cifar10", data_dir=data_dir)
    if not builder.is_prepared():
        try:
            socket.create_connection(TFDS_DOWNLOAD_HOST, timeout=5).close()
        except OSError as e:
            raise DataError(
                f"CIFAR-10 is not in the tensorflow-datasets folder ({builder.data_dir}) and "
                f"cannot be downloaded ({e.strerror or e}); pass a local copy instead: "
                "DATA=path to cifar-10-python.tar.gz or to an image folder train|test/<class>/*.jpg"
            ) from None
        builder.download_and_prepare()
    splits = {
        split: tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1, as_supervised=True))
        for split in ("train", "test")
    }
    names = tuple(builder.info.features["label"].names)
    return ImageData(
        splits["train"][0],
        splits["train"][1].astype(np.int32),
        splits["test"][0],
        splits["test"][1].astype(np.int32),
        names,
    )


# --- local paths ---------------------------------------------------------------------------


def cache_dir() -> Path:
    """Folder for decoded copies of local data sets: $ACAI_CACHE, else the XDG cache."""
    if os.environ.get("ACAI_CACHE"):
        return Path(os.environ["ACAI_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "acai"


def _cached(path: Path, loader) -> ImageData:
    """Decodes `path` once and keeps the arrays in the cache, keyed by path, size and time."""
    if not path.exists():
        raise DataError(f"data path '{path}' does not exist; pass DATA=an existing file or folder")
    key = f"{_CACHE_FORMAT}:{path.resolve()}:{IMAGE_SIZE}:{fingerprint(path)}"
    file = cache_dir() / f"data-{hashlib.sha1(key.encode()).hexdigest()[:16]}.npz"
    if file.exists():
        try:
            with np.load(file) as z:
                return ImageData(
                    z["train_images"],
                    z["train_labels"],
                    z["test_images"],
                    z["test_labels"],
                    tuple(str(c) for c in z["class_names"]),
                )
        except (OSError, ValueError, KeyError):
            log.warning("ignoring an unreadable cache file %s", file)
    data = loader(path)
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        with replacing(file) as tmp:
            np.savez(
                tmp, **{f.name: np.asarray(getattr(data, f.name)) for f in dataclasses.fields(data)}
            )
    except OSError as e:  # a read-only cache only costs the next run the decoding time
        log.warning("could not cache the decoded data in %s: %s", file.parent, e)
    return data


def _load_path(path: Path) -> ImageData:
    if path.is_dir():
        batches = path / "cifar-10-batches-py"
        if (path / "data_batch_1").exists():
            return _cifar_python({p.name: p.read_bytes for p in path.iterdir()}, path)
        if (batches / "data_batch_1").exists():
            return _cifar_python({p.name: p.read_bytes for p in batches.iterdir()}, path)
        return _image_folder(_folder_entries(path), path)
    if tarfile.is_tarfile(path):
        return _load_tar(path)
    raise DataError(
        f"data path '{path}' is neither a folder nor a .tar/.tar.gz archive; pass the CIFAR-10 "
        "python archive, an image folder train|test/<class>/*.jpg, or a tar of one"
    )


def _load_tar(path: Path) -> ImageData:
    try:
        with tarfile.open(path) as tar:
            members = [m for m in tar.getmembers() if m.isfile()]
            names = {Path(m.name).name: m for m in members}
            if "data_batch_1" in names and "test_batch" in names:
                return _cifar_python(
                    {n: (lambda m=m: tar.extractfile(m).read()) for n, m in names.items()}, path
                )
            entries = [(Path(m.name).parts, lambda m=m: tar.extractfile(m).read()) for m in members]
            return _image_folder(entries, path)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DataError(f"data archive '{path}' is unreadable ({e}); download it again") from None


def _cifar_python(files: dict, path: Path) -> ImageData:
    """The official `cifar-10-python` pickles: 5 training batches and a test batch."""
    log.info("decoding %s (once; later runs read the cached copy)", path)

    def read(name):
        if name not in files:
            raise DataError(f"'{path}' lacks CIFAR-10 file {name}; the archive is incomplete")
        try:
            batch = pickle.loads(files[name](), encoding="bytes")
            images = np.asarray(batch[b"data"], np.uint8).reshape(-1, 3, 32, 32)
            return images.transpose(0, 2, 3, 1), np.asarray(batch[b"labels"], np.int32)
        except Exception as e:
            raise DataError(f"CIFAR-10 file {name} in '{path}' is corrupt ({e})") from None

    train = [read(f"data_batch_{i}") for i in range(1, 6)]
    test_images, test_labels = read("test_batch")
    return ImageData(
        np.concatenate([t[0] for t in train]),
        np.concatenate([t[1] for t in train]),
        test_images,
        test_labels,
        CIFAR10_CLASSES,
    )


def _folder_entries(root: Path) -> list:
    return [
        (p.relative_to(root).parts, p.read_bytes) for p in sorted(root.rglob("*")) if p.is_file()
    ]


def _image_folder(entries: list, path: Path) -> ImageData:
    """An image tree `[prefix/]<split>/<class>/<file>`; splits train and (optionally) test."""
    by_split: dict[str, dict[str, list]] = {}
    for parts, read in entries:
        if len(parts) < 3 or parts[-1].startswith("."):
            continue
        split, label = parts[-3], parts[-2]
        if split in ("train", "test"):
            by_split.setdefault(split, {}).setdefault(label, []).append((parts[-1], read))
    if "train" not in by_split:
        raise DataError(
            f"'{path}' has no train/<class>/ images; lay it out as train|test/<class>/*.jpg"
        )
    class_names = tuple(sorted(by_split["train"]))
    log.info("decoding %s (once; later runs read the cached copy)", path)
    splits, skipped = {}, 0
    for split, classes in by_split.items():
        images, labels = [], []
        for name in sorted(classes):
            if name not in class_names:
                raise DataError(f"'{path}' has test class '{name}' with no training images")
            for _, read in sorted(classes[name], key=lambda e: e[0]):
                try:
                    images.append(decode_image(read(), IMAGE_SIZE))
                    labels.append(class_names.index(name))
                except ValueError:
                    skipped += 1
        splits[split] = (np.stack(images) if images else None, np.asarray(labels, np.int32))
    if skipped:
        log.warning("skipped %d files in '%s' that are not readable images", skipped, path)
    if splits["train"][0] is None:
        raise DataError(f"'{path}' has no readable images under train/")
    if "test" not in splits or splits["test"][0] is None:
        log.warning(
            "'%s' has no test/ split; holding out %d%% of train", path, HOLDOUT_FRACTION * 100
        )
        splits["train"], splits["test"] = _holdout(*splits["train"])
    return ImageData(*splits["train"], *splits["test"], class_names)


def _holdout(images, labels):
    order = np.random.default_rng(0).permutation(len(images))
    n_test = max(1, int(len(images) * HOLDOUT_FRACTION))
    test, train = order[:n_test], order[n_test:]
    return (images[train], labels[train]), (images[test], labels[test])


# --- tf.data ---------------------------------------------------------------------------------


def train_dataset(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    batch: int,
    seed: int,
    shard: tuple[int, int] = (1, 0),
    per_image: dict | None = None,
):
    """Endless shuffled batches of (images in [-1, 1], labels), prefetched; with `per_image`,
    (images, labels, {name: the same rows of each of its arrays}).

    Args:
      images, labels: the training split.
      batch: images per batch.
      seed: seeds the shuffling.
      shard: (count, index): this reader takes every count-th image from index on, so that
        several workers read disjoint parts of the data.
      per_image: {name: arrays of a row per image} (`acai.core.model.ACAI.per_image_inputs`).
    """
    import tensorflow as tf

    count, index = shard
    if len(images) // count < batch:
        raise DataError(f"only {len(images)} training images for a batch of {batch}; lower batch")
    images, labels = tf.constant(images), tf.constant(labels)
    per_image = tf.nest.map_structure(tf.constant, per_image or {})  # tensors stay as they are

    def pick(i):
        found = (to_float(tf.gather(images, i)), tf.gather(labels, i))
        if not per_image:
            return found
        return (*found, tf.nest.map_structure(lambda rows: tf.gather(rows, i), per_image))

    return (
        tf.data.Dataset.range(len(images))
        .shard(count, index)
        .shuffle(len(images) // count + 1, seed=seed, reshuffle_each_iteration=True)
        .repeat()
        .batch(batch, drop_remainder=True)
        .map(pick, num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )


def eval_dataset(images: np.ndarray, labels: np.ndarray, *, batch: int):
    """Every image once, in order, as (images in [-1, 1], labels) batches."""
    import tensorflow as tf

    return (
        tf.data.Dataset.from_tensor_slices((images, labels))
        .batch(batch)
        .map(lambda x, y: (to_float(x), y), num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )
