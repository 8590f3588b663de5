"""The optional parts of an ACAI model, none of them in the paper: a feature loss, a realism
discriminator, a critic also shown dissolves, a moving average of the autoencoder's weights.

A part owns its networks (the model keeps them as attributes under the names returned by
`networks`, where checkpoints and .keras files have always found them), its optimizer if it
trains a network, the names of the losses it reports, and its loss terms. In each training step
`ACAI.train_step` asks every part for `Terms`: what it adds to the loss of each network, by
that network's name ("autoencoder", or the part's own), and what it reports.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from acai.core import networks
from acai.core.config import Config
from acai.core.losses import (
    ema_decay,
    feature_distance,
    mix_latents,
    r1_penalty,
    realism_losses,
    restore_contrast,
)
from acai.images import in_batches, to_float

# The most memory the feature loss's maps of the training photos may take to be computed once
# (`FeatureLoss.per_image`): horses and birds in float32 (about 2.2 GB) fit, all ten classes not.
FEATURE_CACHE_BYTES = 3 << 30


@dataclasses.dataclass(frozen=True)
class Step:
    """What one training step has computed that a part's loss may need."""

    x: tf.Tensor  # the photos (B, H, W, C) in [-1, 1]
    x_hat: tf.Tensor  # their reconstructions
    x_mix: tf.Tensor  # the decoded mixes
    alpha: tf.Tensor  # their mixing coefficients (B, 1, 1, 1) in [0, 0.5]
    groups: int = 1  # the batch's pairs are reversed within this many slices (`mix_latents`)
    per_image: object = None  # the part's own rows of the data (`Part.per_image`), if any


@dataclasses.dataclass
class Terms:
    """A part's contribution to one step: loss terms by network name, and values to report."""

    losses: dict
    reported: dict


class Part:
    """An optional piece of the training objective; see the module's docstring."""

    name = ""
    reports: tuple[str, ...] = ()  # the names of the values `terms` reports
    optimizer_argument = None  # the compile() argument that sets its optimizer, if it has one

    def networks(self) -> dict[str, keras.Model]:
        """Its networks, by the attribute name the model keeps each under."""
        return {}

    def trained(self) -> dict[str, list]:
        """{the network name its optimizer updates: the variables}; empty without an optimizer."""
        return {}

    def make_optimizer(self):
        """Its optimizer, as the run's config sets it (only for parts that train a network)."""
        raise NotImplementedError

    def terms(self, step: Step, *, optimizer=None) -> Terms:
        return Terms({}, {})

    def per_image(self, images: np.ndarray):
        """Rows per training photo that the data pipeline should hand its `terms`, or None."""
        return None

    def after_step(self, step_count) -> None:
        """Runs after the optimizers have updated the weights."""
        # A body of a docstring alone is one AutoGraph cannot convert inside train_step.
        return None


class FeatureLoss(Part):
    """weight * `feature_distance` between a frozen network's activations on the photos and on
    their reconstructions, added to the autoencoder's loss.

    The network (`acai.training.features.feature_extractor`) is neither in the model's config
    nor in its weights: a run loads and exports without it, and only training passes it.
    """

    name = "features"
    reports = ("loss_ae_features",)

    def __init__(self, extractor: keras.Model, weight: float):
        self.extractor, self.weight = extractor, weight

    def terms(self, step: Step, *, optimizer=None) -> Terms:
        known = step.per_image  # the photos' maps, when the pipeline brings them
        photos = known if known is not None else self.extractor(step.x, training=False)
        distance = feature_distance(photos, self.extractor(step.x_hat, training=False))
        return Terms({"autoencoder": self.weight * distance}, {"loss_ae_features": distance})

    def per_image(self, images: np.ndarray, *, limit_bytes: int = FEATURE_CACHE_BYTES):
        """The extractor's maps of every training photo, computed once: training does not
        augment, so a photo's maps never change, and the step runs the extractor on the
        reconstructions only.

        Args:
          images: uint8 (N, H, W, C), the training photos.
          limit_bytes: the most memory the maps may take.

        Returns:
          One tensor per map, (N, ...) in the extractor's compute dtype (tensors, so that the
          pipeline keeps them without a second copy), or None when they would take more than
          `limit_bytes` (the step then computes them itself).
        """
        itemsize = tf.as_dtype(self.extractor.outputs[0].dtype).size
        per_photo = sum(int(np.prod(o.shape[1:])) for o in self.extractor.outputs) * itemsize
        if per_photo * len(images) > limit_bytes:
            return None
        run = tf.function(lambda x: self.extractor(to_float(x), training=False))
        return in_batches(run, images, join=tf.concat)


