"""A small CIFAR-10 classifier of our own, the judge of what a pegasus looks like."""

from __future__ import annotations

import json
import time
from pathlib import Path

import keras
import numpy as np
from keras import layers

from acai.errors import AcaiError
from acai.files import replacing, sha256_file, write_json
from acai.images import in_batches, to_float
from acai.training import data as data_lib

DEFAULT_PATH = Path("runs") / "classifier" / "classifier.keras"
WIDTHS = (32, 64, 128)  # the stem and the three blocks
PAD = 4  # pixels a training crop may shift each way
CUTOUT = 8  # side of the square the resnet recipe blanks in each training image
PEAK_LR = 0.4  # SGD's highest rate, for batches of 512 (scaled linearly with the batch)
ARCHITECTURES = ("plain", "resnet")
EPOCHS = 12  # passes over CIFAR-10 by default: about 85% test accuracy


def build(num_classes: int, *, image_shape=(32, 32, 3), widths=WIDTHS) -> keras.Model:
    """A narrow CIFAR CNN on images in [-1, 1]: a stem, then per width two 3x3 convolutions with
    a 2x max-pool between them, batch normalisation and ReLU after each, a global max-pool.

    Args:
      num_classes: number of output logits.
      image_shape: (H, W, C) of the images; any channel count.
      widths: channels of the stem and of each block; each block halves the resolution.

    Returns:
      An uncompiled functional model (B, H, W, C) -> (B, num_classes) logits; the input of its
      layer "logits" is the feature vector realism is measured in.
    """
    x = keras.Input(tuple(image_shape), name="images")
    h = _conv_bn_relu(x, widths[0], "stem")
    for level, width in enumerate(widths):
        h = _conv_bn_relu(h, width, f"conv{level}_0", pool=True)
        h = _conv_bn_relu(h, width, f"conv{level}_1")
    h = layers.GlobalMaxPooling2D(name="features")(h)
    logits = layers.Dense(num_classes, name="logits")(h)
    return keras.Model(x, logits, name="classifier")


def build_resnet(num_classes: int, *, image_shape=(32, 32, 3), widths=WIDTHS) -> keras.Model:
    """A pre-activation residual network (He et al., 2016) on images in [-1, 1], the judge's
    family: nothing in training uses it. A stem, then per width one residual block of two 3x3
    convolutions, each after batch normalisation and ReLU, the later widths entering at stride 2
    through a 1x1 projection; a global average pool.

    Args:
      num_classes: number of output logits.
      image_shape: (H, W, C) of the images.
      widths: channels of the stem and of each block.

    Returns:
      An uncompiled functional model (B, H, W, C) -> (B, num_classes) logits; the input of its
      layer "logits" is the feature vector realism is measured in.
    """
    x = keras.Input(tuple(image_shape), name="images")
    h = layers.Conv2D(widths[0], 3, padding="same", use_bias=False, name="stem")(x)
    for level, width in enumerate(widths):
        stride = 1 if level == 0 else 2
        pre = layers.ReLU(name=f"res{level}_relu0")(
            layers.BatchNormalization(momentum=0.9, name=f"res{level}_bn0")(h)
        )
        shortcut = h
        if stride != 1 or h.shape[-1] != width:  # (B, H / 2, W / 2, width)
            shortcut = layers.Conv2D(
                width, 1, strides=stride, use_bias=False, name=f"res{level}_proj"
            )(pre)
        r = layers.Conv2D(
            width, 3, strides=stride, padding="same", use_bias=False, name=f"res{level}_conv0"
        )(pre)
        r = layers.ReLU(name=f"res{level}_relu1")(
            layers.BatchNormalization(momentum=0.9, name=f"res{level}_bn1")(r)
        )
        r = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"res{level}_conv1")(r)
        h = layers.Add(name=f"res{level}_add")([shortcut, r])
    h = layers.ReLU(name="final_relu")(layers.BatchNormalization(momentum=0.9, name="final_bn")(h))
    h = layers.GlobalAveragePooling2D(name="features")(h)
    logits = layers.Dense(num_classes, name="logits")(h)
    return keras.Model(x, logits, name="resnet_judge")


def _conv_bn_relu(h, width: int, name: str, *, pool: bool = False):
    h = layers.Conv2D(width, 3, padding="same", use_bias=False, name=name)(h)
    if pool:  # pooling first: the normalisation and ReLU see a quarter of the pixels
        h = layers.MaxPooling2D(name=f"{name}_pool")(h)
    h = layers.BatchNormalization(momentum=0.9, name=f"{name}_bn")(h)
    return layers.ReLU(name=f"{name}_relu")(h)


