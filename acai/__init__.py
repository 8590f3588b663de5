"""ACAI: adversarially constrained autoencoder interpolation in Keras 3 / TensorFlow."""

import importlib
import importlib.abc
import importlib.machinery
import os
import sys

# TensorFlow's C++ notes (CUDA probing, oneDNN) drown the command line's output; the command
# also filters the lines written before this is read. TF_CPP_MIN_LOG_LEVEL=0 shows them all.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow uses its oneDNN kernels by default only on CPUs with AVX-512 VNNI/BF16 or AMX; on
# a 2-core AVX2 EPYC they made the training step about 1.5x faster. Read when TensorFlow
# starts, so it only takes effect if acai is imported first; TF_ENABLE_ONEDNN_OPTS=0 opts out.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")

from acai.config import Config  # noqa: E402
from acai.errors import AcaiError, ConfigError, DataError, WorkdirError  # noqa: E402

__version__ = "0.1.0"

# The heavy names load on first use, so that `import acai` (and `acai --help`) does not wait
# for TensorFlow.
_LAZY = {
    "ACAI": ("acai.model", "ACAI"),
    "load_data": ("acai.data", "load"),
    "load_pretrained": ("acai.run", "load_pretrained"),
    "load_run": ("acai.run", "load_run"),
    "train": ("acai.trainer", "train"),
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


class _RegisterWithKeras(importlib.abc.MetaPathFinder):
    """Registers `ACAI` with Keras as soon as Keras is imported, so that after `import acai`
    `keras.saving.load_model` rebuilds an exported acai.keras without importing acai.model."""

    def find_spec(self, name, path, target=None):
        if name != "keras":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            load = spec.loader.exec_module

            def load_then_register(module):
                load(module)
                importlib.import_module("acai.model")  # its decorator registers ACAI

            spec.loader.exec_module = load_then_register
        return spec


if "keras" in sys.modules:
    importlib.import_module("acai.model")
else:
    sys.meta_path.insert(0, _RegisterWithKeras())
