"""bsrnn_tf: Band-Split RNN music source separation in TensorFlow 2 / Keras 3.

``bsrnn_tf.separate(path_or_array, model)`` separates one song (see
:mod:`bsrnn_tf.separate`); submodules are imported on first use, so
``import bsrnn_tf`` stays cheap.
"""

import importlib

__version__ = "0.2.0"

_LAZY = ("separate", "export", "backends", "inference", "metrics", "audio", "bands", "models",
         "layers", "config", "data", "trainer")


def __getattr__(name):
    if name in _LAZY:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
