"""bsrnn_tf: Band-Split RNN music source separation in TensorFlow 2 / Keras 3.

``bsrnn_tf.separate(path_or_array, model)`` separates one song (see
:mod:`bsrnn_tf.separate`); submodules are imported on first use, so
``import bsrnn_tf`` stays cheap.
"""

import importlib
import os
import platform
import sys

__version__ = "0.2.0"


def _prefer_onednn() -> None:
    """Turns TensorFlow's oneDNN CPU kernels on, on x86 CPUs with AVX-512,
    unless the user chose (``TF_ENABLE_ONEDNN_OPTS`` set either way).

    TensorFlow enables them by default only on x86 CPUs with AVX-512 VNNI /
    BF16 / AMX. With the fused BLSTM path they made a ``paper`` forward pass
    at batch 4 1.45x-1.6x faster and its training step 1.1x faster than
    TensorFlow's default with the Keras LSTM (``benchmarks/model.py --onednn
    0 1``, figures in ``benchmarks/README.md``). On CPUs without AVX-512 they
    stay off: there oneDNN has no string kernels and ``tf.summary.audio``
    logs an error every epoch. The variable is read when TensorFlow loads,
    so this only works when ``bsrnn_tf`` is imported first.
    """
    if ("tensorflow" not in sys.modules and platform.machine().lower() in ("x86_64", "amd64")
            and _cpu_has("avx512f")):
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def _cpu_has(flag: str) -> bool:
    """Whether ``/proc/cpuinfo`` lists ``flag`` (False where it cannot be read)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return flag in line.split(":", 1)[1].split()
    except OSError:
        pass
    return False


_prefer_onednn()

_LAZY = ("separate", "export", "backends", "inference", "metrics", "audio", "bands", "models",
         "layers", "config", "data", "trainer")


def __getattr__(name):
    if name in _LAZY:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
