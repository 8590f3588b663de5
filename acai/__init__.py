"""ACAI: adversarially constrained autoencoder interpolation in Keras 3 / TensorFlow."""

import os

# TensorFlow's C++ start-up chatter (CUDA probing, oneDNN notes) drowns the command line's
# output; set TF_CPP_MIN_LOG_LEVEL=0 to see it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from acai.config import Config  # noqa: E402
from acai.errors import AcaiError, ConfigError, DataError, WorkdirError  # noqa: E402

__version__ = "0.1.0"

# Importing the model registers ACAI with Keras, so that keras.saving.load_model can rebuild
# an exported acai.keras after a plain `import acai`.
from acai.data import load as load_data  # noqa: E402
from acai.model import ACAI  # noqa: E402
from acai.trainer import load_run, train  # noqa: E402

__all__ = [
    "ACAI", "AcaiError", "Config", "ConfigError", "DataError", "WorkdirError", "load_data",
    "load_run", "train",
]  # fmt: skip
