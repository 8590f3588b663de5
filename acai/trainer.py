"""`train(config, workdir)`, exported as `acai.train`: devices, precision, callbacks, resume."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import logging
import math
import os
import signal
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from acai import data as data_lib
from acai.config import Config
from acai.errors import AcaiError, WorkdirError
from acai.model import ACAI, lerp, slerp

log = logging.getLogger(__name__)

# Fields that may differ when a run in an existing WORKDIR is resumed: they change how fast or
# how long it trains, not what it learns.
RESUMABLE_CHANGES = ("total_kimg", "epoch_kimg", "precision", "jit_compile", "strategy",
                     "keep_checkpoints")  # fmt: skip
VALIDATION_IMAGES = 1024  # random test images scored at the end of every epoch
SAMPLE_PAIRS = 4  # interpolation pairs in each sample grid
SAMPLE_STEPS = 10  # points along each interpolation in a sample grid


class TrainingError(AcaiError):
    """Training cannot go on (for example a non-finite loss)."""


class Interrupted(KeyboardInterrupt):
    """Training was stopped by SIGINT or SIGTERM; a checkpoint was written first."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


# --- devices and numerics --------------------------------------------------------------------


def cpu_has_bf16() -> bool:
    """Whether this CPU has native bfloat16 arithmetic (AVX-512 BF16 or AMX)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str) -> str:
    """Maps "auto" to the fastest safe dtype policy for the visible devices.

    mixed_float16 on a GPU; mixed_bfloat16 on a CPU with native bfloat16 (it nearly doubles a
    training step on AVX-512 BF16); float32 elsewhere.
    """
    if precision != "auto":
        return precision
    if tf.config.list_physical_devices("GPU"):
        return "mixed_float16"
    return "mixed_bfloat16" if cpu_has_bf16() else "float32"


def resolve_jit(jit_compile: str) -> bool:
    """Maps "auto" to XLA on accelerators only: on a CPU, XLA made the step slower here."""
    if jit_compile != "auto":
        return jit_compile == "on"
    return bool(tf.config.list_physical_devices("GPU") or tf.config.list_logical_devices("TPU"))


def make_strategy(name: str) -> tf.distribute.Strategy:
    """Builds the tf.distribute strategy named by the config's `strategy` field."""
    if name == "auto":
        name = "mirrored" if len(tf.config.list_physical_devices("GPU")) > 1 else "none"
    if name == "none":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def xla_for(strategy: tf.distribute.Strategy, jit: bool) -> bool:
    """Turns XLA off, with a warning, under a strategy with more than one replica.

    Measured with TF 2.21 / Keras 3.15 on 2 logical CPU devices: an XLA-compiled step under
    MirroredStrategy fails with "Trying to access resource seed_generator_state/replica_1 located
    in device CPU:1 from device CPU:0" (https://www.tensorflow.org/xla/known_issues, "tf.Variable
    on a different device").
    """
    if jit and strategy.num_replicas_in_sync > 1:
        log.warning("XLA is off: with %d replicas an XLA-compiled step fails in TensorFlow "
                    "(a variable on another device); training runs as a TF graph",
                    strategy.num_replicas_in_sync)  # fmt: skip
        return False
    return jit


def build_model(
    config: Config, *, image_shape, num_classes: int, precision: str, jit: bool
) -> ACAI:
    """Builds and compiles the ACAI model and its three Adam optimizers for `config`."""
    model = ACAI(
        image_shape=image_shape, num_classes=num_classes, depth=config.depth,
        latent=config.latent, scales=config.scales, advdepth=config.advdepth,
        advweight=config.advweight, reg=config.reg, policy=precision, seed=config.seed,
    )  # fmt: skip
    model.compile(
        ae_optimizer=keras.optimizers.Adam(config.lr),
        critic_optimizer=keras.optimizers.Adam(config.lr),
        probe_optimizer=keras.optimizers.Adam(config.lr),  # as the original code: one rate
        jit_compile=jit,
    )
    model.build_optimizers()
    return model


# --- the working directory -------------------------------------------------------------------


@dataclasses.dataclass
class Run:
    """A training run's working directory and what it holds."""

    workdir: Path
    config: Config
    class_names: tuple[str, ...]
    image_shape: tuple[int, int, int]
    model: ACAI | None = None
    step: int = 0

    @property
    def checkpoint_dir(self) -> Path:
        return self.workdir / "checkpoints"


@contextlib.contextmanager
def workdir_lock(workdir: Path):
    """Holds an exclusive lock on `workdir`; the OS drops it if the process dies."""
    workdir.mkdir(parents=True, exist_ok=True)
    with open(workdir / ".lock", "a+") as f:
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


