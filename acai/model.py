"""`ACAI(keras.Model)`: the autoencoder, critic and latent probe, trained with `acai.losses`."""

from __future__ import annotations

import inspect

import keras
import tensorflow as tf
from keras import ops

from acai import networks
from acai.config import Config
from acai.losses import (  # noqa: F401 (re-exported: acai.model.slerp and the rest)
    autoencoder_loss,
    critic_loss,
    ema_decay,
    feature_distance,
    fold_alpha,
    lerp,
    mix_latents,
    r1_penalty,
    realism_losses,
    rmse_255,
    slerp,
)
from acai.networks import FusedAdam


class Rmse255(keras.metrics.Mean):
    """Averages per-image squared errors and reports their root on the 0-255 scale."""

    def result(self):
        return rmse_255(super().result())


# --- the model -------------------------------------------------------------------------------


OPTIMIZERS = ("ae_optimizer", "critic_optimizer", "probe_optimizer")  # compile()'s arguments
DISC_OPTIMIZER = "disc_optimizer"  # compile()'s fourth, for a model with a discriminator


@keras.saving.register_keras_serializable(package="acai")
class ACAI(keras.Model):
    """An adversarially constrained autoencoder with its critic and latent probe."""

    def __init__(
        self,
        *,
        image_shape=(32, 32, 3),
        num_classes: int = 10,
        depth: int = 64,
        latent: int = 16,
        scales: int = 3,
        advdepth: int = 0,
        advweight: float = 0.5,
        reg: float = 0.2,
        discweight: float = 0.0,
        disc_loss: str = "nonsaturating",
        disc_r1: float = 0.0,
        disc_depth: int = 0,
        policy: str = "float32",
        seed: int = 0,
        mix_groups: int = 1,
        ema: float = 0.0,
        mix: str = "lerp",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.image_shape = tuple(image_shape)  # every argument is kept: see get_config
        self.num_classes = num_classes
        self.depth, self.latent, self.scales = depth, latent, scales
        self.advdepth, self.advweight, self.reg = advdepth, advweight, reg
        self.discweight, self.disc_loss = discweight, disc_loss
        self.disc_r1, self.disc_depth = disc_r1, disc_depth
        self.policy, self.seed, self.ema = policy, seed, ema
        self.mix_groups = mix_groups  # see mix_latents; 1 = the whole (per-replica) batch
        self.mix = mix  # the latent path training mixes along: "lerp" or "slerp"
        size = self.image_shape[0] >> scales
        self.latent_shape = (size, size, latent)

        self._build_networks()
        self.seed_generator = keras.random.SeedGenerator(seed)
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
        if self.discriminator is not None:
            names += ["loss_ae_disc", "loss_disc"] + (["loss_disc_r1"] if disc_r1 else [])
        self.trackers = {name: keras.metrics.Mean(name=name) for name in names}
        self.rmse = Rmse255(name="rmse")
        self.probe_accuracy = keras.metrics.SparseCategoricalAccuracy(name="probe_accuracy")
        self._feature_loss = None  # see use_feature_loss
        self.built = True

    def _autoencoder(self, prefix: str = "") -> tuple[keras.Model, keras.Model]:
        """A fresh encoder and decoder of this model's shape, their names prefixed."""
        shape = {"depth": self.depth, "scales": self.scales, "dtype": self.policy}
        return (
            networks.encoder(
                self.image_shape, latent=self.latent, name=f"{prefix}encoder", **shape
            ),
            networks.decoder(
                self.latent_shape,
                colors=self.image_shape[-1],
                name=f"{prefix}decoder",
                **shape,
            ),
        )

    def _build_networks(self) -> None:
        """The encoder, decoder, critic and probe; the discriminator and the moving averages
        when `discweight` and `ema` ask for them."""
        self.encoder, self.decoder = self._autoencoder()
        critic_shape = {
            "depth": self.advdepth or self.depth,
            "latent": self.latent,
            "scales": self.scales,
            "dtype": self.policy,
        }
        self.critic = networks.critic(self.image_shape, **critic_shape)
        self.probe = networks.probe(self.latent_shape, num_classes=self.num_classes)
        # Off by default (not in the paper): a realism discriminator, the critic's architecture
        # with its own weights, real photos against reconstructions and interpolants.
        self.discriminator = None
        if self.discweight:
            disc_shape = {**critic_shape, "depth": self.disc_depth or critic_shape["depth"]}
            self.discriminator = networks.critic(
                self.image_shape, name="discriminator", **disc_shape
            )
        # Off by default (not in the paper): a moving average of the autoencoder's weights, a
        # second encoder and decoder that encode, decode and interpolate use instead.
        self.ema_encoder = self.ema_decoder = None
        if self.ema:
            self.ema_encoder, self.ema_decoder = self._autoencoder("ema_")
            for average, net in self._averaged():
                average.trainable = False
                average.set_weights(net.get_weights())

    def get_config(self):
        """Keras' config and every argument of `__init__`, each kept as the attribute of its
        name."""
        names = inspect.signature(ACAI.__init__).parameters.keys() - {"self", "kwargs"}
        return {**super().get_config(), **{name: getattr(self, name) for name in names}}

    def use_feature_loss(self, extractor: keras.Model, weight: float) -> None:
        """Adds weight * `feature_distance` between the activations `extractor` gives for the
        images and for their reconstructions to the autoencoder's loss (tracked as
        loss_ae_features). Call before training; the extractor stays frozen, and is neither part
        of the model's config nor of its weights, so a run loads and exports without it."""
        self._feature_loss = _Untracked(extractor, weight)
        self.trackers["loss_ae_features"] = keras.metrics.Mean(name="loss_ae_features")

    @property
    def feature_extractor(self) -> keras.Model | None:
        """The feature loss's frozen extractor (`use_feature_loss`), or None."""
        return self._feature_loss.extractor if self._feature_loss is not None else None

    def compile(
        self, *, ae_optimizer, critic_optimizer, probe_optimizer, disc_optimizer=None, **kwargs
    ):
        """Sets one optimizer per network; the autoencoder's is also `model.optimizer`.

        A model with a discriminator (discweight > 0) needs `disc_optimizer` too. Under the
        mixed_float16 policy each optimizer is wrapped in a LossScaleOptimizer.
        """
        if (disc_optimizer is None) != (self.discriminator is None):
            needs = "needs" if self.discriminator is not None else "has no discriminator for"
            raise ValueError(
                f"this ACAI model (discweight={self.discweight}) {needs} a disc_optimizer"
            )
        given = dict(
            ae_optimizer=ae_optimizer,
            critic_optimizer=critic_optimizer,
            probe_optimizer=probe_optimizer,
            disc_optimizer=disc_optimizer,
        )
        wrap = self.policy == "mixed_float16"
        for name, o in given.items():
            if wrap and o is not None and not isinstance(o, keras.optimizers.LossScaleOptimizer):
                o = keras.optimizers.LossScaleOptimizer(o)
            setattr(self, name, o)
        super().compile(optimizer=self.ae_optimizer, **kwargs)

    @property
    def optimizer_names(self) -> tuple[str, ...]:
        """compile()'s optimizer arguments this model uses: OPTIMIZERS, and DISC_OPTIMIZER with a
        discriminator."""
        return OPTIMIZERS + ((DISC_OPTIMIZER,) if self.discriminator is not None else ())

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
        for optimizer, variables in self._optimized():
            optimizer.build(variables)

    def _optimized(self):
        ae_vars = self.encoder.trainable_variables + self.decoder.trainable_variables
        pairs = [
            (self.ae_optimizer, ae_vars),
            (self.critic_optimizer, self.critic.trainable_variables),
            (self.probe_optimizer, self.probe.trainable_variables),
        ]
        if self.discriminator is not None:
            pairs.append((self.disc_optimizer, self.discriminator.trainable_variables))
        return pairs

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

    def interpolate(self, images_a, images_b, t, *, spherical: bool = True):
        """Decodes the latent path between two batches of images at position(s) t.

        Returns (B, H, W, C) for a scalar t, (T, B, H, W, C) for a vector t.
        """
        return self.decode_path(
            self.encode(images_a), self.encode(images_b), t, spherical=spherical
        )

    def decode_path(self, za, zb, t, *, spherical: bool = True):
        """Decodes the path between two batches of latents at position(s) t: the one way to
        walk between latents (interpolate, pegasi, the sample grids).

        Returns (B, H, W, C) for a scalar t, (T, B, H, W, C) for a vector t.
        """
        z = (slerp if spherical else lerp)(za, zb, t)
        if len(ops.shape(z)) == len(ops.shape(za)):
            return self.decode(z)
        steps = ops.shape(z)[0]
        flat = ops.reshape(z, (-1, *self.latent_shape))  # (T * B, h, w, latent)
        return ops.reshape(self.decode(flat), (steps, -1, *self.image_shape))

    def draw_alpha(self, images):
        """One mixing coefficient in [0, 0.5] per image, (B, 1, 1, 1)."""
        batch = ops.shape(images)[0]
        return fold_alpha(keras.random.uniform((batch, 1, 1, 1), seed=self.seed_generator))

    def train_step(self, data):
        x, labels, *known = data  # known: the photos' feature maps, when the data brings them
        alpha = self.draw_alpha(x)  # (B, 1, 1, 1)
        # Gradients from each replica are summed, so each replica's loss is scaled down.
        share = 1.0 / tf.distribute.get_strategy().num_replicas_in_sync
        with tf.GradientTape(persistent=True) as tape:
            z = self.encoder(x, training=True)  # (B, h, w, latent)
            x_hat = self.decoder(z, training=True)  # (B, H, W, C)
            x_mix = self.decoder(
                mix_latents(z, alpha, groups=self.mix_groups, path=self.mix), training=True
            )
            critic_mix = self.critic(x_mix, training=True)  # (B, 1)
            critic_real = self.critic(x_hat + self.reg * (x - x_hat), training=True)
            ae_total, mse, fool = autoencoder_loss(x, x_hat, critic_mix, advweight=self.advweight)
            losses = {"loss_ae": mse, "loss_ae_critic": fool}
            if self._feature_loss is not None:
                extractor, weight = self._feature_loss.extractor, self._feature_loss.weight
                losses["loss_ae_features"] = feature_distance(
                    known[0] if known else extractor(x, training=False),
                    extractor(x_hat, training=False),
                )
                ae_total = ae_total + weight * losses["loss_ae_features"]
            critic_total, _, real = critic_loss(
                critic_mix, critic_real, ops.reshape(alpha, (-1, 1))
            )
            logits = self.probe(ops.stop_gradient(z), training=True)
            probe_total = ops.mean(
                keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
            )
            totals = [ae_total, critic_total, probe_total]
            if self.discriminator is not None:
                disc_total, fool_disc = self._realism(x, x_hat, x_mix, losses)
                totals[0] = ae_total + self.discweight * fool_disc
                totals.append(disc_total)
            scaled = [o.scale_loss(t * share) for (o, _), t in zip(self._optimized(), totals)]
        for (optimizer, variables), loss in zip(self._optimized(), scaled):
            optimizer.apply(tape.gradient(loss, variables), variables)
        del tape
        if self.ema_encoder is not None:
            self._update_averages(ema_decay(self.ema, self.step))
        self.step.assign_add(1)
        losses.update(loss_critic=critic_total, loss_critic_real=real, loss_probe=probe_total)
        for name, tracker in self.trackers.items():
            tracker.update_state(losses[name])
        self.rmse.update_state(mse)
        self.probe_accuracy.update_state(labels, logits)
        return {m.name: m.result() for m in self.metrics}

    def _realism(self, x, x_hat, x_mix, losses: dict):
        """The discriminator's loss and the decoder's, real photos against reconstructions and
        interpolants; with `disc_r1` the discriminator's loss adds gamma / 2 times the R1
        penalty on the photos. Records them in `losses`."""
        score = lambda images: self.discriminator(images, training=True)  # noqa: E731
        fakes = ops.concatenate([x_hat, x_mix], axis=0)  # (2B, H, W, C)
        r1 = 0.0
        if self.disc_r1:
            # Under mixed_float16 the inner gradient takes the discriminator's loss scale.
            loss_scale = self.disc_optimizer.scale_loss(ops.ones((), "float32"))
            r1, real_logits = r1_penalty(score, x, scale=loss_scale)
            losses["loss_disc_r1"] = r1
        else:
            real_logits = score(x)
        disc_total, fool = realism_losses(real_logits, score(fakes), kind=self.disc_loss)
        losses.update(loss_ae_disc=fool, loss_disc=disc_total)
        return disc_total + 0.5 * self.disc_r1 * r1, fool

    def _averaged(self):
        """(moving average, network) pairs."""
        return ((self.ema_encoder, self.encoder), (self.ema_decoder, self.decoder))

    def _update_averages(self, decay):
        """average <- decay * average + (1 - decay) * weight, once per step on every replica."""
        networks.update_moving_averages(
            [
                (average, weight)
                for averages, net in self._averaged()
                for average, weight in zip(averages.weights, net.weights)
            ],
            decay,
        )

    def test_step(self, data):
        x, labels = data
        z = self.encode(x)
        x_hat = self.decode(z)
        per_image = ops.mean(ops.square(x - x_hat), axis=(1, 2, 3))
        self.rmse.update_state(per_image)
        self.probe_accuracy.update_state(labels, self.probe_logits(x))
        return {m.name: m.result() for m in (self.rmse, self.probe_accuracy)}


class _Untracked:
    """Holds the feature loss's extractor where Keras and tf.train.Checkpoint do not look."""

    def __init__(self, extractor, weight: float):
        self.extractor, self.weight = extractor, weight


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
    """Builds and compiles the ACAI model of `config` with its three Adam optimizers
    (`FusedAdam`).

    Args:
      config: the run's settings.
      image_shape: (H, W, C) of the data.
      num_classes: the data's classes, for the latent probe.
      precision: a resolved Keras dtype policy name (not "auto").
      jit: compile the train step with XLA.
      steps_per_execution: training steps per call into the compiled function.
      feature_extractor: for training with `config.perceptual` on: the frozen activations of
        `config.perceptual_model` (`acai.features.feature_extractor`); models for inference
        need none.

    Returns:
      The compiled model, its optimizer slots created (so a checkpoint can restore into them).
    """
    model = ACAI(
        image_shape=image_shape,
        num_classes=num_classes,
        depth=config.depth,
        latent=config.latent,
        scales=config.scales,
        advdepth=config.advdepth,
        advweight=config.advweight,
        reg=config.reg,
        discweight=config.discweight,
        disc_loss=config.disc_loss,
        disc_r1=config.disc_r1,
        disc_depth=config.disc_depth,
        policy=precision,
        seed=config.seed,
        ema=config.ema,
        mix=config.mix,
    )
    if config.perceptual and feature_extractor is not None:
        model.use_feature_loss(feature_extractor, config.perceptual)
    model.compile(
        ae_optimizer=FusedAdam(config.lr),
        critic_optimizer=FusedAdam(config.lr),
        probe_optimizer=FusedAdam(config.lr),  # as the original code: one rate
        disc_optimizer=_disc_optimizer(config),
        jit_compile=jit,
        steps_per_execution=steps_per_execution,
    )
    model.build_optimizers()
    return model


def _disc_optimizer(config: Config) -> FusedAdam | None:
    """The realism discriminator's Adam, with its own rate and betas (by default a GAN's usual
    short memory of past gradients, beta_1 0.5), or None without one."""
    if not config.discweight:
        return None
    lr = config.disc_lr or config.lr
    return FusedAdam(lr, beta_1=config.disc_beta1, beta_2=config.disc_beta2)
