"""bsrnn_tf: Band-Split RNN music source separation in TensorFlow 2 / Keras 3.

``bsrnn_tf.separate(path_or_array, model)`` separates one song (see
:mod:`bsrnn_tf.inference.separate`); submodules are imported on first use, so
``import bsrnn_tf`` stays cheap.

Subpackages by job (ARCHITECTURE.md): ``training`` (the loop, losses,
checkpoints), ``inference`` (overlap-add, backends, ``separate``, streaming),
``deploy`` (SavedModel, TFLite, backbone and stream exports).
"""

import importlib

__version__ = "0.2.0"

# name -> submodule; ``separate``, ``backends``, ``trainer`` and ``export``
# keep the names the package has always exposed
_LAZY = {
    "separate": "inference.separate", "backends": "inference.backends",
    "inference": "inference", "deploy": "deploy", "export": "deploy",
    "training": "training", "trainer": "training.trainer",
    "metrics": "metrics", "audio": "audio", "bands": "bands", "models": "models",
    "layers": "layers", "config": "config", "data": "data",
}


def __getattr__(name):
    if name in _LAZY:
        return importlib.import_module(f"{__name__}.{_LAZY[name]}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