def write_json(path: Path, value) -> None:
    """Writes `value` as JSON atomically: a crash leaves the old file or the new one."""
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def _check_resume(workdir: Path, config: Config) -> None:
    """Refuses to resume a run whose saved config differs in anything that shapes the model."""
    saved_file = workdir / "config.json"
    if not saved_file.exists():
        return
    try:
        saved = Config.from_dict(json.loads(saved_file.read_text()))
    except (ValueError, AcaiError) as e:
        raise WorkdirError(f"'{saved_file}' is unreadable ({e}); pass a new WORKDIR") from None
    changed = [
        k for k, v in config.to_dict().items()
        if k not in RESUMABLE_CHANGES and saved.to_dict()[k] != v
    ]  # fmt: skip
    if changed:
        k = changed[0]
        raise WorkdirError(
            f"WORKDIR '{workdir}' holds a run with {k}={saved.to_dict()[k]!r}, not "
            f"{config.to_dict()[k]!r}; pass a new WORKDIR or the same settings to resume"
        )


def _checkpoint(model: ACAI) -> tf.train.Checkpoint:
    return tf.train.Checkpoint(
        model=model, ae_optimizer=model.ae_optimizer, critic_optimizer=model.critic_optimizer,
        probe_optimizer=model.probe_optimizer,
    )  # fmt: skip


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
            log.warning("checkpoint %s is unreadable (%s); trying an older one", path,
                        str(e).splitlines()[0])  # fmt: skip
    if paths:
        raise WorkdirError(
            f"no readable checkpoint in '{manager.directory}'; move it away to start afresh"
        )
    return None


# --- callbacks -------------------------------------------------------------------------------


class Throughput(keras.callbacks.Callback):
    """Adds `images_per_second` to the logs: per batch for the progress bar, per epoch for
    TensorBoard and the CSV log. The first batch of a fit() call (tracing) is not counted."""

    def __init__(self, batch_size: int):
        super().__init__()
        self.batch_size = batch_size
        self.seen = 0
        self.start = None

    def on_epoch_begin(self, epoch, logs=None):
        self.start, self.seen = None, 0

    def on_train_batch_end(self, batch, logs=None):
        now = time.perf_counter()
        if self.start is None:
            self.start = now  # the clock starts after the first (possibly compiling) batch
            return
        self.seen += self.batch_size
        if logs is not None:
            logs["images_per_second"] = self.seen / max(now - self.start, 1e-9)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self.seen:
            logs["images_per_second"] = self.seen / max(time.perf_counter() - self.start, 1e-9)


class StopAtStep(keras.callbacks.Callback):
    """Ends fit() once the model's step counter reaches `total_steps`."""

    def __init__(self, total_steps: int):
        super().__init__()
        self.total_steps = total_steps

    def on_train_batch_end(self, batch, logs=None):
        if int(self.model.step.numpy()) >= self.total_steps:
            self.model.stop_training = True


class CheckFinite(keras.callbacks.Callback):
    """Stops with a clear error when a loss turns NaN or infinite (no checkpoint is written)."""

    def __init__(self, manager: tf.train.CheckpointManager, keys=("loss_ae", "loss_critic")):
        super().__init__()
        self.manager, self.keys = manager, keys

    def on_train_batch_end(self, batch, logs=None):
        bad = [k for k in self.keys if logs and k in logs and not math.isfinite(float(logs[k]))]
        if bad:
            last = self.manager.latest_checkpoint or "none yet"
            raise TrainingError(
                f"{bad[0]} became non-finite at step {int(self.model.step.numpy())}; the last "
                f"good checkpoint is {last}; lower lr or use precision=float32 and re-run"
            )


class SaveCheckpoint(keras.callbacks.Callback):
    """Writes a checkpoint, numbered by step, at the end of every epoch and of training."""

    def __init__(self, manager: tf.train.CheckpointManager):
        super().__init__()
        self.manager = manager

    def save(self) -> str:
        step = int(self.model.step.numpy())
        if self.manager.latest_checkpoint and self.manager.latest_checkpoint.endswith(f"-{step}"):
            return self.manager.latest_checkpoint
        try:
            return self.manager.save(checkpoint_number=step)
        except (OSError, tf.errors.OpError) as e:  # a full disk, a read-only folder
            reason = (getattr(e, "message", None) or str(e)).strip().splitlines()[0]
            raise WorkdirError(
                f"could not write the step-{step} checkpoint in '{self.manager.directory}' "
                f"({reason}); the previous one ({self.manager.latest_checkpoint or 'none'}) is "
                "intact: free space or fix permissions, then re-run to resume"
            ) from None

    def on_epoch_end(self, epoch, logs=None):
        self.save()

    def on_train_end(self, logs=None):
        self.save()


