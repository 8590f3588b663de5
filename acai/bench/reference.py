"""The bench's yardstick: an ACAI train step as a user would write it in plain Keras 3."""

from __future__ import annotations

import keras
import tensorflow as tf

from acai.core import networks
from acai.core.config import Config
from acai.core.losses import feature_distance, fold_alpha, mix_latents


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
    it: Keras' own layers (`keras.layers.Conv2D` and `LeakyReLU`, not those of
    `acai.core.networks`), a decoder call for the reconstructions and another for the mixes, a
    critic call for the interpolants and another for the regularised reconstructions, three Adam
    optimizers, one
    `tf.function`. With `feature_extractor` (`untrained_feature_extractor`) the autoencoder's
    loss adds the feature loss, and with `config.ema` the step updates a moving average of the
    encoder's and decoder's weights; the realism discriminator (`discweight`) and the critic's
    dissolves (`critic_dissolves`) are left out.

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
    critic = networks.critic(image_shape, depth=config.critic_depth, latent=config.latent, **shape)
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
        alpha = fold_alpha(tf.random.uniform((tf.shape(x)[0], 1, 1, 1)))
        with tf.GradientTape(persistent=True) as tape:
            z = encoder(x, training=True)
            x_hat = decoder(z, training=True)
            x_mix = decoder(mix_latents(z, alpha, path=config.mix), training=True)
            critic_mix = critic(x_mix, training=True)
            critic_real = critic(x_hat + config.reg * (x - x_hat), training=True)
            loss_ae = tf.reduce_mean(tf.square(x - x_hat)) + config.advweight * tf.reduce_mean(
                tf.square(critic_mix)
            )
            if feature_extractor is not None:
                loss_ae += config.perceptual * feature_distance(
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
