"""The encoder, decoder, critic and latent probe as functional Keras models, and the fused Adam
that trains them."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

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


def _neighbourhood_indices(height: int, width: int, offsets) -> np.ndarray:
    """For each pixel of a (height, width) map, the flat indices of its 3x3 neighbourhood in the
    map padded by one pixel all round: (height * width * 9,), the neighbourhood row-major."""
    rows = np.arange(height)[:, None, None, None] + np.asarray(offsets)[None, None, :, None]
    cols = np.arange(width)[None, :, None, None] + np.asarray(offsets)[None, None, None, :]
    return (rows * (width + 2) + cols).reshape(-1).astype(np.int32)


def conv3x3_kernel_grad(x, dy):
    """The gradient of a 3x3, stride-1, "same" convolution's kernel, as one matrix product.

    The 3x3 neighbourhoods of whichever of x and dy has fewer channels are gathered side by side
    (im2col) and multiplied with the other: (9 * C, B * H * W) @ (B * H * W, F) when C <= F, else
    (C, B * H * W) @ (B * H * W, 9 * F). The sum is the one Conv2DBackpropFilter takes; on small
    maps oneDNN's bfloat16 kernel for it runs at a fraction of its matrix product's speed.

    Args:
      x: the convolution's input, (B, H, W, C).
      dy: the gradient of its output, (B, H, W, F).

    Returns:
      The kernel's gradient, (3, 3, C, F).
    """
    height, width, channels = x.shape[1:]
    filters = dy.shape[-1]

    def neighbourhoods(t, offsets):  # (B * H * W, 9 * depth)
        depth = t.shape[-1]
        padded = tf.pad(t, [[0, 0], [1, 1], [1, 1], [0, 0]])
        padded = tf.reshape(padded, (-1, (height + 2) * (width + 2), depth))
        near = tf.gather(padded, _neighbourhood_indices(height, width, offsets), axis=1)
        return tf.reshape(near, (-1, 9 * depth))

    if channels <= filters:  # kernel[i, j] pairs x shifted by (i - 1, j - 1) with dy
        grad = tf.matmul(
            neighbourhoods(x, (0, 1, 2)), tf.reshape(dy, (-1, filters)), transpose_a=True
        )
        return tf.reshape(grad, (3, 3, channels, filters))
    # ... which is x paired with dy shifted by (1 - i, 1 - j)
    grad = tf.matmul(
        tf.reshape(x, (-1, channels)), neighbourhoods(dy, (2, 1, 0)), transpose_a=True
    )  # (C, 9 * F)
    return tf.transpose(tf.reshape(grad, (channels, 3, 3, filters)), (1, 2, 0, 3))


@tf.custom_gradient
def _conv3x3(x, kernel):
    def grad(dy):
        dx = tf.raw_ops.Conv2DBackpropInput(
            input_sizes=tf.shape(x),
            filter=kernel,
            out_backprop=dy,
            strides=[1, 1, 1, 1],
            padding="SAME",
        )
        return dx, conv3x3_kernel_grad(x, dy)

    return tf.nn.conv2d(x, kernel, 1, "SAME"), grad


@keras.saving.register_keras_serializable(package="acai")
class Conv2D(layers.Conv2D):
    """Keras' Conv2D whose kernel gradient, on small maps in bfloat16, is one matrix product.

    The same function and gradient (to round-off). Only 3x3 "same" convolutions of stride 1 are
    affected, and by default (`matmul_grad=None`) only those on maps of at most
    `MATMUL_GRAD_PIXELS` pixels that compute in one of `MATMUL_GRAD_DTYPES`. There, on an AMX
    Xeon, the matrix product (`conv3x3_kernel_grad`) takes from a half to a fifth of the time of
    oneDNN's kernel gradient; on larger maps, and in float32, it is slower.
    `matmul_grad=True` or False forces the choice.
    """

    MATMUL_GRAD_PIXELS = 64  # 8x8
    MATMUL_GRAD_DTYPES = ("bfloat16",)

    def __init__(self, *args, matmul_grad: bool | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.matmul_grad = matmul_grad
        self._by_matmul = False

    def build(self, input_shape):
        super().build(input_shape)
        eligible = (
            self.kernel_size == (3, 3)
            and self.strides == (1, 1)
            and self.dilation_rate == (1, 1)
            and self.groups == 1
            and self.padding == "same"
            and self.data_format == "channels_last"
        )
        height, width = input_shape[1:3]
        small = None not in (height, width) and height * width <= self.MATMUL_GRAD_PIXELS
        wanted = (
            self.matmul_grad
            if self.matmul_grad is not None
            else small and self.compute_dtype in self.MATMUL_GRAD_DTYPES
        )
        self._by_matmul = eligible and wanted

    @property
    def kernel_grad_by_matmul(self) -> bool:
        """Whether, once built, the kernel's gradient is `conv3x3_kernel_grad`."""
        return self._by_matmul

    def convolution_op(self, inputs, kernel):
        if not self._by_matmul:
            return super().convolution_op(inputs, kernel)
        return _conv3x3(inputs, ops.cast(kernel, inputs.dtype))

    def get_config(self):
        return {**super().get_config(), "matmul_grad": self.matmul_grad}


