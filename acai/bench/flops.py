"""How much arithmetic a training image takes, counted from the networks' layers."""

from __future__ import annotations

import keras

from acai.core.model import ACAI


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


def flops_per_image(model: ACAI) -> int:
    """FLOPs of one training image, forward and backward, as `acai bench` counts them.

    2 FLOPs per multiply-add (`multiply_adds`). Per image the step runs the encoder once, the
    decoder twice (reconstruction and mix), the critic twice (interpolant and regularised
    reconstruction), the probe once and a discriminator, where there is one, three times (real,
    reconstruction and mix), and the critic once more on pixel blends where `critic_dissolves`
    shows it them. A backward pass costs twice its forward pass (gradients of the
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
    if model.part("dissolves") is not None:
        forward += critic
    if model.discriminator is not None:
        disc = multiply_adds(model.discriminator)
        forward += 3 * disc
    second_input_gradients = (critic if model.config.advweight else 0) + 2 * disc
    if model.discriminator is not None and model.config.disc_r1:
        second_input_gradients += 3 * disc
    # The feature loss: the frozen extractor's forward pass on the reconstructions and the
    # gradient of their input only; the photos' maps come with the data, computed once
    # (`acai.core.parts.FeatureLoss.per_image`), as `synthetic_data` and the trainer do.
    feature_loss = model.part("features")
    features = 2 * multiply_adds(feature_loss.extractor) if feature_loss else 0
    return 2 * (3 * forward + second_input_gradients + features)
