"""The pretrained model shipped with the source checkout.

``saved_models/bsrnn-cpu-mtl/`` holds a ``cpu`` preset separator (drums,
bass, other, vocals) trained with ``training/fit.py --mtl`` on the built-in
sampled dataset: songs rendered from a General MIDI soundfont, not MUSDB18
(see its README.md for the command, the training time and the held-out
scores). ``bsrnn-tf separate`` uses it when no ``-m`` is given;
``$BSRNN_TF_MODEL`` points elsewhere.
"""

from __future__ import annotations

import os

from bsrnn_tf.fileio import MODEL_FILE

# the checkout's root: bsrnn_tf/inference/pretrained.py -> three levels up
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SHIPPED_DIR = os.path.join(_ROOT, "saved_models", "bsrnn-cpu-mtl")


def default_model() -> str:
    """The model ``separate`` uses without ``-m``: ``$BSRNN_TF_MODEL`` or the
    shipped one. Raises ``FileNotFoundError`` with what to do when absent."""
    path = os.environ.get("BSRNN_TF_MODEL") or SHIPPED_DIR
    if not os.path.exists(os.path.join(path, MODEL_FILE)) and not os.path.isfile(path):
        raise FileNotFoundError(
            f"no -m given and no default model at {path} (the shipped model lives in the source "
            f"checkout's saved_models/bsrnn-cpu-mtl): pass -m MODEL or set BSRNN_TF_MODEL")
    return path
