"""The encoder, decoder, critic and latent probe as functional Keras models."""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers

LEAK = 0.2  # LeakyReLU slope throughout, as in the paper


def _leaky_relu(slope: float):
    @tf.custom_gradient
    def leaky_relu(x):
        y = tf.nn.leaky_relu(x, slope)

        def grad(dy):  # y > 0 exactly where x > 0 (slope > 0), so the output can stand in for x
            return tf.raw_ops.LeakyReluGrad(gradients=dy, features=y, alpha=slope)

        return y, grad

    return leaky_relu


@keras.saving.register_keras_serializable(package="acai")
class LeakyReLU(layers.LeakyReLU):
    """Keras' LeakyReLU with a gradient that reads its output instead of its input.

    The same function and gradient; what changes is that nothing but the activation reads the
    convolution's biased output, so TensorFlow's graph optimizer fuses convolution, bias and
    activation into one kernel in training too (with Keras' own layer it tries, and gives up,
    because the gradient needs that output).
    """

    def __init__(self, negative_slope=LEAK, **kwargs):
        if negative_slope <= 0:
            raise ValueError(f"negative_slope must be positive here, not {negative_slope}")
        super().__init__(negative_slope=negative_slope, **kwargs)
        self._activation = _leaky_relu(float(negative_slope))

    def call(self, inputs):
        return self._activation(inputs)


def with_keras_layers(network: keras.Model) -> keras.Model:
    """The same network, weights included, built from Keras' own layers only (its LeakyReLU for
    ours), so that its .keras file loads with Keras alone."""

    def stock(layer):
        cls = layers.LeakyReLU if isinstance(layer, LeakyReLU) else layer.__class__
        return cls.from_config(layer.get_config())

    copy = keras.models.clone_model(network, clone_function=stock, recursive=True)
    copy.set_weights(network.get_weights())
    return copy


def _conv(filters: int, kernel: int, dtype, name: str) -> layers.Conv2D:
    # He-normal corrected for the leak: std = 1 / sqrt((1 + LEAK^2) * fan_in).
    init = keras.initializers.VarianceScaling(
        scale=1.0 / (1.0 + LEAK**2), mode="fan_in", distribution="untruncated_normal"
    )
    return layers.Conv2D(
        filters, kernel, padding="same", kernel_initializer=init, dtype=dtype, name=name
    )


def _conv_act(h, filters, dtype, name, activation):
    h = _conv(filters, 3, dtype, name)(h)
    return activation(LEAK, dtype=dtype, name=f"{name}_act")(h)


def encoder(
    image_shape=(32, 32, 3),
    *,
    depth: int,
    latent: int,
    scales: int,
    dtype="float32",
    name: str = "encoder",
    activation=LeakyReLU,
) -> keras.Model:
    """Builds the encoder: images in [-1, 1] -> latent grid.

    Args:
      image_shape: (H, W, C) of the images.
      depth: channels of the first level; level i has depth << i.
      latent: channels of the latent grid.
      scales: number of 2x down-sampling levels; the latent is (H >> scales, W >> scales).
      dtype: a Keras dtype policy name, e.g. "mixed_bfloat16"; the output is always float32.
      name: the model's name.
      activation: the LeakyReLU layer class; keras.layers.LeakyReLU computes the same, slower.

    Returns:
      A functional model (B, H, W, C) -> (B, H >> scales, W >> scales, latent).
    """
    x = keras.Input(image_shape, name="images")
    h = _conv(depth, 1, dtype, "stem")(x)  # (B, 32, 32, depth)
    for level in range(scales):
        h = _conv_act(h, depth << level, dtype, f"down{level}_a", activation)
        h = _conv_act(h, depth << level, dtype, f"down{level}_b", activation)
        h = layers.AveragePooling2D(2, dtype=dtype, name=f"pool{level}")(h)  # halves H and W
    h = _conv_act(h, depth << scales, dtype, "neck", activation)  # (B, h, w, depth << scales)
    h = _conv(latent, 3, dtype, "latent")(h)  # (B, H >> scales, W >> scales, latent)
    z = layers.Activation("linear", dtype="float32", name="to_float32")(h)
    return keras.Model(x, z, name=name)


def decoder(
    latent_shape,
    *,
    depth: int,
    colors: int,
    scales: int,
    dtype="float32",
    name: str = "decoder",
    activation=LeakyReLU,
) -> keras.Model:
    """Builds the decoder, the encoder's mirror image: latent grid -> images in about [-1, 1].

    Args:
      latent_shape: (h, w, latent) of the latent grid.
      depth: channels of the last level; level i has depth << i.
      colors: channels of the output images.
      scales: number of 2x up-sampling levels.
      dtype: a Keras dtype policy name; the output is always float32.
      name: the model's name.
      activation: the LeakyReLU layer class, as for `encoder`.

    Returns:
      A functional model (B, h, w, latent) -> (B, h << scales, w << scales, colors).
    """
    z = keras.Input(latent_shape, name="latents")
    h = z
    for level in reversed(range(scales)):
        h = _conv_act(h, depth << level, dtype, f"up{level}_a", activation)
        h = _conv_act(h, depth << level, dtype, f"up{level}_b", activation)
        h = layers.UpSampling2D(2, interpolation="nearest", dtype=dtype, name=f"grow{level}")(h)
    h = _conv_act(h, depth, dtype, "head", activation)  # (B, H, W, depth)
    h = _conv(colors, 3, dtype, "rgb")(h)  # (B, H, W, colors), no activation
    x = layers.Activation("linear", dtype="float32", name="to_float32")(h)
    return keras.Model(z, x, name=name)


def critic(
    image_shape=(32, 32, 3),
    *,
    depth: int,
    latent: int,
    scales: int,
    dtype="float32",
    name: str = "critic",
    activation=LeakyReLU,
) -> keras.Model:
    """Builds the critic: the encoder's architecture with its own weights, averaged to a scalar.

    Args:
      image_shape: (H, W, C) of the images.
      depth: the critic's first-level channels (the paper's advdepth).
      latent: channels of its last convolution.
      scales: number of down-sampling levels.
      dtype: a Keras dtype policy name; the output is always float32.
      name: the model's name.
      activation: the LeakyReLU layer class, as for `encoder`.

    Returns:
      A functional model (B, H, W, C) -> (B, 1), the predicted mixing coefficient alpha.
    """
    body = encoder(
        image_shape,
        depth=depth,
        latent=latent,
        scales=scales,
        dtype=dtype,
        name=f"{name}_body",
        activation=activation,
    )
    x = keras.Input(image_shape, name="images")
    h = layers.Flatten(name="flatten")(body(x))  # (B, h * w * latent)
    h = layers.Reshape((-1, 1), name="as_sequence")(h)  # (B, h * w * latent, 1)
    score = layers.GlobalAveragePooling1D(dtype="float32", name="mean")(h)  # (B, 1)
    return keras.Model(x, score, name=name)


def probe(latent_shape, *, num_classes: int, name: str = "probe") -> keras.Model:
    """Builds the latent probe: one dense layer from the flattened latent to class logits."""
    z = keras.Input(latent_shape, name="latents")
    logits = layers.Dense(num_classes, dtype="float32", name="logits")(layers.Flatten()(z))
    return keras.Model(z, logits, name=name)