class SampleGrids(keras.callbacks.Callback):
    """Saves a grid of reconstructions and interpolations as PNG and as a TensorBoard image."""

    def __init__(self, images: np.ndarray, directory: Path, log_dir: Path):
        super().__init__()
        self.images = data_lib.to_float(images)  # (2 * SAMPLE_PAIRS, H, W, C)
        self.directory = directory
        self.writer = tf.summary.create_file_writer(str(log_dir / "samples"))

    def on_epoch_end(self, epoch, logs=None):
        step = int(self.model.step.numpy())
        grid = sample_grid(self.model, self.images)
        self.directory.mkdir(parents=True, exist_ok=True)
        save_png(grid, self.directory / f"step_{step:08d}.png", scale=2)
        with self.writer.as_default():
            tf.summary.image("reconstructions_and_interpolations", grid[None], step=step)
        self.writer.flush()


def sample_grid(model: ACAI, images) -> np.ndarray:
    """A uint8 picture: originals over reconstructions, then a lerp and a slerp row per pair.

    Args:
      model: the ACAI model.
      images: (2 * P, H, W, C) in [-1, 1]; image i is paired with image i + P.

    Returns:
      An (H * (2 + 2 * P), W * (SAMPLE_STEPS + 2), C) uint8 array.
    """
    pairs = len(images) // 2
    z = model.encode(images)
    recon = model.decode(z)
    t = np.linspace(0.0, 1.0, SAMPLE_STEPS, dtype=np.float32)
    rows = [images[: SAMPLE_STEPS + 2], recon[: SAMPLE_STEPS + 2]]
    for i in range(pairs):
        a, b = z[i : i + 1], z[i + pairs : i + pairs + 1]
        for path in (lerp, slerp):
            walk = model.decode(tf.reshape(path(a, b, t), (-1, *model.latent_shape)))
            rows.append(tf.concat([images[i : i + 1], walk, images[i + pairs : i + pairs + 1]], 0))
    width = SAMPLE_STEPS + 2
    rows = [tf.pad(r, [[0, width - len(r)], [0, 0], [0, 0], [0, 0]], constant_values=-1.0)
            for r in rows]  # fmt: skip
    tiles = data_lib.to_uint8(tf.stack(rows)).numpy()  # (rows, width, H, W, C)
    n_rows, n_cols, h, w, c = tiles.shape
    return tiles.transpose(0, 2, 1, 3, 4).reshape(n_rows * h, n_cols * w, c)