def with_keras_layers(network: keras.Model) -> keras.Model:
    """The same network, weights included, built from Keras' own layers only (its Conv2D and
    LeakyReLU for ours), so that its .keras file loads with Keras alone."""

    def rebuild(layer):
        config = layer.get_config()
        if isinstance(layer, Conv2D):
            config.pop("matmul_grad")
            return layers.Conv2D.from_config(config)
        if isinstance(layer, LeakyReLU):
            return layers.LeakyReLU.from_config(config)
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(network, clone_function=rebuild, recursive=True)
    copy.set_weights(network.get_weights())
    return copy


def _conv(filters: int, kernel: int, dtype, name: str, stock: bool) -> layers.Conv2D:
    # He-normal corrected for the leak: std = 1 / sqrt((1 + LEAK^2) * fan_in).
    init = keras.initializers.VarianceScaling(
        scale=1.0 / (1.0 + LEAK**2), mode="fan_in", distribution="untruncated_normal"
    )
    return (layers.Conv2D if stock else Conv2D)(
        filters, kernel, padding="same", kernel_initializer=init, dtype=dtype, name=name
    )


def _conv_act(h, filters, dtype, name, stock, kernel=3):
    h = _conv(filters, kernel, dtype, name, stock)(h)
    return (layers.LeakyReLU if stock else LeakyReLU)(LEAK, dtype=dtype, name=f"{name}_act")(h)


