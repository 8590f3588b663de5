"""`train(config, workdir)`, exported as `acai.train`: devices, precision, callbacks, resume."""

from __future__ import annotations

import contextlib
import logging
import re
import signal
import tempfile
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from acai import files
from acai.core import model as model_lib
from acai.core.config import Config
from acai.errors import ConfigError, TrainingError, WorkdirError
from acai.files import write_json
from acai.training import callbacks as cb
from acai.training import data as data_lib
from acai.training import devices, loop
from acai.training import features as features_lib
from acai.training import run as run_lib

log = logging.getLogger(__name__)

VALIDATION_IMAGES = 1024  # random test images scored at the end of every epoch

__all__ = ["Interrupted", "TrainingError", "train"]


class Interrupted(KeyboardInterrupt):
    """Training was stopped by SIGINT or SIGTERM; a checkpoint was written first."""

    def __init__(self, signum: int = signal.SIGINT):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


# --- training --------------------------------------------------------------------------------


def train(config: Config, workdir: str | Path, *, verbose: int = 1) -> dict:
    """Trains (or resumes) an ACAI run in `workdir` and evaluates it on the held-out images.

    Under `strategy=multi_worker` every worker runs this with the same WORKDIR (a shared
    folder): all of them restore from it, only the chief writes to it.

    Args:
      config: the run's settings.
      workdir: where the config, checkpoints, TensorBoard logs and sample grids go. Re-running
        in the same folder resumes from the newest checkpoint.
      verbose: 0 silent, 1 progress bar, 2 one line per epoch (as `keras.Model.fit`).

    Returns:
      The held-out results: {"step", "rmse" (0-255 scale), "probe_accuracy", "images"}.
    """
    workdir = Path(workdir)
    if workdir.exists() and not workdir.is_dir():
        raise WorkdirError(f"WORKDIR '{workdir}' is a file, not a folder; pass a folder")
    run_lib.check_resume(workdir, config)  # before anything is written or loaded
    if config.perceptual and not Path(config.perceptual_model).is_file():
        raise ConfigError(
            f"perceptual_model '{config.perceptual_model}' does not exist; train it first: "
            f"acai classifier --data ... --out {config.perceptual_model}"
        )
    data = data_lib.load(config.data, config.classes)
    if config.validation:
        data, _ = data_lib.carve_validation(data, config.validation)  # never trained on
    strategy = devices.make_strategy(config.strategy)
    if not devices.is_chief(strategy):  # writes go to a private folder, deleted at the end
        with tempfile.TemporaryDirectory(prefix="acai-worker-") as scratch:
            return _train(
                config, workdir, Path(scratch), data, strategy, verbose=0, signals=_Signals()
            )
    with run_lib.workdir_lock(workdir), _signals_raise_interrupted() as signals:
        return _train(config, workdir, workdir, data, strategy, verbose=verbose, signals=signals)


def _train(config, workdir: Path, out: Path, data, strategy, *, verbose: int, signals) -> dict:
    """Trains with checkpoints restored from `workdir` and everything written to `out`;
    `signals` (a `_Signals`) turns the signals it was installed for into `Interrupted`."""
    settings = devices.settings_for(config, strategy)
    write_json(out / "config.json", config.to_dict())
    write_json(
        out / "run.json",
        {
            "class_names": list(data.class_names),
            "image_shape": list(data.image_shape),
            "precision": settings.precision,
            "jit_compile": settings.jit,
            "inputs": files.describe_inputs(config),
        },
    )
    model, manager, restored = _build_and_restore(config, workdir, out, data, strategy, settings)
    step = int(model.step.numpy())
    if verbose:
        classes = ",".join(data.class_names)
        print(
            f"acai: {len(data.train_images)} training images, classes {classes}; "
            f"precision {settings.precision}, XLA {'on' if settings.jit else 'off'}, "
            f"{strategy.num_replicas_in_sync} replica(s)"
        )
        print(
            f"acai: resuming from step {step} ({restored})" if restored else "acai: step 0, new run"
        )

    saver = cb.SaveCheckpoint(manager)
    saver.set_model(model)
    if step < config.total_steps:
        _fit(
            model,
            saver,
            config,
            out,
            data,
            strategy,
            step=step,
            settings=settings,
            signals=signals,
            verbose=verbose,
        )
    results = {
        "step": int(model.step.numpy()),
        **run_lib.heldout_scores(model, data.test_images, data.test_labels),
        "images": len(data.test_images),
    }
    write_json(out / "eval.json", results)
    if verbose:
        print(
            f"acai: step {results['step']}: held-out reconstruction RMSE "
            f"{results['rmse']:.2f} (0-255), latent probe accuracy "
            f"{100 * results['probe_accuracy']:.1f}% on {results['images']} images"
        )
    return results


def _build_and_restore(config, workdir: Path, out: Path, data, strategy, settings):
    """Builds the model under the strategy and restores the newest checkpoint (the chief's own,
    or the one in `workdir` for other workers).

    Returns:
      (model, the checkpoint manager writing to `out`, the path restored or None).
    """
    devices.seed_everything(config.seed)  # before any weight exists
    with strategy.scope():
        model = model_lib.build(
            config,
            image_shape=data.image_shape,
            num_classes=data.num_classes,
            precision=settings.precision,
            jit=settings.jit,
            feature_extractor=(
                features_lib.feature_extractor(config.perceptual_model, policy=settings.precision)
                if config.perceptual
                else None
            ),
        )
        checkpoint = run_lib.make_checkpoint(model)
    manager = tf.train.CheckpointManager(
        checkpoint, str(out / "checkpoints"), max_to_keep=config.keep_checkpoints
    )
    chief = out == workdir
    source = (
        manager
        if chief
        else tf.train.CheckpointManager(checkpoint, str(workdir / "checkpoints"), 1)
    )
    restored = run_lib.restore_latest(checkpoint, source)
    return model, manager, restored