def save_png(image: np.ndarray, path: Path, *, scale: int = 1) -> Path:
    """Writes a uint8 (H, W, C) image with matplotlib, upscaled `scale` times (nearest)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    image = np.repeat(np.repeat(image, scale, axis=0), scale, axis=1)
    if image.shape[-1] == 1:
        image = image[..., 0]
    tmp = path.with_name(f".{path.stem}.tmp.png")
    plt.imsave(tmp, image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255)
    os.replace(tmp, path)
    return path


# --- training --------------------------------------------------------------------------------


def train(config: Config, workdir: str | Path, *, verbose: int = 1) -> dict:
    """Trains (or resumes) an ACAI run in `workdir` and evaluates it on the held-out images.

    Args:
      config: the run's settings.
      workdir: where the config, checkpoints, TensorBoard logs and sample grids go. Re-running
        in the same folder resumes from the newest checkpoint.
      verbose: 0 silent, 1 progress bar, 2 one line per epoch (as `keras.Model.fit`).

    Returns:
      The held-out results: {"step", "rmse" (0-255 scale), "probe_accuracy"}.
    """
    workdir = Path(workdir)
    if workdir.exists() and not workdir.is_dir():
        raise WorkdirError(f"WORKDIR '{workdir}' is a file, not a folder; pass a folder")
    _check_resume(workdir, config)  # before anything is written or loaded
    with workdir_lock(workdir), _signals_raise_interrupted():
        return _train_locked(config, workdir, verbose)


def _train_locked(config: Config, workdir: Path, verbose: int) -> dict:
    data = data_lib.load(config.data, config.classes)
    precision, jit = resolve_precision(config.precision), resolve_jit(config.jit_compile)
    strategy = make_strategy(config.strategy)
    jit = xla_for(strategy, jit)
    write_json(workdir / "config.json", config.to_dict())
    write_json(workdir / "run.json", {
        "class_names": list(data.class_names), "image_shape": list(data.image_shape),
        "precision": precision, "jit_compile": jit,
    })  # fmt: skip
    with strategy.scope():
        model = build_model(config, image_shape=data.image_shape, num_classes=data.num_classes,
                            precision=precision, jit=jit)  # fmt: skip
        checkpoint = _checkpoint(model)
    manager = tf.train.CheckpointManager(
        checkpoint, str(workdir / "checkpoints"), max_to_keep=config.keep_checkpoints
    )
    restored = restore_latest(checkpoint, manager)
    step = int(model.step.numpy())
    if verbose:
        classes = ",".join(data.class_names)
        print(f"acai: {len(data.train_images)} training images, classes {classes}; "
              f"precision {precision}, XLA {'on' if jit else 'off'}, "
              f"{strategy.num_replicas_in_sync} replica(s)")  # fmt: skip
        print(
            f"acai: resuming from step {step} ({restored})" if restored else "acai: step 0, new run"
        )

    spe = config.steps_per_epoch
    epochs = math.ceil(config.total_steps / spe)
    saver = SaveCheckpoint(manager)
    if step < config.total_steps:
        train_ds = data_lib.train_dataset(
            data.train_images, data.train_labels, batch=config.batch, seed=config.seed + step
        )
        # Fixed random subsets: image folders list the test set class by class.
        order = np.random.default_rng(config.seed).permutation(len(data.test_images))
        val = np.sort(order[:VALIDATION_IMAGES])
        val_ds = data_lib.eval_dataset(data.test_images[val], data.test_labels[val], batch=256)
        pairs = data.test_images[order[: 2 * SAMPLE_PAIRS]]
        callbacks = [
            Throughput(config.batch),
            StopAtStep(config.total_steps),
            # Under mixed_float16 the loss-scale optimizers skip non-finite steps by design.
            *([] if precision == "mixed_float16" else [CheckFinite(manager)]),
            keras.callbacks.ProgbarLogger(),
            saver,
            SampleGrids(pairs, workdir / "samples", workdir / "logs"),
            keras.callbacks.TensorBoard(str(workdir / "logs"), write_graph=False),
            keras.callbacks.CSVLogger(str(workdir / "history.csv"), append=True),
        ]
        try:
            model.fit(
                train_ds, steps_per_epoch=spe, epochs=epochs, initial_epoch=step // spe,
                validation_data=val_ds, callbacks=callbacks, verbose=verbose, shuffle=False,
            )  # fmt: skip
        except KeyboardInterrupt:
            path = saver.save()
            print(f"\nacai: interrupted at step {int(model.step.numpy())}; saved {path}; "
                  "re-run the same command to resume")  # fmt: skip
            raise
    else:
        saver.set_model(model)
        saver.save()
    results = evaluate_heldout(model, data, batch=256)
    write_json(workdir / "eval.json", results)
    if verbose:
        print(f"acai: step {results['step']}: held-out reconstruction RMSE "
              f"{results['rmse']:.2f} (0-255), latent probe accuracy "
              f"{100 * results['probe_accuracy']:.1f}% on {results['images']} images")  # fmt: skip
    return results


def evaluate_heldout(model: ACAI, data: data_lib.ImageData, *, batch: int = 256) -> dict:
    """Reconstruction RMSE (0-255) and latent probe accuracy on every held-out image."""
    ds = data_lib.eval_dataset(data.test_images, data.test_labels, batch=batch)
    scores = model.evaluate(ds, verbose=0, return_dict=True)
    return {
        "step": int(model.step.numpy()), "rmse": float(scores["rmse"]),
        "probe_accuracy": float(scores["probe_accuracy"]), "images": len(data.test_images),
    }  # fmt: skip


@contextlib.contextmanager
def _signals_raise_interrupted():
    """Turns SIGTERM (and SIGINT) into `Interrupted`, so a checkpoint is written on the way out."""

    def handler(signum, frame):
        raise Interrupted(signum)

    try:
        previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


# --- loading a finished run ------------------------------------------------------------------


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
    except (ValueError, KeyError, TypeError, AcaiError) as e:
        raise WorkdirError(
            f"'{workdir}' holds an unreadable run ({e!r}); pass another WORKDIR"
        ) from None
    model = build_model(config, image_shape=run.image_shape, num_classes=len(run.class_names),
                        precision="float32", jit=False)  # fmt: skip
    checkpoint = _checkpoint(model)
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
