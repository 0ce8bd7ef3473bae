"""A quiet start for the command-line tools.

Importing TensorFlow and enumerating its devices prints lines a user cannot
act on (the oneDNN notice, "Could not find cuda drivers", and at error level
"failed call to cuInit ... (303)" on every CPU-only machine), some of them
before TensorFlow reads ``TF_CPP_MIN_LOG_LEVEL``. :func:`quiet_tensorflow`
imports TensorFlow with stderr captured at the file-descriptor level and
passes every line through except those known start-up notices, so real
errors still show. ``BSRNN_TF_VERBOSE=1`` turns the filter off. It also
turns TensorFlow's oneDNN kernels on where they help (:func:`prefer_onednn`):
the command-line tools choose that, importing the library does not.

Training's TensorBoard audio prints one more (oneDNN has no string
kernels), which :func:`filtered_stderr` also drops. The TFLite interpreter
prints one more such line, ``INFO: Created TensorFlow
Lite XNNPACK delegate for CPU.``, when it first allocates its tensors;
:func:`open_tflite_interpreter` does that with the same filter.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import tempfile

STARTUP_NOISE = (
    "All log messages before absl::InitializeLog() is called",
    "oneDNN custom operations are on",
    "Could not find cuda drivers on your machine",
    "failed call to cuInit",
    "Unable to register cuDNN factory",
    "Unable to register cuFFT factory",
    "Unable to register cuBLAS factory",
    "computation_placer.cc",
    "TF-TRT Warning: Could not find TensorRT",
    "This TensorFlow binary is optimized to use available CPU instructions",
    "To enable the following instructions",
    "Created TensorFlow Lite XNNPACK delegate for CPU",
    "oneDNN supports DT_STRING only on platforms with AVX-512",
)


def quiet_tensorflow(log_level: str = "2") -> None:
    """Imports TensorFlow and lists its devices with the start-up notices
    filtered out of stderr. Sets ``TF_CPP_MIN_LOG_LEVEL`` to ``log_level``
    (2: warnings and errors of TensorFlow's C++ core off; Python-level errors
    still raise) unless the user set it. Does nothing once TensorFlow is
    imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", log_level)
    prefer_onednn()
    if "tensorflow" in sys.modules or os.environ.get("BSRNN_TF_VERBOSE") == "1":
        return
    with filtered_stderr():
        import tensorflow as tf
        tf.config.list_physical_devices()  # cuInit happens here


@contextlib.contextmanager
def filtered_stderr():
    """Captures stderr at the file-descriptor level (C++ logging included)
    for the ``with`` block, then writes back every line but the notices of
    :data:`STARTUP_NOISE`. Passes everything through with
    ``BSRNN_TF_VERBOSE=1`` or without a real stderr."""
    if os.environ.get("BSRNN_TF_VERBOSE") == "1":
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (embedded interpreters)
        yield
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            _replay(captured.read().decode("utf-8", "replace"))


def open_tflite_interpreter(path: str, num_threads=1):
    """A LiteRT ``Interpreter`` for ``path`` with its tensors allocated (where
    the XNNPACK delegate is created), its ``INFO: Created TensorFlow Lite
    XNNPACK delegate for CPU.`` line filtered out of stderr. Raises what the
    ``Interpreter`` raises."""
    from ai_edge_litert.interpreter import Interpreter

    with filtered_stderr():
        interpreter = Interpreter(model_path=path, num_threads=num_threads)
        interpreter.allocate_tensors()
    return interpreter


def prefer_onednn() -> None:
    """Turns TensorFlow's oneDNN CPU kernels on, on x86 CPUs with AVX-512,
    unless the user chose (``TF_ENABLE_ONEDNN_OPTS`` set either way) or
    TensorFlow is already imported (it reads the variable when it loads).

    TensorFlow enables them by default only on x86 CPUs with AVX-512 VNNI /
    BF16 / AMX. With the fused BLSTM path they made a ``paper`` forward pass
    at batch 4 1.45x-1.6x faster and its training step 1.1x faster than
    TensorFlow's default with the Keras LSTM (``benchmarks/model.py --onednn
    0 1``, figures in ``benchmarks/README.md``). On CPUs without AVX-512 they
    stay off. With them on, any string op (``tf.summary.audio`` encodes WAV
    strings) logs "oneDNN supports DT_STRING only on platforms with AVX-512"
    at error level, on AVX-512 CPUs too, and runs on the default kernels:
    :func:`bsrnn_tf.training.summaries.write_examples` filters that line.
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


def _replay(text: str) -> None:
    kept = [line for line in text.splitlines() if line.strip()
            and not any(noise in line for noise in STARTUP_NOISE)]
    if kept:
        print("\n".join(kept), file=sys.stderr, flush=True)


__all__ = ["STARTUP_NOISE", "filtered_stderr", "open_tflite_interpreter", "quiet_tensorflow"]
