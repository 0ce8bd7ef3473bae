"""A quiet start for the command-line tools.

Importing TensorFlow and enumerating its devices prints lines a user cannot
act on (the oneDNN notice, "Could not find cuda drivers", and at error level
"failed call to cuInit ... (303)" on every CPU-only machine), some of them
before TensorFlow reads ``TF_CPP_MIN_LOG_LEVEL``. :func:`quiet_tensorflow`
imports TensorFlow with stderr captured at the file-descriptor level and
passes every line through except those known start-up notices, so real
errors still show. ``BSRNN_TF_VERBOSE=1`` turns the filter off.
"""

from __future__ import annotations

import os
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
)


def quiet_tensorflow(log_level: str = "2") -> None:
    """Imports TensorFlow and lists its devices with the start-up notices
    filtered out of stderr. Sets ``TF_CPP_MIN_LOG_LEVEL`` to ``log_level``
    (2: warnings and errors of TensorFlow's C++ core off; Python-level errors
    still raise) unless the user set it. Does nothing once TensorFlow is
    imported."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", log_level)
    if "tensorflow" in sys.modules or os.environ.get("BSRNN_TF_VERBOSE") == "1":
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (embedded interpreters)
        return
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            import tensorflow as tf
            tf.config.list_physical_devices()  # cuInit happens here
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            captured.seek(0)
            _replay(captured.read().decode("utf-8", "replace"))


def _replay(text: str) -> None:
    kept = [line for line in text.splitlines() if line.strip()
            and not any(noise in line for noise in STARTUP_NOISE)]
    if kept:
        print("\n".join(kept), file=sys.stderr, flush=True)


__all__ = ["STARTUP_NOISE", "quiet_tensorflow"]
