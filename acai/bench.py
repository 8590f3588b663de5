"""`acai bench`: training speed of the trainer's loop, Keras' fit(), a bare compiled step, a
plain Keras step of the same networks and the CPU's or GPU's matmul peak, all in one process."""

from __future__ import annotations

import collections
import re
import statistics
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from acai import callbacks as cb
from acai import classifier as classifier_lib
from acai import data as data_lib
from acai import devices, loop, networks
from acai import features as features_lib
from acai import model as model_lib
from acai.config import Config

SYNTHETIC_IMAGES = 2048
NUM_CLASSES = 10
IMAGE_SHAPE = (32, 32, 3)
PEAK_SIZE = 2048  # the peak is timed on (PEAK_SIZE, PEAK_SIZE) @ (PEAK_SIZE, PEAK_SIZE)
# the step's networks, as their ops are named in a profile ("features": the feature loss's)
NETWORKS = ("encoder", "decoder", "critic", "probe", "discriminator", "features")


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
    loop (`acai.loop.fit` with the per-execution callbacks `acai train` uses), Keras'
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
    precision = devices.resolve_precision(config.precision)
    jit = devices.resolve_jit(config.jit_compile)
    per_call = devices.resolve_steps_per_execution(config.steps_per_execution)
    # what the trainer's model and the reference step are built with
    shared = {"image_shape": IMAGE_SHAPE, "num_classes": NUM_CLASSES, "precision": precision}
    shared |= {"jit": jit, "feature_extractor": untrained_feature_extractor(config, precision)}
    dataset = synthetic_data(config, shared["feature_extractor"])
    strategy = tf.distribute.get_strategy()

    def build():
        return model_lib.build(config, **shared)

    model, keras_model, twin = build(), build(), build()
    iterator = loop.distribute(strategy, dataset)
    start = time.perf_counter()
    time_loop(  # compiles
        model, strategy, iterator, batch=config.batch, steps=warmup, per_call=per_call, jit=jit
    )
    compile_s = time.perf_counter() - start
    time_keras_fit = keras_fit_timer(
        keras_model, dataset, batch=config.batch, steps=steps, warmup=warmup
    )
    bare_iterator = iter(dataset())
    bare = step_timer(tf.function(twin.train_step, jit_compile=jit), bare_iterator, steps, warmup)
    timers = {
        "loop": lambda: time_loop(
            model, strategy, iterator, batch=config.batch, steps=steps, per_call=per_call, jit=jit
        ),
        "keras_fit": time_keras_fit,
        "bare": bare,
    }
    if reference:  # the feature loss's classifier as keras.models.load_model gives it
        as_loaded = untrained_feature_extractor(config, "float32", fold=False)
        plain = reference_step(config, **{**shared, "feature_extractor": as_loaded})
        timers["reference"] = step_timer(plain, bare_iterator, steps, warmup)
    peak_dtype = keras.mixed_precision.Policy(precision).compute_dtype
    timers["peak"] = peak_timer(peak_dtype)
    speeds = alternate(timers, rounds)
    settings = {"compile_s": round(compile_s, 1), "precision": precision, "jit_compile": jit}
    settings |= {"steps_per_execution": per_call, "steps": steps, "rounds": rounds}
    flops = flops_per_image(model)
    result = figures(config, speeds, flops=flops, peak_dtype=peak_dtype, **settings)
    if profile is not None:
        result["profile"] = str(profile)
        result["op_times"] = profile_step(bare, profile, steps=steps)
    return result


