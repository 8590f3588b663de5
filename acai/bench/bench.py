"""`acai bench`: training speed of the trainer's loop, Keras' fit(), a bare compiled step, a
plain Keras step of the same networks and the CPU's or GPU's matmul peak, all in one process."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from acai.bench import timers
from acai.bench.flops import flops_per_image
from acai.bench.profile import profile_step
from acai.bench.reference import reference_step
from acai.core import model as model_lib
from acai.core.config import Config
from acai.training import classifier as classifier_lib
from acai.training import data as data_lib
from acai.training import devices, loop
from acai.training import features as features_lib

SYNTHETIC_IMAGES = 2048
NUM_CLASSES = 10
IMAGE_SHAPE = (32, 32, 3)


def bench(
    config: Config,
    *,
    steps: int = 20,
    rounds: int = 3,
    warmup: int = 3,
    reference: bool = False,
    profile: str | Path | None = None,
) -> dict:
    """Measures training images/second on synthetic data for `config`'s networks.

    Three ways of driving the same `train_step` are timed in alternating rounds, so that noise
    on a shared machine hits them alike; each figure is the median over rounds: the trainer's
    loop (`acai.training.loop.fit` with the per-execution callbacks `acai train` uses), Keras'
    `fit()` with the same callbacks, a bare `tf.function` of the step on a twin model, a large
    matmul in the step's compute dtype (the machine's peak) and, with `reference`, a plain Keras
    step of the same networks and losses (`reference_step`).

    Args:
      config: the networks, batch, precision, XLA and steps_per_execution settings to measure.
      steps: training steps per timed round.
      rounds: timed rounds of each kind.
      warmup: untimed steps after compilation.
      reference: also time `reference_step`.
      profile: a folder: after the rounds, trace `steps` more steps of the bare step with
        TensorFlow's profiler into it (TensorBoard's Profile tab reads it) and add the op time
        by network and by op type (`op_times`) to the result.

    Returns:
      The figures: images_per_second (the trainer's loop), keras_fit_images_per_second,
      bare_images_per_second, their ratios, flops_per_image, peak_gflops and peak_fraction (the
      loop's FLOP/s over the peak), with `reference` reference_images_per_second and
      vs_reference, and the settings.
    """
    strategy = tf.distribute.get_strategy()
    settings = devices.settings_for(config, strategy)
    extractor = untrained_feature_extractor(config, settings.precision)

    def build():
        return model_lib.build(
            config,
            image_shape=IMAGE_SHAPE,
            num_classes=NUM_CLASSES,
            precision=settings.precision,
            jit=settings.jit,
            feature_extractor=extractor,
        )

    model = build()  # stepped by the trainer's loop
    keras_model = build()  # stepped by Keras' fit()
    twin = build()  # stepped by a bare tf.function of its train_step
    dataset = synthetic_data(config, model)
    iterator = loop.distribute(strategy, dataset)
    per_call = settings.steps_per_execution

    def time_trainer_loop(steps):
        return timers.time_loop(
            model,
            strategy,
            iterator,
            batch=config.batch,
            steps=steps,
            per_call=per_call,
            jit=settings.jit,
        )

    start = time.perf_counter()
    time_trainer_loop(warmup)  # compiles
    compile_s = time.perf_counter() - start
    bare_iterator = iter(dataset())
    bare_step = tf.function(twin.train_step, jit_compile=settings.jit)
    bare = timers.step_timer(bare_step, bare_iterator, steps, warmup)
    rounds_of = {
        "loop": lambda: time_trainer_loop(steps),
        "keras_fit": timers.keras_fit_timer(
            keras_model, dataset, batch=config.batch, steps=steps, warmup=warmup
        ),
        "bare": bare,
    }
    if reference:  # the feature loss's classifier as keras.models.load_model gives it
        plain = reference_step(
            config,
            image_shape=IMAGE_SHAPE,
            num_classes=NUM_CLASSES,
            precision=settings.precision,
            jit=settings.jit,
            feature_extractor=untrained_feature_extractor(config, "float32", fold=False),
        )
        rounds_of["reference"] = timers.step_timer(plain, bare_iterator, steps, warmup)
    peak_dtype = keras.mixed_precision.Policy(settings.precision).compute_dtype
    rounds_of["peak"] = timers.peak_timer(peak_dtype)
    speeds = timers.alternate(rounds_of, rounds)
    result = figures(
        config,
        speeds,
        flops=flops_per_image(model),
        peak_dtype=peak_dtype,
        compile_s=round(compile_s, 1),
        precision=settings.precision,
        jit_compile=settings.jit,
        steps_per_execution=per_call,
        steps=steps,
        rounds=rounds,
    )
    if profile is not None:
        result["profile"] = str(profile)
        result["op_times"] = profile_step(bare, profile, steps=steps)
    return result


def synthetic_data(config: Config, model: model_lib.ACAI):
    """Random images and labels through the trainer's pipeline, with what the model's parts
    want per image (the feature loss's maps) computed once, as the trainer does: a function
    (context=None) -> dataset, as `acai.training.loop.distribute` takes."""
    rng = np.random.default_rng(config.seed)
    images = rng.integers(0, 256, (SYNTHETIC_IMAGES, *IMAGE_SHAPE), dtype=np.uint8)
    labels = rng.integers(0, NUM_CLASSES, SYNTHETIC_IMAGES).astype(np.int32)
    per_image = model.per_image_inputs(images)
    return lambda context=None: data_lib.train_dataset(
        images, labels, batch=config.batch, seed=config.seed, per_image=per_image
    )


def figures(config: Config, speeds: dict, *, flops: int, peak_dtype: str, **settings) -> dict:
    """`bench`'s result from the rounds' speeds (images/s; FLOP/s for "peak"): the medians,
    their ratios, the peak fraction, every round, and the settings."""
    median = {name: statistics.median(values) for name, values in speeds.items()}
    compared = (
        {
            "reference_images_per_second": round(median["reference"], 1),
            "vs_reference": round(median["loop"] / median["reference"], 3),
        }
        if "reference" in median
        else {}
    )
    return {
        "images_per_second": round(median["loop"], 1),
        "keras_fit_images_per_second": round(median["keras_fit"], 1),
        "bare_images_per_second": round(median["bare"], 1),
        "loop_vs_keras_fit": round(median["loop"] / median["keras_fit"], 3),
        "loop_vs_bare": round(median["loop"] / median["bare"], 3),
        **compared,
        "flops_per_image": flops,
        "peak_dtype": peak_dtype,
        "peak_gflops": round(median["peak"] / 1e9, 1),
        "peak_fraction": round(median["loop"] * flops / median["peak"], 3),
        "step_ms": round(1000 * config.batch / median["loop"], 1),
        **settings,
        "batch": config.batch,
        "depth": config.depth,
        "latent": config.latent,
        "latent_width": config.latent_width,
        **{
            f"{name}_rounds": [round(v, 1) for v in values]
            for name, values in speeds.items()
            if name != "peak"
        },
        "peak_gflops_rounds": [round(v / 1e9, 1) for v in speeds["peak"]],
    }


def untrained_feature_extractor(
    config: Config, policy: str, *, fold: bool = True
) -> keras.Model | None:
    """With `config.perceptual` on, the activations of an untrained classifier of the
    architecture `acai classifier` trains, computing under `policy`, its batch normalisation
    folded (`fold`) as in training: the feature loss costs the same with any weights, so the
    bench needs neither the trained file nor data."""
    if not config.perceptual:
        return None
    classifier = features_lib.in_policy(
        classifier_lib.build(NUM_CLASSES, image_shape=IMAGE_SHAPE), policy
    )
    return features_lib.activations(
        features_lib.fold_batch_norm(classifier) if fold else classifier
    )