def augment(images, seed):
    """Random crops of the images padded by 4 reflected pixels, and random left-right flips.

    Args:
      images: (B, H, W, C) float.
      seed: a (2,) integer tensor; the same seed gives the same crops and flips.

    Returns:
      (B, H, W, C), each image shifted by up to 4 pixels each way and flipped with chance 1/2.
    """
    import tensorflow as tf

    batch, height, width = tf.shape(images)[0], images.shape[1], images.shape[2]
    padded = tf.pad(images, [[0, 0], [PAD, PAD], [PAD, PAD], [0, 0]], mode="REFLECT")
    offsets = tf.random.stateless_uniform((2, batch), seed, 0, 2 * PAD + 1, dtype=tf.int32)
    rows = offsets[0][:, None] + tf.range(height)[None]  # (B, H)
    cols = offsets[1][:, None] + tf.range(width)[None]  # (B, W)
    crops = tf.gather(tf.gather(padded, rows, axis=1, batch_dims=1), cols, axis=2, batch_dims=1)
    flip = tf.random.stateless_uniform((batch, 1, 1, 1), seed + 1) < 0.5
    return tf.where(flip, tf.reverse(crops, axis=[2]), crops)


def cutout(images, seed, size: int = CUTOUT):
    """Blanks (sets to 0, mid-grey) one size x size square per image at a random centre,
    clipped at the borders (DeVries and Taylor, 2017).

    Args:
      images: (B, H, W, C) float.
      seed: a (2,) integer tensor.
      size: the square's side.

    Returns:
      (B, H, W, C).
    """
    import tensorflow as tf

    batch, height, width = tf.shape(images)[0], images.shape[1], images.shape[2]
    centre = tf.random.stateless_uniform((2, batch, 1), seed, 0, max(height, width), tf.int32)
    rows = tf.abs(tf.range(height)[None] - centre[0]) * 2 < size  # (B, H)
    cols = tf.abs(tf.range(width)[None] - centre[1]) * 2 < size  # (B, W)
    hole = tf.logical_and(rows[:, :, None], cols[:, None, :])[..., None]  # (B, H, W, 1)
    return tf.where(hole, tf.zeros_like(images), images)