def profile_step(timer, folder: str | Path, *, steps: int, top: int = 12) -> dict:
    """Traces one call of `timer` (a `step_timer` of `steps` steps) with TensorFlow's profiler
    into `folder` and sums its ops' time per step.

    Returns:
      {"ms_per_step": op time per step, both compute threads together; "by_network": ms per
      step for each network (`encoder`, `decoder`, `critic`, `features`: the feature loss's
      classifier, ...) forward and backward ("other": ops of no network, such as the custom
      gradients and the losses); "by_op_type": the `top` op types}.
    """
    from tensorflow.tsl.profiler.protobuf import xplane_pb2  # ships with TensorFlow

    tf.profiler.experimental.start(str(folder))
    try:
        timer()
    finally:
        tf.profiler.experimental.stop()
    traces = Path(folder).glob("plugins/profile/*/*.xplane.pb")
    newest = max(traces, key=lambda path: path.stat().st_mtime)
    space = xplane_pb2.XSpace.FromString(newest.read_bytes())
    events = [
        (plane.event_metadata[event.metadata_id].name, event.duration_ps / 1e9 / steps)
        for plane in space.planes
        for line in plane.lines
        if line.name.startswith("tf_Compute")  # TensorFlow's op threads
        for event in line.events
    ]
    by_network, by_type = collections.Counter(), collections.Counter()
    for name, ms in events:
        op, _, op_type = name.rpartition(":")
        if not op or op_type == "Process":  # "Process" spans a whole graph, not one op
            continue
        by_network[op_network(op)] += ms
        by_type[op_type] += ms
    return {
        "ms_per_step": round(sum(by_type.values()), 1),
        "by_network": {k: round(v, 2) for k, v in by_network.most_common(top)},
        "by_op_type": {k: round(v, 2) for k, v in by_type.most_common(top)},
    }


def op_network(op: str) -> str:
    """The network an op of a traced step belongs to, from its name: "decoder backward" for
    "gradient_tape/decoder_3/conv1/Conv2DBackpropInput", "other" for ops of no network."""
    parts = op.split("/")
    for part in parts:
        name = re.sub(r"_\d+$", "", part)
        if name in NETWORKS:
            return f"{name} backward" if "gradient" in op.lower() else name
    return "other"


def synthetic_data(config: Config, feature_extractor: keras.Model | None = None):
    """Random images and labels through the trainer's pipeline, with the feature loss's maps of
    them computed once as the trainer does (`feature_extractor`): a function (context=None) ->
    dataset, as `acai.loop.distribute` takes."""
    rng = np.random.default_rng(config.seed)
    images = rng.integers(0, 256, (SYNTHETIC_IMAGES, *IMAGE_SHAPE), dtype=np.uint8)
    labels = rng.integers(0, NUM_CLASSES, SYNTHETIC_IMAGES).astype(np.int32)
    known = feature_extractor and features_lib.precomputed_features(feature_extractor, images)
    return lambda context=None: data_lib.train_dataset(
        images, labels, batch=config.batch, seed=config.seed, per_image=known or ()
    )


def alternate(timers: dict, rounds: int) -> dict:
    """Each timer's figures over `rounds` rounds, the timers taking turns within each round, so
    that a shared machine's noise hits all alike."""
    speeds = {name: [] for name in timers}
    for _ in range(rounds):
        for name, timer in timers.items():
            speeds[name].append(timer())
    return speeds


def step_timer(step, iterator, steps: int, warmup: int):
    """Compiles a step function of (images, labels) batches; returns a function timing `steps`
    steps of it on `iterator`, in images/second."""
    for _ in range(warmup + 1):
        step(next(iterator))

    def time_step():
        start = time.perf_counter()
        for _ in range(steps):
            batch = next(iterator)
            out = step(batch)
        float(tf.nest.flatten(out)[0])  # wait for the last step
        return steps * int(tf.shape(batch[0])[0]) / (time.perf_counter() - start)

    return time_step


def keras_fit_timer(keras_model, dataset, *, batch: int, steps: int, warmup: int):
    """Compiles Keras' `fit()` on `keras_model`; returns a function timing `steps` steps of it
    with the trainer's Throughput callback, in images/second."""
    keras_model.fit(dataset(), steps_per_epoch=warmup, epochs=1, verbose=0, shuffle=False)

    def time_keras_fit():
        # Throughput skips the first batch of the epoch, so run one extra.
        keras_model.fit(
            dataset(),
            steps_per_epoch=steps + 1,
            epochs=1,
            verbose=0,
            shuffle=False,
            callbacks=[cb.Throughput(batch)],
        )
        return keras_model.history.history["images_per_second"][-1]

    return time_keras_fit


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


