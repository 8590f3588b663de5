"""`ACAI(keras.Model)`: the paper's autoencoder, critic and latent probe, built from a `Config`,
with the optional parts of `acai.core.parts`.

Importing this module registers `ACAI` (and the layers of `acai.core.networks`) with Keras, so
that `keras.saving.load_model` can rebuild an exported acai.keras.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from acai.core import networks
from acai.core.config import Config
from acai.core.losses import autoencoder_loss, critic_loss, fold_alpha, mix_latents, rmse_255
from acai.core.parts import (
    ContrastDissolves,
    Dissolves,
    FeatureLoss,
    MovingAverage,
    Part,
    Realism,
    Step,
)
from acai.core.walks import PATHS, walk

# compile()'s optimizer arguments, and the network each one trains
OPTIMIZERS = {
    "ae_optimizer": "autoencoder",
    "critic_optimizer": "critic",
    "probe_optimizer": "probe",
}


class Rmse255(keras.metrics.Mean):
    """Averages per-image squared errors and reports their root on the 0-255 scale."""

    def result(self):
        return rmse_255(super().result())


@keras.saving.register_keras_serializable(package="acai")
class ACAI(keras.Model):
    """An adversarially constrained autoencoder with its critic and latent probe.

    Args:
      config: the run's settings; the networks, losses and optional parts follow from it.
      image_shape: (H, W, C) of the images.
      num_classes: the data's classes, for the latent probe.
      policy: a Keras dtype policy name (not "auto"), e.g. "mixed_bfloat16".
      feature_extractor: for training with `config.perceptual` on: the frozen network of
        `acai.training.features.feature_extractor`; models for inference need none.
      mix_groups: see `mix_latents`; 1 mixes across the whole (per-replica) batch.
    """

    def __init__(
        self,
        config: Config,
        *,
        image_shape=(32, 32, 3),
        num_classes: int = 10,
        policy: str = "float32",
        feature_extractor: keras.Model | None = None,
        mix_groups: int = 1,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.config = config
        self.image_shape = tuple(image_shape)
        self.num_classes, self.policy, self.mix_groups = num_classes, policy, mix_groups
        size = self.image_shape[0] >> config.scales
        self.latent_shape = (size, size, config.latent)

        self.encoder, self.decoder = self._autoencoder()
        self.critic = networks.critic(
            self.image_shape,
            depth=config.critic_depth,
            latent=config.latent,
            scales=config.scales,
            dtype=policy,
        )
        self.probe = networks.probe(self.latent_shape, num_classes=num_classes)
        parts = self._parts_of(config, feature_extractor)
        self._parts = _Untracked(parts)
        # Each part's networks are attributes of the model, by the names checkpoints and .keras
        # files have always used; a model without the part keeps None there.
        self.discriminator = self.ema_encoder = self.ema_decoder = None
        for part in parts:
            for name, network in part.networks().items():
                setattr(self, name, network)

        self.seed_generator = keras.random.SeedGenerator(config.seed)
        # Training steps taken; saved with the weights, so a resumed run knows where it is.
        self.step = self.add_weight(
            name="step",
            shape=(),
            dtype="int64",
            initializer="zeros",
            trainable=False,
            aggregation="only_first_replica",
        )
        names = ["loss_ae", "loss_ae_critic", "loss_critic", "loss_critic_real", "loss_probe"]
        names += [name for part in parts for name in part.reports]
        self.trackers = {name: keras.metrics.Mean(name=name) for name in names}
        self.rmse = Rmse255(name="rmse")
        self.probe_accuracy = keras.metrics.SparseCategoricalAccuracy(name="probe_accuracy")
        self.built = True

    def _autoencoder(self, prefix: str = "") -> tuple[keras.Model, keras.Model]:
        """A fresh encoder and decoder of this model's shape, their names prefixed."""
        shape = {"depth": self.config.depth, "scales": self.config.scales, "dtype": self.policy}
        encoder = networks.encoder(
            self.image_shape, latent=self.config.latent, name=f"{prefix}encoder", **shape
        )
        decoder = networks.decoder(
            self.latent_shape,
            colors=self.image_shape[-1],
            mlp=self.config.decoder_mlp,
            name=f"{prefix}decoder",
            **shape,
        )
        return encoder, decoder

    def _parts_of(self, config: Config, feature_extractor) -> list[Part]:
        """The optional parts the config asks for: the one place that reads their settings."""
        parts = []
        if config.perceptual and feature_extractor is not None:
            parts.append(FeatureLoss(feature_extractor, config.perceptual))
        if config.discweight:
            parts.append(Realism(config, self.image_shape, policy=self.policy))
        if config.critic_dissolves:
            parts.append(Dissolves(self.critic, config.critic_dissolves))
        if config.critic_dissolves_contrast:
            parts.append(ContrastDissolves(self.critic, config.critic_dissolves_contrast))
        if config.ema:
            copies = self._autoencoder("ema_")
            parts.append(MovingAverage(config.ema, self.encoder, self.decoder, copies))
        return parts

    @property
    def parts(self) -> tuple[Part, ...]:
        """The optional parts, in the order their terms are added."""
        return self._parts.value

    def part(self, name: str) -> Part | None:
        """The part called `name` ("features", "realism", "moving_average"), or None."""
        return next((p for p in self.parts if p.name == name), None)

    # --- saving ----------------------------------------------------------------------------

    def get_config(self):
        return {
            **super().get_config(),
            "config": self.config.to_dict(),
            "image_shape": list(self.image_shape),
            "num_classes": self.num_classes,
            "policy": self.policy,
            "mix_groups": self.mix_groups,
        }

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if "config" in config:
            run_config = Config.from_dict(config.pop("config"))
        else:  # saved before ACAI took a Config: its fields were keyword arguments
            run_config = _config_from_arguments(config)
        return cls(run_config, **config)

    def compile(
        self,
        *,
        ae_optimizer=None,
        critic_optimizer=None,
        probe_optimizer=None,
        disc_optimizer=None,
        **kwargs,
    ):
        """Sets one optimizer per trained network; the autoencoder's is also `model.optimizer`.

        Each optimizer not given is the config's: Adam (`FusedAdam`) at `config.lr` on
        `config.lr_schedule`, and the realism part's own for `disc_optimizer`. Under the
        mixed_float16 policy each is wrapped in a LossScaleOptimizer.
        """
        given = dict(
            ae_optimizer=ae_optimizer,
            critic_optimizer=critic_optimizer,
            probe_optimizer=probe_optimizer,
            disc_optimizer=disc_optimizer,
        )
        if disc_optimizer is not None and self.part("realism") is None:
            raise ValueError(
                f"this ACAI model (discweight={self.config.discweight}) has no discriminator "
                "for a disc_optimizer"
            )
        for argument in self.optimizer_names:
            optimizer = given[argument] or self._default_optimizer(argument)
            if self.policy == "mixed_float16" and not isinstance(
                optimizer, keras.optimizers.LossScaleOptimizer
            ):
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            setattr(self, argument, optimizer)
        super().compile(optimizer=self.ae_optimizer, **kwargs)

    def _default_optimizer(self, argument: str):
        if argument in OPTIMIZERS:
            # As the original code: one rate (and, with lr_schedule, one schedule) for all three.
            return networks.FusedAdam(networks.learning_rate(self.config, self.config.lr))
        part = next(p for p in self.parts if p.optimizer_argument == argument)
        return part.make_optimizer()

    @property
    def optimizer_names(self) -> tuple[str, ...]:
        """compile()'s optimizer arguments this model uses."""
        own = tuple(p.optimizer_argument for p in self.parts if p.optimizer_argument)
        return (*OPTIMIZERS, *own)

    def get_compile_config(self):
        """compile()'s arguments with all of the model's optimizers, for `keras.saving`."""
        config = super().get_compile_config()  # serialized; its "optimizer" is ae_optimizer
        if not config:
            return config
        config.pop("optimizer", None)
        optimizers = {name: getattr(self, name) for name in self.optimizer_names}
        return {**config, **keras.saving.serialize_keras_object(optimizers)}

    def compile_from_config(self, config):
        """Compiles from `get_compile_config()` and creates the optimizer slots, so that
        `keras.saving.load_model` restores the optimizer states into them."""
        self.compile(**keras.saving.deserialize_keras_object(config))
        self.build_optimizers()

    def build_optimizers(self):
        """Creates every optimizer slot now, so a checkpoint can restore into them."""
        for optimizer, variables in self._trained().values():
            optimizer.build(variables)

    def _trained(self) -> dict[str, tuple]:
        """{network name: (its optimizer, the variables it updates)}."""
        trained = {
            "autoencoder": self.encoder.trainable_variables + self.decoder.trainable_variables,
            "critic": self.critic.trainable_variables,
            "probe": self.probe.trainable_variables,
        }
        optimizers = {network: getattr(self, arg) for arg, network in OPTIMIZERS.items()}
        for part in self.parts:
            for network, variables in part.trained().items():
                trained[network] = variables
                optimizers[network] = getattr(self, part.optimizer_argument)
        return {network: (optimizers[network], v) for network, v in trained.items()}

    # --- inference -------------------------------------------------------------------------

    @property
    def metrics(self):
        return [*self.trackers.values(), self.rmse, self.probe_accuracy]

    def call(self, images, training=False):
        """Reconstructs `images` (B, H, W, C) in [-1, 1]; outside training through `sampler`,
        as `encode` and `decode` do."""
        encoder, decoder = (self.encoder, self.decoder) if training else self.sampler
        return decoder(encoder(images, training=training), training=training)

    @property
    def sampler(self) -> tuple[keras.Model, keras.Model]:
        """The encoder and decoder that inference uses: the moving averages when `ema` is on."""
        if self.ema_encoder is not None:
            return self.ema_encoder, self.ema_decoder
        return self.encoder, self.decoder

    def encode(self, images):
        """Images (B, H, W, C) in [-1, 1] -> latents (B, h, w, latent)."""
        return self.sampler[0](images, training=False)

    def decode(self, latents):
        """Latents (B, h, w, latent) -> images (B, H, W, C) in about [-1, 1]."""
        return self.sampler[1](latents, training=False)

    def probe_logits(self, images):
        """The latent probe's class logits (B, classes) for images (B, H, W, C), read from the
        latents it trains on: the encoder's own, not the moving average's."""
        return self.probe(self.encoder(images, training=False), training=False)

    def interpolate(self, images_a, images_b, t, *, path: str = "slerp"):
        """Decodes the walk between two batches of images at position(s) t.

        Returns (B, H, W, C) for a scalar t, (T, B, H, W, C) for a vector t.
        """
        return self.decode_path(self.encode(images_a), self.encode(images_b), t, path=path)

    def decode_path(self, za, zb, t, *, path: str = "slerp"):
        """Decodes the walk ("lerp" or "slerp") between two batches of latents at position(s)
        t: the one way to walk between latents.

        Returns (B, H, W, C) for a scalar t, (T, B, H, W, C) for a vector t.
        """
        z = walk(za, zb, t, path)
        if len(ops.shape(z)) == len(ops.shape(za)):
            return self.decode(z)
        steps = ops.shape(z)[0]
        flat = ops.reshape(z, (-1, *self.latent_shape))  # (T * B, h, w, latent)
        return ops.reshape(self.decode(flat), (steps, -1, *self.image_shape))

    # --- training --------------------------------------------------------------------------

    def draw_alpha(self, images):
        """One mixing coefficient in [0, 0.5] per image, (B, 1, 1, 1)."""
        batch = ops.shape(images)[0]
        return fold_alpha(keras.random.uniform((batch, 1, 1, 1), seed=self.seed_generator))

    def per_image_inputs(self, images: np.ndarray) -> dict:
        """{part name: rows per training photo} for the data pipeline to hand each step, from
        the parts that want them (the feature loss's maps of the photos)."""
        rows = {part.name: part.per_image(images) for part in self.parts}
        return {name: r for name, r in rows.items() if r is not None}

    def train_step(self, data):
        x, labels, *rest = data  # rest: {part name: its rows of the batch}, when the data has any
        per_image = rest[0] if rest else {}
        config = self.config
        alpha = self.draw_alpha(x)  # (B, 1, 1, 1)
        # Gradients from each replica are summed, so each replica's loss is scaled down.
        share = 1.0 / tf.distribute.get_strategy().num_replicas_in_sync
        trained = self._trained()
        with tf.GradientTape(persistent=True) as tape:
            z = self.encoder(x, training=True)  # (B, h, w, latent)
            x_hat = self.decoder(z, training=True)  # (B, H, W, C)
            z_mix = mix_latents(z, alpha, groups=self.mix_groups, path=config.mix)
            x_mix = self.decoder(z_mix, training=True)
            critic_mix = self.critic(x_mix, training=True)  # (B, 1)
            critic_real = self.critic(x_hat + config.reg * (x - x_hat), training=True)
            ae, mse, fool = autoencoder_loss(x, x_hat, critic_mix, advweight=config.advweight)
            critic, _, real = critic_loss(critic_mix, critic_real, ops.reshape(alpha, (-1, 1)))
            logits = self.probe(ops.stop_gradient(z), training=True)
            probe = ops.mean(
                keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
            )
            losses = {"autoencoder": ae, "critic": critic, "probe": probe}
            reported = {"loss_ae": mse, "loss_ae_critic": fool, "loss_critic": critic}
            reported.update(loss_critic_real=real, loss_probe=probe)
            for part in self.parts:
                step = Step(
                    x=x,
                    x_hat=x_hat,
                    x_mix=x_mix,
                    alpha=alpha,
                    groups=self.mix_groups,
                    per_image=per_image.get(part.name),
                )
                own = part.optimizer_argument
                terms = part.terms(step, optimizer=getattr(self, own) if own else None)
                for network, term in terms.losses.items():
                    losses[network] = losses.get(network, 0.0) + term
                reported.update(terms.reported)
            scaled = {
                network: trained[network][0].scale_loss(loss * share)
                for network, loss in losses.items()
            }
        for network, loss in scaled.items():
            optimizer, variables = trained[network]
            optimizer.apply(tape.gradient(loss, variables), variables)
        del tape
        for part in self.parts:
            part.after_step(self.step)
        self.step.assign_add(1)
        for name, tracker in self.trackers.items():
            tracker.update_state(reported[name])
        self.rmse.update_state(mse)
        self.probe_accuracy.update_state(labels, logits)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        x, labels = data
        x_hat = self.decode(self.encode(x))
        per_image = ops.mean(ops.square(x - x_hat), axis=(1, 2, 3))
        self.rmse.update_state(per_image)
        self.probe_accuracy.update_state(labels, self.probe_logits(x))
        return {m.name: m.result() for m in (self.rmse, self.probe_accuracy)}


