"""A WORKDIR: what a run holds, its lock, the resume check, checkpoints, and `open`: one way to
load a run, an export or the shipped model."""

from __future__ import annotations

import builtins
import contextlib
import dataclasses
import fcntl
import json
import logging
import os
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from acai.core import model as model_lib
from acai.core.config import Config
from acai.core.model import ACAI
from acai.errors import AcaiError, WorkdirError
from acai.images import in_batches, to_float

log = logging.getLogger(__name__)

# Fields that may differ when a run in an existing WORKDIR is resumed: they change how fast or
# how long it trains, not what it learns (total_kimg only where the rate is constant).
RESUMABLE_CHANGES = (
    "total_kimg",
    "epoch_kimg",
    "precision",
    "jit_compile",
    "steps_per_execution",
    "strategy",
    "keep_checkpoints",
)


@dataclasses.dataclass
class Run:
    """A training run's working directory and what it holds."""

    workdir: Path
    config: Config
    class_names: tuple[str, ...]
    image_shape: tuple[int, int, int]
    model: ACAI | None = None
    step: int = 0
    # What training read besides the config: the data and every network a loss used, each a
    # file name with its hash (`acai.files.describe_inputs`); empty for runs made before.
    inputs: dict = dataclasses.field(default_factory=dict)
    kind: str = "run"  # "run" (a WORKDIR), "export" (an `acai export` folder) or "pretrained"

    @property
    def checkpoint_dir(self) -> Path:
        return self.workdir / "checkpoints"


