"""A small CIFAR-10 classifier of our own, the judge of what a pegasus looks like."""

from __future__ import annotations

import json
import time
from pathlib import Path

import keras
import numpy as np
from keras import layers

from acai import data as data_lib
from acai.errors import AcaiError
from acai.images import replacing, to_float, write_json

DEFAULT_PATH = Path("runs") / "classifier" / "classifier.keras"


def build(num_classes: int, *, image_shape=(32, 32, 3), width: int = 16) -> keras.Model:
    """A VGG-style CNN on images in [-1, 1], with flip and shift augmentation.

    Args:
      num_classes: number of output logits.
      image_shape: (H, W, C) of the images; any channel count.
      width: channels of the first block; blocks double it.

    Returns:
      An uncompiled functional model (B, H, W, C) -> (B, num_classes) logits.
    """
    x = keras.Input(tuple(image_shape), name="images")
    h = layers.RandomFlip("horizontal")(x)
    h = layers.RandomTranslation(0.1, 0.1, fill_mode="reflect")(h)
    for level in range(3):
        for i in range(2):
            h = layers.Conv2D(
                width << level, 3, padding="same", use_bias=False, name=f"conv{level}_{i}"
            )(h)
            h = layers.BatchNormalization()(h)
            h = layers.ReLU()(h)
        h = layers.MaxPooling2D()(h)  # 32 -> 16 -> 8 -> 4
    h = layers.GlobalAveragePooling2D()(h)
    h = layers.Dropout(0.3)(h)
    logits = layers.Dense(num_classes, name="logits")(h)
    return keras.Model(x, logits, name="classifier")


def train(
    source: str,
    out: str | Path = DEFAULT_PATH,
    *,
    epochs: int = 6,
    batch: int = 128,
    seed: int = 0,
    verbose: int = 1,
) -> dict:
    """Trains the classifier on a data source's training split and scores its test split.

    Args:
      source: as `acai.data.load`: "tfds", a CIFAR-10 archive or an image folder.
      out: where `classifier.keras` goes; `classifier.json` (accuracy, classes) goes beside it.
      epochs: passes over the training images.
      batch: images per step.
      seed: seeds the weights and the shuffling.
      verbose: as `keras.Model.fit`.

    Returns:
      {"test_accuracy", "class_names", "epochs", "seconds"}.
    """
    data = data_lib.load(source)
    keras.utils.set_random_seed(seed)
    model = build(data.num_classes, image_shape=data.image_shape)
    steps = epochs * (len(data.train_images) // batch)
    schedule = keras.optimizers.schedules.CosineDecay(2e-3, decay_steps=steps)
    model.compile(
        optimizer=keras.optimizers.Adam(schedule),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    start = time.perf_counter()
    train_ds = data_lib.train_dataset(data.train_images, data.train_labels, batch=batch, seed=seed)
    test_ds = data_lib.eval_dataset(data.test_images, data.test_labels, batch=512)
    model.fit(
        train_ds,
        steps_per_epoch=steps // epochs,
        epochs=epochs,
        validation_data=test_ds,
        shuffle=False,
        verbose=verbose,
    )
    accuracy = float(model.evaluate(test_ds, verbose=0, return_dict=True)["accuracy"])
    info = {
        "test_accuracy": accuracy,
        "class_names": list(data.class_names),
        "epochs": epochs,
        "seconds": round(time.perf_counter() - start, 1),
        "test_images": len(data.test_images),
    }
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with replacing(out) as tmp:
        model.save(tmp)
    write_json(out.with_suffix(".json"), info)
    return info


def _load(path: str | Path) -> tuple[keras.Model, dict]:
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


def feature_extractor(path: str | Path) -> keras.Model:
    """A classifier's ReLU activations as one frozen model, for a feature reconstruction loss.

    Args:
      path: a `classifier.keras` from `train`.

    Returns:
      A non-trainable model: images in [-1, 1] (B, H, W, C) -> a list of activation maps, from
      the first layer to the last.
    """
    model, _ = _load(path)
    outputs = [layer.output for layer in model.layers if isinstance(layer, layers.ReLU)]
    if not outputs:
        raise AcaiError(f"classifier '{path}' has no ReLU layers to compare; train it again")
    extractor = keras.Model(model.inputs, outputs, name="features")
    extractor.trainable = False
    return extractor


class Classifier:
    """A trained classifier with its class names: `probabilities(uint8 images)`."""

    def __init__(self, path: str | Path = DEFAULT_PATH):
        self.model, self.info = _load(path)
        try:
            head = self.model.get_layer("logits")  # its input: the features KID compares
        except ValueError as e:
            raise AcaiError(f"classifier '{path}' is unreadable ({e}); train it again") from None
        self.class_names = tuple(self.info["class_names"])
        self._features_and_logits = keras.Model(
            self.model.inputs, [head.input, self.model.outputs[0]]
        )

    def index(self, name: str) -> int:
        if name not in self.class_names:
            raise AcaiError(f"the classifier knows no class '{name}'; it has {self.class_names}")
        return self.class_names.index(name)

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """uint8 images (B, H, W, C) -> class probabilities (B, num_classes)."""
        logits = self.model.predict(to_float(images), batch_size=256, verbose=0)
        return np.asarray(keras.ops.softmax(logits, axis=-1))

    def features_and_probabilities(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """uint8 images (B, H, W, C) -> (penultimate features (B, d), probabilities)."""
        features, logits = self._features_and_logits.predict(
            to_float(images), batch_size=256, verbose=0
        )
        return np.asarray(features), np.asarray(keras.ops.softmax(logits, axis=-1))

    def features(self, images: np.ndarray) -> np.ndarray:
        """uint8 images (B, H, W, C) -> the penultimate layer's features (B, d), what KID
        compares (`acai.metrics.kid`)."""
        return self.features_and_probabilities(images)[0]
