"""The math of ACAI's training step as small pure functions: mixing latents, the losses, the
moving average's decay."""

from __future__ import annotations

import tensorflow as tf
from keras import ops

from acai.core.walks import lerp_rows, slerp_rows


def fold_alpha(u):
    """Maps uniform draws in [0, 1] to mixing coefficients in [0, 0.5]."""
    return 0.5 - ops.abs(u - 0.5)  # the mix is symmetric, so alpha > 0.5 adds nothing


def mix_latents(z, alpha, *, groups: int = 1, path: str = "lerp"):
    """Mixes each latent with its partner in the reversed batch, alpha of the way from the
    partner to z: alpha * z + (1 - alpha) * z[::-1] for lerp, or along the great circle.

    Args:
      z: latents (B, ...).
      alpha: coefficients (B, 1, ..., 1), one per latent.
      groups: reverse within each of this many equal, consecutive slices of the batch instead.
        Under data parallelism each replica reverses its own slice, so `groups` = the number of
        replicas reproduces a distributed step on one device.
      path: "lerp" (the paper) or "slerp" (`slerp`, per latent).
    """
    if groups == 1:
        partner = ops.flip(z, axis=0)
    else:
        shape = ops.shape(z)
        grouped = ops.reshape(z, (groups, -1, *shape[1:]))  # (groups, B / groups, ...)
        partner = ops.reshape(ops.flip(grouped, axis=1), shape)
    shape = ops.shape(z)
    t = ops.cast(ops.reshape(alpha, (-1, 1)), "float32")  # (B, 1)
    a = ops.cast(ops.reshape(partner, (shape[0], -1)), "float32")  # (B, D)
    b = ops.cast(ops.reshape(z, (shape[0], -1)), "float32")
    rows = slerp_rows if path == "slerp" else lerp_rows
    return ops.cast(ops.reshape(rows(a, b, t), shape), z.dtype)


def restore_contrast(blends, ends, alpha, *, groups: int = 1):
    """Pixel blends of pairs with their contrast put back, as the strongest one-line baseline
    does (`acai.pegasi.baselines.contrast_restored`): per image and colour channel, each blend's
    deviations from its own mean are scaled so that its standard deviation is the same mix of
    its two ends' standard deviations. Clipped to [-1, 1].

    Args:
      blends: `mix_latents(ends, alpha, groups=groups, path="lerp")`, (B, H, W, C).
      ends: the images that were blended, (B, H, W, C) in [-1, 1].
      alpha, groups: as given to `mix_latents`.

    Returns:
      (B, H, W, C), in the blends' dtype.
    """
    blends32, ends32 = ops.cast(blends, "float32"), ops.cast(ends, "float32")
    axes = (1, 2)
    mean = ops.mean(blends32, axis=axes, keepdims=True)
    spread = ops.std(blends32, axis=axes, keepdims=True)
    wanted = mix_latents(ops.std(ends32, axis=axes, keepdims=True), alpha, groups=groups)
    gain = ops.where(spread > 1e-6, wanted / ops.maximum(spread, 1e-6), 1.0)
    restored = ops.clip(mean + (blends32 - mean) * gain, -1.0, 1.0)
    return ops.cast(restored, blends.dtype)


def autoencoder_loss(x, x_hat, critic_mix, *, advweight: float):
    """The autoencoder's loss: reconstruction MSE plus advweight * the critic's squared guess.

    Args:
      x: the real images (B, H, W, C).
      x_hat: their reconstructions.
      critic_mix: the critic's predicted alpha for the decoded interpolants, (B, 1).
      advweight: the paper's lambda; 0 gives the plain autoencoder.

    Returns:
      (total loss, reconstruction MSE, mean squared critic output), each a scalar.
    """
    mse = ops.mean(ops.square(x - x_hat))
    fool = ops.mean(ops.square(critic_mix))  # the decoder wants the critic to answer 0
    if not advweight:  # 0 * fool would still send a gradient of zeros back through the critic
        return mse, mse, fool
    return mse + advweight * fool, mse, fool