def train(
    source: str,
    out: str | Path = DEFAULT_PATH,
    *,
    epochs: int = EPOCHS,
    batch: int = 512,
    seed: int = 0,
    validation: int = 0,
    architecture: str = "plain",
    verbose: int = 1,
) -> dict:
    """Trains the classifier on a data source's training split and scores its test split.

    The recipe: crop-and-flip augmentation (and `cutout` for the resnet), label smoothing 0.2
    (none for the resnet), SGD with Nesterov momentum 0.9 and weight decay 5e-4, the rate
    rising linearly for the first fifth of the steps to 0.4 x batch / 512 and falling back to 0
    along a cosine.

    Args:
      source: as `acai.training.data.load`: "tfds", a CIFAR-10 archive or an image folder.
      out: where `classifier.keras` goes; `classifier.json` (accuracy, classes) goes beside it.
      epochs: passes over the training images.
      batch: images per step.
      seed: seeds the weights, the shuffling and the augmentation.
      architecture: "plain" (`build`, crop-and-flip, label smoothing 0.2: the feature loss's
        network) or "resnet" (`build_resnet`, crop, flip and `cutout`, no label smoothing: the
        independent judge).
      validation: training images per class to leave out, as a config's `validation` does, so
        that a feature loss made from this classifier has not seen the validation photos.
      verbose: as `keras.Model.fit`.

    Returns:
      {"test_accuracy", "class_names", "epochs", "seconds", "test_images", "validation",
      "architecture"}.
    """
    data = data_lib.load(source)
    if validation:
        data, _ = data_lib.carve_validation(data, validation)
    if architecture not in ARCHITECTURES:
        raise AcaiError(f"unknown architecture '{architecture}'; pass one of {ARCHITECTURES}")
    resnet = architecture == "resnet"
    keras.utils.set_random_seed(seed)
    model = (build_resnet if resnet else build)(data.num_classes, image_shape=data.image_shape)
    steps_per_epoch = max(1, len(data.train_images) // batch)
    _compile(model, steps=epochs * steps_per_epoch, batch=batch, smoothing=0.0 if resnet else 0.2)
    train_ds = _augmented(data, batch=batch, seed=seed, cut=resnet)
    start = time.perf_counter()
    model.fit(
        train_ds, steps_per_epoch=steps_per_epoch, epochs=epochs, shuffle=False, verbose=verbose
    )
    seconds = time.perf_counter() - start
    predicted = mirrored_logits(model, data.test_images)
    info = {
        "test_accuracy": float(np.mean(predicted.argmax(-1) == data.test_labels)),
        "class_names": list(data.class_names),
        "epochs": epochs,
        "seconds": round(seconds, 1),
        "test_images": len(data.test_images),
        "validation": validation,
        "architecture": architecture,
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with replacing(out) as tmp:
        model.save(tmp)
    write_json(out.with_suffix(".json"), info)
    return info


def _compile(model: keras.Model, *, steps: int, batch: int, smoothing: float) -> None:
    """SGD with Nesterov momentum and weight decay on a warm-up-then-cosine rate; cross-entropy
    with `smoothing` label smoothing."""
    warmup = max(1, steps // 5)
    schedule = keras.optimizers.schedules.CosineDecay(
        0.0, steps - warmup, warmup_target=PEAK_LR * batch / 512, warmup_steps=warmup
    )
    model.compile(
        optimizer=keras.optimizers.SGD(schedule, momentum=0.9, nesterov=True, weight_decay=5e-4),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=smoothing),
    )


def _augmented(data: data_lib.ImageData, *, batch: int, seed: int, cut: bool):
    """The training images as endless augmented (images, one-hot labels) batches: crops and
    flips (`augment`), and `cutout` too when `cut`."""
    import tensorflow as tf

    batches = data_lib.train_dataset(data.train_images, data.train_labels, batch=batch, seed=seed)
    seeds = tf.data.Dataset.random(seed=seed).batch(2)
    return tf.data.Dataset.zip(batches, seeds).map(
        lambda xy, s: (
            cutout(augment(xy[0], s), s + 2) if cut else augment(xy[0], s),
            tf.one_hot(xy[1], data.num_classes),
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


SCORE_BATCH = 256  # images per call when a trained classifier scores images


def mirrored_scorer(model: keras.Model):
    """A compiled function of a batch of uint8 images (B, H, W, C): (the features the model's
    "logits" layer takes, of the images as they are (B, d); the mean of the model's logits for
    the images and their mirror images (B, classes)). One call runs the network once on both, so
    a few images cost little more than the network does (`keras.Model.predict` costs about 0.2 s
    a call on a 2-core CPU, whatever the batch)."""
    import tensorflow as tf

    both = keras.Model(model.inputs, [model.get_layer("logits").input, model.outputs[0]])

    @tf.function(reduce_retracing=True)
    def score(images):
        x = to_float(images)
        features, logits = both(tf.concat([x, tf.reverse(x, axis=[2])], 0), training=False)
        n = tf.shape(x)[0]
        return features[:n], (logits[:n] + logits[n:]) / 2

    return score


def mirrored_logits(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """The mean of the model's logits for uint8 images (B, H, W, C) and their mirror images."""
    return in_batches(mirrored_scorer(model), images, size=SCORE_BATCH)[1]


def load(path: str | Path) -> tuple[keras.Model, dict]:
    """A classifier file and the facts `train` wrote beside it, or one clear error."""
    path = Path(path)
    if not path.is_file():
        raise AcaiError(
            f"no classifier at '{path}'; train one first: make classifier DATA=... "
            "(or acai classifier --data ... --out ...)"
        )
    try:
        return keras.saving.load_model(path), json.loads(path.with_suffix(".json").read_text())
    except (OSError, ValueError) as e:
        raise AcaiError(f"classifier '{path}' is unreadable ({e}); train it again") from None


def architecture_of(info: dict | str | Path) -> str:
    """The family of a classifier, from the facts `train` wrote beside it (a dict, or the
    classifier file whose .json to read); files from before families were recorded are plain."""
    if not isinstance(info, dict):
        try:
            info = json.loads(Path(info).with_suffix(".json").read_text())
        except (OSError, ValueError):
            info = {}
    return info.get("architecture", "plain")


class Classifier:
    """A trained classifier with its class names: `probabilities(uint8 images)`."""

    def __init__(self, path: str | Path = DEFAULT_PATH):
        self.model, self.info = load(path)
        self.path = Path(path)
        self.sha256 = sha256_file(path)
        self.architecture = architecture_of(self.info)
        try:
            self._score = mirrored_scorer(self.model)  # needs the layer "logits"
        except ValueError as e:
            raise AcaiError(f"classifier '{path}' is unreadable ({e}); train it again") from None
        self.class_names = tuple(self.info["class_names"])

    def index(self, name: str) -> int:
        if name not in self.class_names:
            raise AcaiError(f"the classifier knows no class '{name}'; it has {self.class_names}")
        return self.class_names.index(name)

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """uint8 images (B, H, W, C) -> class probabilities (B, num_classes), from the mean
        logits of each image and its mirror image, as the test accuracy is measured."""
        return self.features_and_probabilities(images)[1]

    def features_and_probabilities(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """uint8 images (B, H, W, C) -> (penultimate features (B, d), probabilities); the
        features of the images as they are, the probabilities as `probabilities` gives them."""
        features, logits = in_batches(self._score, np.asarray(images), size=SCORE_BATCH)
        return features, np.asarray(keras.ops.softmax(logits, axis=-1))

    def features(self, images: np.ndarray) -> np.ndarray:
        """uint8 images (B, H, W, C) -> the penultimate layer's features (B, d), what KID
        compares (`acai.pegasi.metrics.kid`)."""
        return self.features_and_probabilities(images)[0]
