"""ACAI: adversarially constrained autoencoder interpolation in Keras 3 / TensorFlow."""

import importlib
import os

# TensorFlow's C++ notes (CUDA probing, oneDNN) drown the command line's output; the command
# also filters the lines written before this is read. TF_CPP_MIN_LOG_LEVEL=0 shows them all.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow uses its oneDNN kernels by default only on CPUs with AVX-512 VNNI/BF16 or AMX; on
# a 2-core AVX2 EPYC they made the training step about 1.5x faster. Read when TensorFlow
# starts, so it only takes effect if acai is imported first; TF_ENABLE_ONEDNN_OPTS=0 opts out.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

from acai.core.config import Config  # noqa: E402
from acai.errors import AcaiError, ConfigError, DataError, WorkdirError  # noqa: E402

__version__ = "0.2.0"

# The heavy names load on first use, so that `import acai` (and `acai --help`) does not wait
# for TensorFlow. Keras learns the class ACAI when acai.core.model is imported (`acai.ACAI`
# does it): do that before keras.saving.load_model reads an exported acai.keras.
_LAZY = {
    "ACAI": ("acai.core.model", "ACAI"),
    "load_data": ("acai.training.data", "load"),
    "load_pretrained": ("acai.training.run", "load_pretrained"),
    "load_run": ("acai.training.run", "load_run"),
    "train": ("acai.training.trainer", "train"),
}

__all__ = ["AcaiError", "Config", "ConfigError", "DataError", "WorkdirError", *_LAZY]


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'acai' has no attribute '{name}'")
    module, attribute = _LAZY[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *_LAZY])