def feature_distance(features_x, features_y):
    """The mean over layers of the mean squared difference of two lists of activation maps.

    Args:
      features_x, features_y: equally long lists of tensors, pairwise of one shape.

    Returns:
      A scalar: 0 for identical activations.
    """
    terms = [
        ops.mean(ops.square(ops.cast(a, "float32") - ops.cast(b, "float32")))
        for a, b in zip(features_x, features_y, strict=True)
    ]
    return ops.mean(ops.stack(terms))


def critic_loss(critic_mix, critic_real, alpha):
    """The critic's loss: regress alpha on interpolants, answer 0 on (nearly) real images.

    Args:
      critic_mix: the critic's output for the decoded interpolants, (B, 1).
      critic_real: its output for x_hat + reg * (x - x_hat), (B, 1).
      alpha: the true mixing coefficients, (B, 1).

    Returns:
      (total loss, alpha regression term, real-image term), each a scalar.
    """
    regress = ops.mean(ops.square(critic_mix - alpha))
    real = ops.mean(ops.square(critic_real))
    return regress + real, regress, real


def realism_losses(real_logits, fake_logits, kind: str = "nonsaturating"):
    """The GAN losses of a discriminator that tells real images from decoded ones.

    Args:
      real_logits: the discriminator's logits for real images, (B, 1).
      fake_logits: its logits for decoded images (reconstructions and interpolants), (B', 1).
      kind: "nonsaturating": softplus(-real) + softplus(fake) for the discriminator and
        softplus(-fake) for the decoder; "hinge": relu(1 - real) + relu(1 + fake) and -fake.

    Returns:
      (the discriminator's loss, the decoder's loss), each averaged over the images; the decoder
      wants its images called real.
    """
    if kind == "hinge":
        disc = ops.mean(ops.relu(1.0 - real_logits)) + ops.mean(ops.relu(1.0 + fake_logits))
        return disc, -ops.mean(fake_logits)
    real_term = ops.mean(ops.softplus(-real_logits))
    fake_term = ops.mean(ops.softplus(fake_logits))
    return real_term + fake_term, ops.mean(ops.softplus(-fake_logits))


def r1_penalty(score, images, *, scale=1.0):
    """The R1 penalty (Mescheder et al., 2018): the mean over images of the squared norm of
    the gradient of `score` (a discriminator) with respect to each real image.

    Differentiable again: under an outer GradientTape the penalty's gradient reaches the
    discriminator's weights (the gradient of a gradient).

    Args:
      score: a function (B, H, W, C) -> (B, 1), the discriminator's logits.
      images: real images (B, H, W, C), float32.
      scale: the inner gradient is taken of the logits times `scale` and divided by it
        afterwards, as a loss scale does, so that float16 layers do not flush it to zero.

    Returns:
      (the penalty, a scalar; the logits score(images), (B, 1)).
    """
    images = tf.convert_to_tensor(images)
    scale = ops.cast(scale, "float32")
    with tf.GradientTape() as tape:
        tape.watch(images)
        logits = score(images)
        total = ops.sum(ops.cast(logits, "float32")) * scale
    grads = ops.cast(tape.gradient(total, images), "float32") / scale
    return ops.mean(ops.sum(ops.square(grads), axis=(1, 2, 3))), logits


def ema_decay(decay, step):
    """The moving average's decay at training step `step`: `decay`, but lower early on, so the
    average is not dominated by the initial weights ((1 + step) / (10 + step), as in
    tf.train.ExponentialMovingAverage with num_updates)."""
    step = ops.cast(step, "float32")
    return ops.minimum(decay, (1.0 + step) / (10.0 + step))


def rmse_255(mse):
    """Root mean squared error on the 0-255 pixel scale, from the MSE on [-1, 1]."""
    return ops.sqrt(mse) * 127.5