def strips(model: ACAI, a, b, ts, paths=PATHS) -> dict[str, np.ndarray]:
    """Walks from each image of `a` to its partner in `b`, the two photos at the ends: what the
    sample grids, the report, the demo and `acai interpolate` draw.

    Args:
      model: the ACAI model.
      a, b: float images (B, H, W, C) in [-1, 1].
      ts: the positions (T,) in [0, 1] to decode at.
      paths: the walks to take, "lerp" and/or "slerp".

    Returns:
      {path: (B, T + 2, H, W, C) float32}: a, the decoded walk, b.
    """
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    za, zb = model.encode(a), model.encode(b)
    ts = np.asarray(ts, np.float32)
    out = {}
    for path in paths:
        decoded = np.asarray(model.decode_path(za, zb, ts, path=path)).swapaxes(0, 1)
        out[path] = np.concatenate([a[:, None], decoded, b[:, None]], axis=1)
    return out


def build(
    config: Config,
    *,
    image_shape,
    num_classes: int,
    precision: str,
    jit: bool = False,
    steps_per_execution: int = 1,
    feature_extractor: keras.Model | None = None,
) -> ACAI:
    """The ACAI model of `config`, compiled with the config's optimizers.

    Args:
      config: the run's settings.
      image_shape: (H, W, C) of the data.
      num_classes: the data's classes, for the latent probe.
      precision: a resolved Keras dtype policy name (not "auto").
      jit: compile the train step with XLA.
      steps_per_execution: training steps per call into the compiled function.
      feature_extractor: as for `ACAI`.

    Returns:
      The compiled model, its optimizer slots created (so a checkpoint can restore into them).
    """
    model = ACAI(
        config,
        image_shape=image_shape,
        num_classes=num_classes,
        policy=precision,
        feature_extractor=feature_extractor,
    )
    model.compile(jit_compile=jit, steps_per_execution=steps_per_execution)
    model.build_optimizers()
    return model


def _config_from_arguments(arguments: dict) -> Config:
    """The Config of an ACAI saved with its settings as keyword arguments (before 0.2), taking
    them out of `arguments`."""
    image_shape = arguments.get("image_shape", (32, 32, 3))
    fields = {"latent_width": image_shape[0] >> arguments.pop("scales", 3)}
    for name in (
        "depth latent advdepth advweight reg discweight disc_loss disc_r1 disc_depth seed ema mix"
    ).split():
        if name in arguments:
            fields[name] = arguments.pop(name)
    return Config(**fields)


class _Untracked:
    """Holds a value where Keras and tf.train.Checkpoint do not look."""

    def __init__(self, value):
        self.value = value