def encoder(
    image_shape=(32, 32, 3),
    *,
    depth: int,
    latent: int,
    scales: int,
    dtype="float32",
    name: str = "encoder",
    stock: bool = False,
) -> keras.Model:
    """Builds the encoder: images in [-1, 1] -> latent grid.

    Args:
      image_shape: (H, W, C) of the images.
      depth: channels of the first level; level i has depth << i.
      latent: channels of the latent grid.
      scales: number of 2x down-sampling levels; the latent is (H >> scales, W >> scales).
      dtype: a Keras dtype policy name, e.g. "mixed_bfloat16"; the output is always float32.
      name: the model's name.
      stock: build from Keras' own Conv2D and LeakyReLU, which compute the same, slower.

    Returns:
      A functional model (B, H, W, C) -> (B, H >> scales, W >> scales, latent).
    """
    x = keras.Input(image_shape, name="images")
    h = _conv(depth, 1, dtype, "stem", stock)(x)  # (B, 32, 32, depth)
    for level in range(scales):
        h = _conv_act(h, depth << level, dtype, f"down{level}_a", stock)
        h = _conv_act(h, depth << level, dtype, f"down{level}_b", stock)
        h = layers.AveragePooling2D(2, dtype=dtype, name=f"pool{level}")(h)  # halves H and W
    h = _conv_act(h, depth << scales, dtype, "neck", stock)  # (B, h, w, depth << scales)
    h = _conv(latent, 3, dtype, "latent", stock)(h)  # (B, H >> scales, W >> scales, latent)
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
    stock: bool = False,
    mlp: int = 0,
) -> keras.Model:
    """Builds the decoder, the encoder's mirror image: latent grid -> images in about [-1, 1].

    Args:
      latent_shape: (h, w, latent) of the latent grid.
      depth: channels of the last level; level i has depth << i.
      colors: channels of the output images.
      scales: number of 2x up-sampling levels.
      dtype: a Keras dtype policy name; the output is always float32.
      name: the model's name.
      stock: as for `encoder`.
      mlp: layers of a small network applied to each latent position first (1x1 convolutions
        with leaky ReLU, 4 times the first level's channels), none in the paper: a decoder
        further from linear in its latent, where a mix of two codes need not decode to a mix
        of their images.

    Returns:
      A functional model (B, h, w, latent) -> (B, h << scales, w << scales, colors).
    """
    z = keras.Input(latent_shape, name="latents")
    h = z
    width = 4 * (depth << max(scales - 1, 0))  # four times the first level's channels
    for layer in range(mlp):
        h = _conv_act(h, width, dtype, f"mlp{layer}", stock, kernel=1)
    for level in reversed(range(scales)):
        h = _conv_act(h, depth << level, dtype, f"up{level}_a", stock)
        h = _conv_act(h, depth << level, dtype, f"up{level}_b", stock)
        h = layers.UpSampling2D(2, interpolation="nearest", dtype=dtype, name=f"grow{level}")(h)
    h = _conv_act(h, depth, dtype, "head", stock)  # (B, H, W, depth)
    h = _conv(colors, 3, dtype, "rgb", stock)(h)  # (B, H, W, colors), no activation
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
    stock: bool = False,
) -> keras.Model:
    """Builds the critic: the encoder's architecture with its own weights, averaged to a scalar.

    Args:
      image_shape: (H, W, C) of the images.
      depth: the critic's first-level channels (the paper's advdepth).
      latent: channels of its last convolution.
      scales: number of down-sampling levels.
      dtype: a Keras dtype policy name; the output is always float32.
      name: the model's name.
      stock: as for `encoder`.

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
        stock=stock,
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


# --- the fast optimizer ----------------------------------------------------------------------


def learning_rate(config, rate: float):
    """The rate an optimizer of this run follows: `rate` itself under `lr_schedule="constant"`,
    or a Keras schedule falling from it to 0 along a half cosine over the run's total steps.
    The schedule reads the optimizer's step count, which checkpoints keep, so a resumed run
    goes on where it stopped."""
    if config.lr_schedule == "constant":
        return rate
    return keras.optimizers.schedules.CosineDecay(rate, decay_steps=config.total_steps)


@keras.saving.register_keras_serializable(package="acai")
class FusedAdam(keras.optimizers.Adam):
    """Keras' Adam with each variable's update in one TensorFlow kernel (ResourceApplyAdam).

    The same formula as Keras' update_step, in one pass over the weights and the two moments
    instead of about ten element-wise ops (each a pass over memory); amsgrad falls back to
    Keras' own update.
    """

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad:
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        step = ops.cast(self.iterations + 1, dtype)
        index = self._get_variable_index(variable)

        def handle(v):  # Keras variables wrap a tf.Variable; the kernel takes its resource
            return (v.value if isinstance(v, keras.Variable) else v).handle

        tf.raw_ops.ResourceApplyAdam(
            var=handle(variable),
            m=handle(self._momentums[index]),
            v=handle(self._velocities[index]),
            beta1_power=ops.power(ops.cast(self.beta_1, dtype), step),
            beta2_power=ops.power(ops.cast(self.beta_2, dtype), step),
            lr=ops.cast(learning_rate, dtype),
            beta1=ops.cast(self.beta_1, dtype),
            beta2=ops.cast(self.beta_2, dtype),
            epsilon=ops.cast(self.epsilon, dtype),
            grad=ops.cast(gradient, dtype),
        )


def update_moving_averages(pairs, decay) -> None:
    """average <- decay * average + (1 - decay) * weight for each (average, weight) pair of
    Keras variables, once per step under any tf.distribute strategy: in cross-replica context,
    like the optimizers' own updates, and on each replica's copy."""
    pairs = [(a.value, w.value) for a, w in pairs]  # the tf.Variables under the Keras variables

    def update(strategy):
        for average, weight in pairs:
            strategy.extended.update(
                average,
                lambda a, w: a.assign(decay * a + (1.0 - decay) * w),
                args=(weight,),
                group=False,
            )

    context = tf.distribute.get_replica_context()
    if context is None:
        update(tf.distribute.get_strategy())
    else:
        context.merge_call(update)