def _fit(model, saver, config, out, data, strategy, *, step, settings, signals, verbose):
    """Trains from `step` to the end with the callbacks; a Ctrl-C saves a checkpoint first."""
    schedule = loop.Schedule(
        config.total_steps,
        config.steps_per_epoch,
        settings.steps_per_execution,
    )

    per_image = model.per_image_inputs(data.train_images)  # the feature loss's photo maps

    def shard(context: tf.distribute.InputContext):  # this worker's part of the data
        return data_lib.train_dataset(
            data.train_images,
            data.train_labels,
            batch=context.get_per_replica_batch_size(config.batch),
            seed=config.seed + step,
            shard=(context.num_input_pipelines, context.input_pipeline_id),
            per_image=per_image,
        )

    # Fixed random subsets: image folders list the test set class by class.
    order = np.random.default_rng(config.seed).permutation(len(data.test_images))
    val = np.sort(order[:VALIDATION_IMAGES])
    pairs = data.test_images[order[: 2 * cb.SAMPLE_PAIRS]]
    callbacks = [
        cb.Throughput(config.batch),
        # Under mixed_float16 the loss-scale optimizers skip non-finite steps by design.
        *([] if settings.precision == "mixed_float16" else [cb.CheckFinite(saver.manager)]),
        saver,
        cb.SampleGrids(pairs, out / "samples", out / "logs"),
        keras.callbacks.TensorBoard(str(out / "logs"), write_graph=False),
        keras.callbacks.CSVLogger(str(out / "history.csv"), append=True),
        signals.callback(),
    ]
    try:
        with signals.deferred():
            loop.fit(
                model,
                strategy,
                loop.distribute(strategy, shard),
                schedule=schedule,
                start_step=step,
                callbacks=callbacks,
                validate=lambda: run_lib.heldout_scores(
                    model, data.test_images[val], data.test_labels[val]
                ),
                verbose=verbose,
                jit=settings.jit,
            )
    except KeyboardInterrupt:
        if _multi_worker(strategy):  # a save needs every worker: keep the epoch's checkpoint
            raise
        path = saver.save()
        print(
            f"\nacai: interrupted at step {int(model.step.numpy())}; saved {path}; "
            "re-run the same command to resume"
        )
        raise
    except tf.errors.OpError as e:
        if _multi_worker(strategy) and _peer_lost(e):
            raise TrainingError(
                f"a worker of the cluster stopped ({_lost_peer(e, strategy)}); the last "
                f"checkpoint is {saver.manager.latest_checkpoint or 'none yet'}: restart every "
                "worker to resume from it"
            ) from None
        raise


def _multi_worker(strategy: tf.distribute.Strategy) -> bool:
    resolver = getattr(strategy, "cluster_resolver", None)
    return bool(resolver is not None and resolver.task_type)


def _peer_lost(error: tf.errors.OpError) -> bool:
    """Whether a collective failed because another worker went away."""
    lost = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.AbortedError)
    return isinstance(error, lost) or "heartbeat" in str(error).lower()


def _lost_peer(error: Exception, strategy: tf.distribute.Strategy) -> str:
    """Which other task of the cluster failed, as far as the error names it."""
    resolver = strategy.cluster_resolver
    own = (resolver.task_type, str(resolver.task_id))
    text = getattr(error, "message", None) or str(error)
    tasks = re.findall(r"/job:(\w+)/replica:\d+/task:(\d+)", text)
    others = [f"{job} {task}" for job, task in dict.fromkeys(tasks) if (job, task) != own]
    return ", ".join(others) or "another worker"


class _Signals:
    """SIGINT and SIGTERM as `Interrupted`: raised at once, except while training steps run.

    Then the first signal is only noted, and a callback raises it at the end of the next call
    into the device, so the exception never unwinds through TensorFlow's work (a SIGINT raised
    mid-step was seen to crash the process). A second signal raises at once.
    """

    def __init__(self):
        self.deferring, self.pending = False, None

    def handler(self, signum, frame):
        if self.deferring and self.pending is None:
            self.pending = signum
            return
        raise Interrupted(signum)

    def raise_pending(self):
        if self.pending is not None:
            raise Interrupted(self.pending)

    @contextlib.contextmanager
    def deferred(self):
        self.deferring = True
        try:
            yield
        finally:
            self.deferring = False
        self.raise_pending()  # a signal noted after the last step

    def callback(self) -> keras.callbacks.Callback:
        signals = self

        class RaisePending(keras.callbacks.Callback):
            def on_train_batch_end(self, batch, logs=None):
                signals.raise_pending()

        return RaisePending()


@contextlib.contextmanager
def _signals_raise_interrupted():
    """Installs a `_Signals` for SIGTERM and SIGINT, so a checkpoint is written on the way out,
    and yields it; off the main thread signals are left alone (it then never raises)."""
    signals = _Signals()
    try:
        previous = {s: signal.signal(s, signals.handler) for s in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread: leave signals alone
        yield signals
        return
    try:
        yield signals
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
