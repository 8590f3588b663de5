"""A tiny ACAI whose mixing coefficients any split of a batch draws alike, for replica checks."""

import keras

from acai.core.config import Config
from acai.core.losses import fold_alpha
from acai.core.model import ACAI


class FixedAlpha(ACAI):
    """Alpha from each image's own pixels, so any split of the batch draws the same values."""

    def draw_alpha(self, images):
        u = keras.ops.mean(images, axis=(1, 2, 3), keepdims=True) * 7.0 + 0.5
        return fold_alpha(u - keras.ops.floor(u))


def build(mix_groups: int) -> FixedAlpha:
    """A compiled depth-4 FixedAlpha for 32x32x3 images and 2 classes, without down-sampling
    levels: the step each process traces stays small; what is compared does not change. It keeps
    a moving average of its weights (ema), so the replica checks cover that update too."""
    config = Config(depth=4, latent=4, latent_width=32, ema=0.5, lr=1e-3)
    model = FixedAlpha(config, image_shape=(32, 32, 3), num_classes=2, mix_groups=mix_groups)
    model.compile()
    model.build_optimizers()
    return model