def time_loop(
    model, strategy, iterator, *, batch: int, steps: int, per_call: int, jit: bool
) -> float:
    """Images/second of `steps` steps through the trainer's loop after one untimed call (the
    first call of each round, which a Throughput callback leaves out, as in training)."""
    start = int(model.step.numpy())
    total = start + per_call + steps
    loop.fit(
        model,
        strategy,
        iterator,
        schedule=loop.Schedule(total, total, per_call),
        start_step=start,
        callbacks=[cb.Throughput(batch)],
        verbose=0,
        jit=jit,
    )
    return model.history.history["images_per_second"][-1]


def multiply_adds(network: keras.Model) -> int:
    """Multiply-adds of one image's forward pass through the convolutions and dense layers of
    `network` (nested models included); pooling, activations and the like are not counted."""
    total = 0
    for layer in network.layers:
        if isinstance(layer, keras.Model):
            total += multiply_adds(layer)
        elif isinstance(layer, keras.layers.Conv2D):
            _, height, width, filters = layer.output.shape
            kernel_h, kernel_w = layer.kernel_size
            total += height * width * filters * kernel_h * kernel_w * layer.input.shape[-1]
        elif isinstance(layer, keras.layers.Dense):
            total += layer.input.shape[-1] * layer.units
    return total


def flops_per_image(model: model_lib.ACAI) -> int:
    """FLOPs of one training image, forward and backward, as `acai bench` counts them.

    2 FLOPs per multiply-add (`multiply_adds`). Per image the step runs the encoder once, the
    decoder twice (reconstruction and mix), the critic twice (interpolant and regularised
    reconstruction), the probe once and a discriminator, where there is one, three times (real,
    reconstruction and mix). A backward pass costs twice its forward pass (gradients of the
    inputs and of the weights), so those make 3x the forward. On top, the autoencoder's losses
    send gradients back through the critic's call on the interpolants (when advweight > 0) and
    the discriminator's calls on the reconstructions and the interpolants: that gradient of the
    inputs is a second one, beside the critic's (or discriminator's) own, one forward pass more
    each. With the feature loss on, its extractor runs two forward passes' worth (see below).
    The R1 penalty (`disc_r1`) adds the discriminator's input gradient on the real images and
    that gradient's own gradient: counted as three forward passes more, an estimate.
    """
    critic, disc = multiply_adds(model.critic), 0
    forward = multiply_adds(model.encoder) + 2 * multiply_adds(model.decoder) + 2 * critic
    forward += multiply_adds(model.probe)
    if model.discriminator is not None:
        disc = multiply_adds(model.discriminator)
        forward += 3 * disc
    second_input_gradients = (critic if model.advweight else 0) + 2 * disc
    if model.discriminator is not None and model.disc_r1:
        second_input_gradients += 3 * disc
    # The feature loss: the frozen extractor's forward pass on the reconstructions and the
    # gradient of their input only; the photos' maps come with the data, computed once
    # (`acai.features.precomputed_features`), as `synthetic_data` and the trainer do.
    features = 2 * multiply_adds(model.feature_extractor) if model.feature_extractor else 0
    return 2 * (3 * forward + second_input_gradients + features)


def peak_timer(dtype: str, *, size: int = PEAK_SIZE, repeats: int = 3):
    """A function timing `repeats` (size, size) matmuls in `dtype`, returning FLOP/s.

    A convolution runs as this kernel, in the step's compute dtype, so its speed in the same
    process is the peak the step is measured against.
    """
    a = tf.cast(tf.random.uniform((size, size), -1.0, 1.0, seed=1), dtype)
    b = tf.cast(tf.random.uniform((size, size), -1.0, 1.0, seed=2), dtype)
    matmul = tf.function(tf.linalg.matmul)
    float(matmul(a, b)[0, 0])  # traces

    def time_peak():
        start = time.perf_counter()
        for _ in range(repeats):
            c = matmul(a, b)
        float(c[0, 0])
        return repeats * 2 * size**3 / (time.perf_counter() - start)

    return time_peak


