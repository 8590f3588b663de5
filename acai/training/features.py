"""The feature loss's network: a trained classifier's ReLU maps as one frozen model, made cheap
to run in every training step (the step's precision, batch normalisation folded). The loss
itself, and the photos' maps computed once, are `acai.core.parts.FeatureLoss`."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from keras import layers, ops

from acai.errors import AcaiError
from acai.training.classifier import load


def feature_extractor(path: str | Path, *, policy: str = "float32") -> keras.Model:
    """A classifier's ReLU activations as one frozen model, for a feature reconstruction loss.

    Args:
      path: a `classifier.keras` from `train`.
      policy: the Keras dtype policy it computes under; the training step's own (under
        mixed_bfloat16 its convolutions run in bfloat16, as the autoencoder's do).

    Returns:
      `activations` of the classifier in the file, its batch normalisation folded into its
      convolutions (`fold_batch_norm`).
    """
    model, _ = load(path)
    if not any(isinstance(layer, layers.ReLU) for layer in model.layers):
        raise AcaiError(f"classifier '{path}' has no ReLU layers to compare; train it again")
    return activations(fold_batch_norm(in_policy(model, policy)))


def in_policy(model: keras.Model, policy: str) -> keras.Model:
    """The same functional network and weights computing under the Keras dtype policy `policy`
    (its variables stay float32); `model` itself when it already does."""
    computing = [layer for layer in model.layers if not isinstance(layer, layers.InputLayer)]
    if all(layer.dtype_policy.name == policy for layer in computing):
        return model

    def rebuild(layer):
        return layer.__class__.from_config({**layer.get_config(), "dtype": policy})

    copy = keras.models.clone_model(model, clone_function=rebuild)
    copy.set_weights(model.get_weights())
    return copy


def fold_batch_norm(model: keras.Model) -> keras.Model:
    """The same function with each inference-mode batch normalisation folded into the
    convolution before it, for a frozen network run many times (the feature loss's).

    A convolution, batch normalisation and ReLU becomes a convolution with a bias and the
    ReLU, which TensorFlow runs as one fused kernel, and no normalisation computes in float32
    between bfloat16 convolutions. Where a max-pool sits between the convolution and the
    normalisation, the kernel takes |scale| (a max commutes with a non-negative scale) and the
    sign and shift follow the pool (`ChannelAffine`). Weights are copied, so training `model`
    later does not change the result; a network that is not a chain of such layers (the
    resnet) comes back as it is.

    Args:
      model: a functional network from `build`, under any dtype policy.

    Returns:
      A functional model with the same inputs, layer names and outputs (to round-off).
    """
    chain = [layer for layer in model.layers if not isinstance(layer, layers.InputLayer)]
    if not chain or not all(isinstance(layer, _CHAIN_LAYERS) for layer in chain):
        return model
    h = inputs = keras.Input(model.inputs[0].shape[1:])
    at = 0
    while at < len(chain):
        conv, pool, norm = _conv_pool_bn(chain[at:])
        if norm is not None:
            h = _folded(conv, pool, norm)(h)
            at += 3 if pool else 2
        else:  # a copy, so that its `output` is the one in this graph
            copy = chain[at].__class__.from_config(chain[at].get_config())
            h = copy(h)
            copy.set_weights(chain[at].get_weights())
            at += 1
    return keras.Model(inputs, h, name=model.name)


class ChannelAffine(layers.Layer):
    """inputs * scale + offset, one frozen (scale, offset) per channel: a folded batch
    normalisation's remainder after a max-pool (`fold_batch_norm`)."""

    def __init__(self, scale, offset, **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.scale = self.add_weight(shape=np.shape(scale), initializer="ones", trainable=False)
        self.offset = self.add_weight(shape=np.shape(offset), initializer="zeros", trainable=False)
        self.scale.assign(scale)
        self.offset.assign(offset)

    def call(self, inputs):
        return inputs * ops.cast(self.scale, inputs.dtype) + ops.cast(self.offset, inputs.dtype)


_CHAIN_LAYERS = (
    layers.Conv2D,
    layers.MaxPooling2D,
    layers.BatchNormalization,
    layers.ReLU,
    layers.GlobalMaxPooling2D,
    layers.GlobalAveragePooling2D,
    layers.Dense,
)


def _conv_pool_bn(rest: list) -> tuple:
    """(convolution, max-pool or None, batch normalisation) when `rest` starts with a linear
    convolution, an optional max-pool and a channels-last batch normalisation; else (None,
    None, None)."""
    conv, pool = rest[0], None
    if not isinstance(conv, layers.Conv2D) or conv.get_config()["activation"] != "linear":
        return None, None, None
    if len(rest) > 1 and isinstance(rest[1], layers.MaxPooling2D):
        pool = rest[1]
    after = rest[2 if pool else 1 :]
    norm = after[0] if after else None
    if not isinstance(norm, layers.BatchNormalization) or norm.axis not in (-1, 3):
        return None, None, None
    return conv, pool, norm


def _folded(conv, pool, norm):
    """The callable replacing a convolution, a max-pool (or None) and a batch normalisation."""
    width = conv.filters
    scale = np.ones(width) if norm.gamma is None else norm.gamma.numpy()
    scale = scale / np.sqrt(norm.moving_variance.numpy() + norm.epsilon)
    shift = -norm.moving_mean.numpy() * scale + (0 if norm.beta is None else norm.beta.numpy())
    kernel = conv.kernel.numpy()
    bias = conv.bias.numpy() if conv.use_bias else np.zeros(width)
    # A max-pool commutes with a positive scale and with a shift; otherwise only |scale| goes
    # into the kernel, and the sign and the shift follow the pool.
    positive = pool is None or bool(np.all(scale > 0))
    new = layers.Conv2D.from_config(
        {**conv.get_config(), "use_bias": positive, "dtype": conv.dtype_policy}
    )
    new.build(conv.input.shape)
    new.kernel.assign(kernel * (scale if positive else np.abs(scale)))
    if positive:
        new.bias.assign(bias * scale + shift)
        return new if pool is None else lambda h: pool(new(h))
    sign = np.sign(scale) + (scale == 0)
    affine = ChannelAffine(
        sign, bias * scale + shift, dtype=conv.dtype_policy, name=f"{norm.name}_folded"
    )
    return lambda h: affine(pool(new(h)))


def activations(model: keras.Model) -> keras.Model:
    """A non-trainable model: images in [-1, 1] (B, H, W, C) -> the list of `model`'s ReLU
    activation maps, from the first layer to the last."""
    outputs = [layer.output for layer in model.layers if isinstance(layer, layers.ReLU)]
    extractor = keras.Model(model.inputs, outputs, name="features")
    extractor.trainable = False
    return extractor
