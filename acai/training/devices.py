"""Devices and numerics: precision, XLA, steps per execution and the distribution strategy,
chosen once from the config and shared by training and the bench."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import keras
import tensorflow as tf

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Settings:
    """How a run computes, resolved once from its config for the machine and strategy."""

    precision: str  # a Keras dtype policy name, never "auto"
    jit: bool  # whether the train step is compiled with XLA
    steps_per_execution: int  # training steps per call into the device


def settings_for(config, strategy: tf.distribute.Strategy) -> Settings:
    """The precision, XLA and steps per execution of `config` (an `acai.Config`) on this
    machine under `strategy`: what training and the bench both use."""
    return Settings(
        precision=resolve_precision(config.precision),
        jit=xla_for(strategy, resolve_jit(config.jit_compile)),
        steps_per_execution=resolve_steps_per_execution(config.steps_per_execution),
    )


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
        log.warning(
            "XLA is off: with %d replicas an XLA-compiled step fails in TensorFlow "
            "(a variable on another device); training runs as a TF graph",
            strategy.num_replicas_in_sync,
        )
        return False
    return jit


def seed_everything(seed: int) -> None:
    """Seeds Python, NumPy and TensorFlow at once: the same seed gives the same first weights."""
    keras.utils.set_random_seed(seed)


def resolve_steps_per_execution(value: int) -> int:
    """Maps 0 ("auto") to 1 on a CPU, where a step's launch is cheap next to its work, and to
    32 on accelerators, where the host would otherwise wait on the device after every step."""
    if value:
        return value
    accelerated = tf.config.list_physical_devices("GPU") or tf.config.list_logical_devices("TPU")
    return 32 if accelerated else 1


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run's files: always, but under a multi-worker strategy
    only the chief (or worker 0 when the cluster names no chief) does."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.task_type:
        return True
    if resolver.task_type == "chief":
        return True
    no_chief = "chief" not in resolver.cluster_spec().as_dict()
    return resolver.task_type == "worker" and resolver.task_id == 0 and no_chief
