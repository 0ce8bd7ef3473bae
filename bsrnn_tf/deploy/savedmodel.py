"""The traced graphs of a separator (:func:`separator_archive`) and the TF
Serving export (:func:`export_savedmodel`).

A graph for TF Serving runs the Keras layers as they are (the BLSTMs trace
as TensorFlow's ``BlockLSTM`` op on CPU-only machines and as while loops
otherwise; both core ops with CPU and GPU kernels, so the SavedModel is
portable). A graph for TFLite is the same ``Separator`` code traced with
static shapes, the BLSTMs unrolled (:mod:`bsrnn_tf.layers.blstm`) and the
iSTFT on the builtin RFFT (``istft(method="rfft")``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Dict, Optional

from bsrnn_tf.deploy.common import (ExportError, directory_size, ensure_writable, model_info,
                                    model_section, path_size, provenance, write_config,
                                    write_json)
from bsrnn_tf.deploy.parity import ParityProbe
from bsrnn_tf.fileio import EXPORT_FILE
from bsrnn_tf.inference.backends import SavedModelBackend
from bsrnn_tf.spectral import num_bins, num_frames


def separator_archive(model, segment: int, endpoints: Dict[str, str],
                      for_tflite: bool = False):
    """An ``ExportArchive`` of ``model`` with the given endpoints.

    Args:
      segment: samples of the ``waveform`` input.
      endpoints: ``{endpoint name: "waveform" | "spectrum"}``: waveform ->
        stems, or packed spectrum -> packed masks.
      for_tflite: batch 1 and static frames, traced for TFLite (unrolled
        BLSTMs, RFFT iSTFT); else a dynamic batch (and dynamic frames for
        ``spectrum``).
    """
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model)
    channels, bins = model.audio_channels, num_bins(model.n_fft)
    batch, frames = ((1, num_frames(segment, model.n_fft, model.hop_length)) if for_tflite
                     else (None, None))
    for name, kind in endpoints.items():
        if kind == "waveform":
            spec = tf.TensorSpec((batch, segment, channels), tf.float32, name="waveform")
        else:
            spec = tf.TensorSpec((batch, frames, bins, 2 * channels), tf.float32,
                                 name="spectrum")
        archive.add_endpoint(name, _traced(model, kind, for_tflite), [spec])
    return archive


def _traced(model, kind: str, for_tflite: bool):
    import contextlib

    from bsrnn_tf.layers.blstm import lstm_implementation

    method = "rfft" if for_tflite else "irfft"

    def lstm():  # TF Serving: the implementation in force when traced
        return lstm_implementation("unrolled") if for_tflite else contextlib.nullcontext()

    def waveform(waveform):
        with lstm():
            return model.separate(waveform, training=False, istft_method=method)

    def spectrum(spectrum):
        with lstm():
            return model.masks(spectrum, training=False)

    return waveform if kind == "waveform" else spectrum


def export_savedmodel(model, base_dir: str, segment_samples: Optional[int] = None, *,
                      source: Optional[str] = None, config: Optional[dict] = None,
                      probe: Optional[ParityProbe] = None) -> str:
    """Writes the next version of a TF Serving model directory.

    Signatures: ``serving_default``: ``waveform (batch, segment, channels)``
    float32 -> ``{target: (batch, segment, channels)}``; ``masks``: packed
    spectrum ``(batch, frames, bins, channels * 2)`` -> ``{target: packed
    complex mask}`` (same shape).

    Args:
      model: a CPU :class:`Separator` (:func:`~bsrnn_tf.deploy.common.cpu_copy`).
      base_dir: ``<...>/<name>``; the SavedModel goes to ``base_dir/<version>``.
      segment_samples: fixed chunk length (default: the model's).
      probe: measures parity against Keras, recorded in ``export.json``.
    Returns:
      the version directory.
    """
    segment = segment_samples or model.segment_samples
    ensure_writable(base_dir)
    tmp = tempfile.mkdtemp(prefix=".tmp-export-", dir=base_dir)
    try:
        archive = separator_archive(model, segment,
                                    {"serving_default": "waveform", "masks": "spectrum"})
        archive.write_out(tmp, verbose=False)
        write_config(tmp, model, config)
        export = {**provenance("savedmodel", source), "quantization": "none",
                  "model": model_section(model, segment),
                  "signatures": _signatures(model, segment)}
        if probe is not None:
            backend = SavedModelBackend(tmp, model_info(model, segment))
            export["parity_vs_keras"] = probe.measure(backend)
            del backend
        export["files"] = {f: path_size(os.path.join(tmp, f)) for f in sorted(os.listdir(tmp))}
        export["size_bytes"] = directory_size(tmp)
        return _publish_version(tmp, base_dir, export)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _signatures(model, segment: int) -> dict:
    c, bins = model.audio_channels, num_bins(model.n_fft)
    frames = num_frames(segment, model.n_fft, model.hop_length)
    stems = {t: [-1, segment, c] for t in model.targets}
    masks = {t: [-1, frames, bins, 2 * c] for t in model.targets}
    return {"serving_default": {"inputs": {"waveform": [-1, segment, c]}, "outputs": stems},
            "masks": {"inputs": {"spectrum": [-1, -1, bins, 2 * c]}, "outputs": masks}}


def next_version(base_dir: str) -> int:
    """1 + the highest numbered subdirectory of ``base_dir`` (1 if none)."""
    if not os.path.isdir(base_dir):
        return 1
    return 1 + max([int(d) for d in os.listdir(base_dir) if d.isdigit()], default=0)


def _publish_version(tmp_dir: str, base_dir: str, export: dict) -> str:
    """Renames a finished SavedModel into the next free version directory."""
    for _ in range(100):
        version = next_version(base_dir)
        target = os.path.join(base_dir, str(version))
        export["version"] = version
        write_json(os.path.join(tmp_dir, EXPORT_FILE), export)
        if not os.path.exists(target):
            try:
                os.rename(tmp_dir, target)
                return target
            except OSError:
                continue  # another exporter took this version
    raise ExportError(f"{base_dir}: could not claim a new version directory")
