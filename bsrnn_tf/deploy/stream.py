"""The streaming export of a causal separator (:mod:`bsrnn_tf.inference.streaming`):
the one-hop step as a SavedModel and as builtin-only TFLite files.

Layout under ``out_dir``::

    savedmodel/                         signature "stream": audio + state -> stems + state
                                        (the state of streaming.state_layout: with the
                                        norm_* statistics for a cumulative-norm model)
    <name>-stream-<float32|float16|dynamic-int8>.tflite
    config.json, export.json            the state layout, latency and parity per file

Each file's parity is measured on a generated song streamed hop by hop
against the offline Keras model on the whole song.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Callable, List, Optional, Sequence

import numpy as np

from bsrnn_tf.deploy.common import (QUANTIZATION_LABELS, QUANTIZATIONS, ExportError,
                                    check_choices, ensure_writable, provenance, write_config,
                                    write_json)
from bsrnn_tf.deploy.parity import error_figures, music_chunks, sdr_db
from bsrnn_tf.fileio import EXPORT_FILE, atomic_write_bytes


def stream_file_name(name: str, quantize: str) -> str:
    return f"{name}-stream-{QUANTIZATION_LABELS[quantize]}.tflite"


def stream_archive(model):
    """An ``ExportArchive`` with the endpoint ``stream`` (fixed shapes, batch
    1, unrolled LSTMs and the RFFT iSTFT so that it converts to builtin
    TFLite ops)."""
    import keras

    from bsrnn_tf.inference.streaming import (SIGNATURE, check_streamable, input_signature,
                                              step_function)
    from bsrnn_tf.layers.blstm import lstm_implementation

    try:
        check_streamable(model)
    except ValueError as e:
        raise ExportError(str(e)) from None
    step = step_function(model, istft_method="rfft")

    def stream(audio, *state):  # the state of state_layout(model), in its order
        with lstm_implementation("unrolled"):
            return step(audio, *state)

    archive = keras.export.ExportArchive()
    archive.track(model)
    archive.add_endpoint(SIGNATURE, stream, input_signature(model))
    return archive


def export_stream(model, out_dir: str, name: str = "bsrnn",
                  quantizations: Sequence[str] = QUANTIZATIONS, *,
                  source: Optional[str] = None, config: Optional[dict] = None,
                  parity: bool = True, num_threads: Optional[int] = 1,
                  log: Callable[[str], None] = lambda _: None) -> List[str]:
    """Writes the streaming SavedModel and one ``.tflite`` per quantization.

    Args:
      model: a causal CPU :class:`Separator` (:func:`~bsrnn_tf.deploy.common.cpu_copy`).
      parity: stream a generated 2 s song through each file and record the
        error against the offline Keras model in ``export.json``.
    Returns:
      the paths written (the SavedModel directory first).
    """
    from bsrnn_tf.deploy.tflite import convert_tflite, embed_tflite_metadata, tflite_op_names
    from bsrnn_tf.inference.streaming import SIGNATURE, TFLiteStream, stream_metadata

    check_choices(quantizations, QUANTIZATIONS, "quantization")
    archive = stream_archive(model)
    ensure_writable(out_dir)
    metadata = stream_metadata(model)
    saved = os.path.join(out_dir, "savedmodel")
    tmp = tempfile.mkdtemp(prefix=".tmp-stream-", dir=out_dir)
    try:
        archive.write_out(tmp, verbose=False)
        if os.path.exists(saved):
            shutil.rmtree(saved)
        os.rename(tmp, saved)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    reference = _reference_song(model) if parity else None
    artifacts, paths = {}, [saved]
    for quantize in quantizations:
        path = os.path.join(out_dir, stream_file_name(name, quantize))
        log(f"converting {os.path.basename(path)}")
        content = convert_tflite(saved, SIGNATURE, quantize)
        ops = tflite_op_names(content)
        custom = sorted(op for op in ops if op.startswith("CUSTOM:"))
        if custom:
            raise ExportError(f"{path}: converted model needs non-builtin ops {custom}")
        atomic_write_bytes(path, embed_tflite_metadata(
            content, {**metadata, "quantization": quantize}))
        entry = {"quantization": quantize, "size_bytes": os.path.getsize(path),
                 "ops": sorted(ops)}
        if reference is not None:
            entry["parity_vs_keras"] = stream_parity(TFLiteStream(path, num_threads), *reference)
        artifacts[os.path.basename(path)] = entry
        paths.append(path)
    write_config(out_dir, model, config)
    write_json(os.path.join(out_dir, EXPORT_FILE),
               {**provenance("stream", source), "model": metadata, "artifacts": artifacts})
    return paths


def _reference_song(model, seconds: float = 2.0) -> tuple:
    """A generated song ``(samples, C)`` and the offline model's stems on it."""
    segment = int(seconds * model.sample_rate)
    name, chunks = music_chunks(model.sample_rate, segment, model.audio_channels, 1)
    song = chunks[0]
    stems = model(song[None], training=False)
    return name, song, {t: stems[t].numpy()[0] for t in model.targets}


def stream_parity(stream, track: str, song: np.ndarray, reference: dict) -> dict:
    """``song`` streamed hop by hop through ``stream`` against the offline
    stems ``reference``: error figures and SDR (dB), whole song and its first
    and last hops."""
    from bsrnn_tf.inference.streaming import stream_song

    out = stream_song(stream, song, stream.hop_length, stream.n_fft, stream.initial_state())
    estimate = {t: out[i] for i, t in enumerate(stream.targets)}
    hop = stream.hop_length
    edges = {"first_hop": slice(0, hop), "last_hop": slice(len(song) - hop, len(song))}
    sdr = {t: round(sdr_db(reference[t], estimate[t]), 2) for t in reference}
    return {"track": track, "seconds": len(song) / stream.sample_rate, "sdr_db": sdr,
            **error_figures(reference, estimate),
            **{k: error_figures({t: v[s] for t, v in reference.items()},
                                {t: v[s] for t, v in estimate.items()})
               for k, s in edges.items()}}
