"""A tiny ACAI whose mixing coefficients any split of a batch draws alike, for replica checks."""

import keras

from acai import model as model_lib


class FixedAlpha(model_lib.ACAI):
    """Alpha from each image's own pixels, so any split of the batch draws the same values."""

    def draw_alpha(self, images):
        u = keras.ops.mean(images, axis=(1, 2, 3), keepdims=True) * 7.0 + 0.5
        return model_lib.fold_alpha(u - keras.ops.floor(u))


def build(mix_groups: int) -> FixedAlpha:
    """A compiled depth-4 FixedAlpha for 32x32x3 images and 2 classes, without down-sampling
    levels: the step each process traces stays small; what is compared does not change. It keeps
    a moving average of its weights (ema), so the replica checks cover that update too."""
    model = FixedAlpha(
        image_shape=(32, 32, 3),
        num_classes=2,
        depth=4,
        latent=4,
        scales=0,
        mix_groups=mix_groups,
        ema=0.5,
    )
    model.compile(**{name: model_lib.FusedAdam(1e-3) for name in model_lib.OPTIMIZERS})
    model.build_optimizers()
    return model