class Realism(Part):
    """A discriminator (the critic's architecture, its own weights and Adam) that tells real
    photos from reconstructions and decoded mixes (with `disc_fakes="mixes"`, from decoded
    mixes only); the autoencoder adds `discweight` times its GAN loss, and with `disc_r1` the
    discriminator gamma / 2 times the R1 penalty."""

    name = "realism"
    optimizer_argument = "disc_optimizer"

    def __init__(self, config: Config, image_shape, *, policy: str):
        self.config = config
        self.discriminator = networks.critic(
            image_shape,
            depth=config.disc_depth or config.critic_depth,
            latent=config.latent,
            scales=config.scales,
            dtype=policy,
            name="discriminator",
        )
        self.reports = ("loss_ae_disc", "loss_disc") + (("loss_disc_r1",) if config.disc_r1 else ())

    def networks(self) -> dict[str, keras.Model]:
        return {"discriminator": self.discriminator}

    def trained(self) -> dict[str, list]:
        return {"discriminator": self.discriminator.trainable_variables}

    def make_optimizer(self):
        """Adam with its own rate (0: the run's), on the run's schedule, and betas, by default a
        GAN's short memory of past gradients (beta_1 0.5)."""
        c = self.config
        rate = networks.learning_rate(c, c.disc_lr or c.lr)
        return networks.FusedAdam(rate, beta_1=c.disc_beta1, beta_2=c.disc_beta2)

    def _score(self, images):
        return self.discriminator(images, training=True)

    def terms(self, step: Step, *, optimizer=None) -> Terms:
        score = self._score
        if self.config.disc_fakes == "mixes":
            fakes = step.x_mix  # (B, H, W, C)
        else:
            fakes = ops.concatenate([step.x_hat, step.x_mix], axis=0)  # (2B, H, W, C)
        reported = {}
        if self.config.disc_r1:
            # Under mixed_float16 the inner gradient takes the discriminator's loss scale.
            loss_scale = optimizer.scale_loss(ops.ones((), "float32"))
            penalty, real_logits = r1_penalty(score, step.x, scale=loss_scale)
            reported["loss_disc_r1"] = penalty
        else:
            penalty, real_logits = 0.0, score(step.x)
        disc, fool = realism_losses(real_logits, score(fakes), kind=self.config.disc_loss)
        reported.update(loss_ae_disc=fool, loss_disc=disc)
        losses = {
            "autoencoder": self.config.discweight * fool,
            "discriminator": disc + 0.5 * self.config.disc_r1 * penalty,
        }
        return Terms(losses, reported)


class Dissolves(Part):
    """The critic also shown dissolves: pixel blends alpha * r + (1 - alpha) * r' of each
    reconstruction r and its partner's r' (the pairs and alphas of the step's decoded mixes),
    trained to read alpha, weighted by `weight`, beside the paper's loss.

    A ghosted double image then reads as a mix, so the autoencoder's adversarial term, which
    wants its decoded mixes read as 0, pushes them away from blending their ends. The blends
    are made of reconstructions with their gradient stopped: the term trains the critic only.
    """

    name = "dissolves"
    reports = ("loss_critic_dissolves",)

    def __init__(self, critic: keras.Model, weight: float):
        self.critic, self.weight = critic, weight  # the model's own critic, not a copy

    def blends(self, step: Step):
        """The decoded mixes' pixel twins: the same pairing and alphas, lerped in pixels."""
        reconstructions = ops.stop_gradient(step.x_hat)
        return mix_latents(reconstructions, step.alpha, groups=step.groups, path="lerp")

    def terms(self, step: Step, *, optimizer=None) -> Terms:
        guess = self.critic(self.blends(step), training=True)  # (B, 1)
        loss = ops.mean(ops.square(guess - ops.reshape(step.alpha, (-1, 1))))
        return Terms({"critic": self.weight * loss}, {self.reports[0]: loss})


class ContrastDissolves(Dissolves):
    """The same as `Dissolves`, with each blend's contrast put back (`restore_contrast`).

    A plain blend of two photos has about 0.7 of their contrast, so a critic shown only those
    can read a mix from its flat contrast alone, and decoded mixes escape it by keeping their
    contrast while still showing both ends through each other, as the contrast-restored
    cross-fade does. Shown these, the critic has to read the ghosting itself.
    """

    name = "dissolves_contrast"
    reports = ("loss_critic_dissolves_contrast",)

    def blends(self, step: Step):
        ends = ops.stop_gradient(step.x_hat)
        return restore_contrast(super().blends(step), ends, step.alpha, groups=step.groups)


class MovingAverage(Part):
    """A moving average of the encoder's and decoder's weights (decay `ema`), kept as a second
    encoder and decoder that encoding, decoding, evaluation and export use instead."""

    name = "moving_average"

    def __init__(self, decay: float, encoder: keras.Model, decoder: keras.Model, copies):
        self.decay = decay
        self.pairs = ((copies[0], encoder), (copies[1], decoder))  # (average, network)
        for average, network in self.pairs:
            average.trainable = False
            average.set_weights(network.get_weights())

    def networks(self) -> dict[str, keras.Model]:
        return {"ema_encoder": self.pairs[0][0], "ema_decoder": self.pairs[1][0]}

    def after_step(self, step_count) -> None:
        """average <- decay * average + (1 - decay) * weight, on every replica."""
        networks.update_moving_averages(
            [
                (average_weight, weight)
                for average, network in self.pairs
                for average_weight, weight in zip(average.weights, network.weights)
            ],
            ema_decay(self.decay, step_count),
        )