def reference_step(
    config: Config,
    *,
    image_shape,
    num_classes: int,
    precision: str,
    jit: bool,
    feature_extractor: keras.Model | None = None,
):
    """A plain Keras 3 ACAI train step of the same networks and losses, as a user would write
    it: Keras' own layers (`keras.layers.Conv2D` and `LeakyReLU`, not those of `acai.networks`),
    a decoder call for the reconstructions and another for the mixes, a critic call for the
    interpolants and another for the regularised reconstructions, three Adam optimizers, one
    `tf.function`. With `feature_extractor` (`untrained_feature_extractor`) the autoencoder's
    loss adds the feature loss, and with `config.ema` the step updates a moving average of the
    encoder's and decoder's weights; the realism discriminator (`discweight`) is left out.

    Returns:
      A function (images, labels) -> the autoencoder's loss that trains the networks one step;
      its `networks` are (encoder, decoder, critic, probe).
    """
    size = image_shape[0] >> config.scales
    latent_shape = (size, size, config.latent)
    # Keras' own layers: the plain step a user would write.
    shape = {"scales": config.scales, "dtype": precision, "stock": True}
    encoder = networks.encoder(image_shape, depth=config.depth, latent=config.latent, **shape)
    decoder = networks.decoder(latent_shape, depth=config.depth, colors=image_shape[-1], **shape)
    critic = networks.critic(
        image_shape, depth=config.advdepth or config.depth, latent=config.latent, **shape
    )
    probe = networks.probe(latent_shape, num_classes=num_classes)
    optimizers = [keras.optimizers.Adam(config.lr) for _ in range(3)]
    if precision == "mixed_float16":
        optimizers = [keras.optimizers.LossScaleOptimizer(o) for o in optimizers]
    trained = [
        encoder.trainable_variables + decoder.trainable_variables,
        critic.trainable_variables,
        probe.trainable_variables,
    ]
    for optimizer, variables in zip(optimizers, trained):
        optimizer.build(variables)
    weights = encoder.weights + decoder.weights
    averages = [tf.Variable(w) for w in weights] if config.ema else []

    @tf.function(jit_compile=jit)
    def step(data):
        x, labels = data[:2]  # it computes the photos' features itself
        alpha = model_lib.fold_alpha(tf.random.uniform((tf.shape(x)[0], 1, 1, 1)))
        with tf.GradientTape(persistent=True) as tape:
            z = encoder(x, training=True)
            x_hat = decoder(z, training=True)
            x_mix = decoder(model_lib.mix_latents(z, alpha, path=config.mix), training=True)
            critic_mix = critic(x_mix, training=True)
            critic_real = critic(x_hat + config.reg * (x - x_hat), training=True)
            loss_ae = tf.reduce_mean(tf.square(x - x_hat)) + config.advweight * tf.reduce_mean(
                tf.square(critic_mix)
            )
            if feature_extractor is not None:
                loss_ae += config.perceptual * model_lib.feature_distance(
                    feature_extractor(x, training=False), feature_extractor(x_hat, training=False)
                )
            loss_critic = tf.reduce_mean(
                tf.square(critic_mix - tf.reshape(alpha, (-1, 1)))
            ) + tf.reduce_mean(tf.square(critic_real))
            logits = probe(tf.stop_gradient(z), training=True)
            loss_probe = tf.reduce_mean(
                keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
            )
            losses = [
                o.scale_loss(loss)
                for o, loss in zip(optimizers, [loss_ae, loss_critic, loss_probe])
            ]
        for optimizer, variables, loss in zip(optimizers, trained, losses):
            optimizer.apply(tape.gradient(loss, variables), variables)
        for average, weight in zip(averages, weights):
            average.assign(config.ema * average + (1 - config.ema) * weight)
        return loss_ae

    step.networks = (encoder, decoder, critic, probe)  # for tests: load the same weights
    return step
