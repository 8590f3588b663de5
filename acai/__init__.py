"""ACAI: adversarially constrained autoencoder interpolation in Keras 3 / TensorFlow."""

import importlib

from acai.config import Config
from acai.errors import AcaiError, ConfigError, DataError, WorkdirError

__version__ = "0.1.0"

# TensorFlow loads only when one of these is first used, so that `acai --help`, config
# files and config validation stay fast.
_LAZY = {
    "ACAI": "acai.model",
    "train": "acai.trainer",
    "load_run": "acai.trainer",
    "load_data": ("acai.data", "load"),
}


def __getattr__(name):
    if name not in _LAZY:
        raise AttributeError(f"module 'acai' has no attribute '{name}'")
    module, attr = _LAZY[name] if isinstance(_LAZY[name], tuple) else (_LAZY[name], name)
    return getattr(importlib.import_module(module), attr)


__all__ = ["ACAI", "AcaiError", "Config", "ConfigError", "DataError", "WorkdirError", "train"]