@contextlib.contextmanager
def workdir_lock(workdir: Path):
    """Holds an exclusive lock on `workdir`; the OS drops it if the process dies."""
    workdir.mkdir(parents=True, exist_ok=True)
    with builtins.open(workdir / ".lock", "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            owner = f.read().strip() or "another process"
            raise WorkdirError(
                f"WORKDIR '{workdir}' is in use by a training process ({owner}); wait for it to "
                "finish or pass another WORKDIR"
            ) from None
        f.truncate(0)
        f.write(f"pid {os.getpid()}\n")
        f.flush()
        try:
            yield
        finally:
            f.truncate(0)


def check_resume(workdir: Path, config: Config) -> None:
    """Refuses to resume a run whose saved config differs in anything that shapes the model."""
    saved_file = workdir / "config.json"
    if not saved_file.exists():
        return
    try:
        saved = Config.from_dict(json.loads(saved_file.read_text()))
    except (ValueError, AcaiError) as e:
        raise WorkdirError(f"'{saved_file}' is unreadable ({e}); pass a new WORKDIR") from None
    changed = [
        k
        for k, v in config.to_dict().items()
        if k not in RESUMABLE_CHANGES and saved.to_dict()[k] != v
    ]
    if changed:
        k = changed[0]
        raise WorkdirError(
            f"WORKDIR '{workdir}' holds a run with {k}={saved.to_dict()[k]!r}, not "
            f"{config.to_dict()[k]!r}; pass a new WORKDIR or the same settings to resume"
        )
    if saved.lr_schedule != "constant" and saved.total_kimg != config.total_kimg:
        budget = f"total_kimg={saved.total_kimg:g}"
        raise WorkdirError(
            f"WORKDIR '{workdir}' holds a run whose rate falls over {budget} "
            f"(lr_schedule={saved.lr_schedule}); pass {budget} to resume it, or a new WORKDIR"
        )


def make_checkpoint(model: ACAI) -> tf.train.Checkpoint:
    """The model with its optimizers (three, four with a discriminator), as one
    tf.train.Checkpoint."""
    return tf.train.Checkpoint(
        model=model, **{name: getattr(model, name) for name in model.optimizer_names}
    )


def restore_latest(
    checkpoint: tf.train.Checkpoint, manager: tf.train.CheckpointManager
) -> str | None:
    """Restores the newest readable checkpoint, falling back to older ones with a warning.

    Returns:
      The path restored, or None when there is no checkpoint yet.
    """
    paths = list(reversed(manager.checkpoints))
    for path in paths:
        try:
            checkpoint.restore(path).assert_existing_objects_matched()
            return path
        except (tf.errors.OpError, ValueError, AssertionError) as e:
            log.warning(
                "checkpoint %s is unreadable (%s); trying an older one",
                path,
                str(e).splitlines()[0],
            )
    if paths:
        raise WorkdirError(
            f"no readable checkpoint in '{manager.directory}'; move it away to start afresh"
        )
    return None


def save_checkpoint(manager: tf.train.CheckpointManager, step: int) -> str:
    """Writes a checkpoint numbered `step`, unless the newest one already is.

    Returns:
      Its path. A failed write (a full disk, a read-only folder) is a WorkdirError that names
      the previous checkpoint, which is left intact.
    """
    if manager.latest_checkpoint and manager.latest_checkpoint.endswith(f"-{step}"):
        return manager.latest_checkpoint
    try:
        return manager.save(checkpoint_number=step)
    except (OSError, tf.errors.OpError) as e:
        reason = (getattr(e, "message", None) or str(e)).strip().splitlines()[0]
        raise WorkdirError(
            f"could not write the step-{step} checkpoint in '{manager.directory}' "
            f"({reason}); the previous one ({manager.latest_checkpoint or 'none'}) is "
            "intact: free space or fix permissions, then re-run to resume"
        ) from None


def heldout_scores(
    model: ACAI, images: np.ndarray, labels: np.ndarray, *, batch: int = 256
) -> dict:
    """Reconstruction RMSE (0-255) and latent probe accuracy on uint8 images, on this worker.

    Plain forward passes, no metrics objects: under a multi-worker strategy each worker can
    run it alone.
    """

    @tf.function(reduce_retracing=True)
    def scores(x, y):  # (2, B): each image's squared error and whether the probe was right
        x = to_float(x)
        per_image = tf.reduce_mean(tf.square(x - model.decode(model.encode(x))), [1, 2, 3])
        hits = tf.argmax(model.probe_logits(x), -1, output_type=tf.int32) == y
        return tf.stack([per_image, tf.cast(hits, tf.float32)])

    squared, hits = in_batches(scores, images, labels, size=batch, axis=1).sum(axis=1)
    n = max(len(images), 1)
    return {"rmse": float(np.sqrt(squared / n) * 127.5), "probe_accuracy": float(hits / n)}


def load_run(workdir: str | Path) -> Run:
    """Loads a run's config and its newest checkpoint into a float32 model, for inference.

    Args:
      workdir: a folder `train` wrote.

    Returns:
      The run, with `model` restored and `step` set.
    """
    workdir = Path(workdir)
    if not (workdir / "config.json").is_file() or not (workdir / "run.json").is_file():
        raise WorkdirError(f"'{workdir}' is not a training run; pass the WORKDIR given to train")
    try:
        config = Config.from_dict(json.loads((workdir / "config.json").read_text()))
        meta = json.loads((workdir / "run.json").read_text())
        run = Run(workdir, config, tuple(meta["class_names"]), tuple(meta["image_shape"]))
        run.inputs = meta.get("inputs", {})
    except (ValueError, KeyError, TypeError, AcaiError) as e:
        raise WorkdirError(
            f"'{workdir}' holds an unreadable run ({e!r}); pass another WORKDIR"
        ) from None
    model = model_lib.build(
        config, image_shape=run.image_shape, num_classes=len(run.class_names), precision="float32"
    )
    checkpoint = make_checkpoint(model)
    try:
        manager = tf.train.CheckpointManager(
            checkpoint, str(run.checkpoint_dir), max_to_keep=config.keep_checkpoints
        )
    except ValueError as e:  # an empty or garbled checkpoints/checkpoint state file
        raise WorkdirError(
            f"'{workdir}' holds an unreadable run or checkpoint state ({e}); pass another WORKDIR"
        ) from None
    if restore_latest(checkpoint, manager) is None:
        raise WorkdirError(f"'{workdir}' has no checkpoint yet; train first (make train)")
    run.model, run.step = model, int(model.step.numpy())
    return run


# --- exports and the shipped model -----------------------------------------------------------

PRETRAINED = Path(__file__).parents[1] / "pretrained"
PRETRAINED_MODEL = PRETRAINED / "pegasus"  # an `acai export` of experiments/pegasus.py
SAMPLES = PRETRAINED / "samples"  # CIFAR-10 test horses and birds; see samples/README.md
PRETRAINED_WORD = "pretrained"  # what names the shipped model where a path is expected


def load_export(folder: str | Path) -> Run:
    """Loads a folder `acai export` wrote as a run: its config, classes and float32 model.

    Args:
      folder: holds acai.keras and metadata.json.

    Returns:
      The run; its `workdir` is the export folder.
    """
    folder = Path(folder)
    try:
        meta = json.loads((folder / "metadata.json").read_text())
        config = Config.from_dict(meta["config"])
        model = keras.saving.load_model(folder / "acai.keras")
    except (OSError, ValueError, KeyError, TypeError, AcaiError) as e:
        raise WorkdirError(
            f"'{folder}' is not a readable acai export ({e}); export it again"
        ) from None
    run = Run(folder, config, tuple(meta["class_names"]), tuple(meta["image_shape"]))
    run.model, run.step, run.kind = model, int(meta["step"]), "export"
    run.inputs = meta.get("inputs", {})
    return run


def load_pretrained() -> Run:
    """The model that ships with acai: `experiments/pegasus.py` trained on CIFAR-10 horses and
    birds (the README says how well it does). Needs no data and no network."""
    if not (PRETRAINED_MODEL / "metadata.json").is_file():
        raise WorkdirError(
            f"the shipped model is missing from '{PRETRAINED_MODEL}'; reinstall acai or make it "
            "again: make pretrained DATA=path/to/cifar10"
        )
    run = load_export(PRETRAINED_MODEL)
    run.kind = "pretrained"
    return run


def open(path: str | Path | None) -> Run:
    """Loads a training run, an `acai export` folder or the shipped model, for inference.

    Args:
      path: a WORKDIR `train` wrote, a folder `acai export` wrote, or None or "pretrained" for
        the model shipped with acai (a folder of that name: pass ./pretrained).

    Returns:
      The run with its float32 model; `kind` says which of the three it is.
    """
    if path is None or str(path) == PRETRAINED_WORD:
        return load_pretrained()
    if not Path(path).is_dir():
        raise WorkdirError(
            f"'{path}' does not exist; pass a trained WORKDIR (make train), an export, or "
            f"'{PRETRAINED_WORD}' for the shipped model"
        )
    if (Path(path) / "metadata.json").is_file():
        return load_export(path)
    return load_run(path)


def data_source(run: Run, data: str | None = None) -> str | None:
    """The data a loaded run is measured on: `data` if given, else the run's own.

    An export keeps only its data's file name, so a local file it names must be passed again;
    None when there is nothing to load (the shipped model without `data`).
    """
    if data:
        return data
    source = run.config.data
    if run.kind == "run" or source in ("tfds", "lines32"):
        return source
    return None
