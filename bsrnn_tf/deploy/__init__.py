"""Export a separator for TF Serving, for devices (TFLite) and as a frozen
backbone.

Layout of an export directory ``OUT`` (:func:`export_model`)::

    OUT/serving/<name>/<version>/   SavedModel for TF Serving (base path OUT/serving/<name>);
                                    versions 1, 2, ... are never overwritten
    OUT/tflite/<name>-<variant>-<float32|float16|dynamic-int8>.tflite
    OUT/backbone/                   backbone.keras, heads.keras, backbone_savedmodel/,
                                    heads_savedmodel/: spectrum -> band features -> masks
    OUT/stream/                     a causal model's one-hop step (bsrnn_tf.inference.streaming):
                                    savedmodel/, <name>-stream-<quantization>.tflite

Each directory (each SavedModel version) also holds the model's
``config.json`` and an ``export.json``: what was exported, from which model,
the quantization, the segment, the parity figures measured against the Keras
model and the file sizes. Every artifact is built from a float32 CPU copy of
the model with ``use_cudnn=False``.

Modules, one job each: :mod:`~bsrnn_tf.deploy.common` (loading, choices,
``export.json`` pieces), :mod:`~bsrnn_tf.deploy.parity` (probe inputs and
error figures), :mod:`~bsrnn_tf.deploy.savedmodel` (the traced graphs and TF
Serving), :mod:`~bsrnn_tf.deploy.tflite` (conversion, op check, metadata),
:mod:`~bsrnn_tf.deploy.backbone` (backbone and heads),
:mod:`~bsrnn_tf.deploy.stream` (the streaming step of a causal model).
"""

from __future__ import annotations

import os
from typing import Callable, Optional, Sequence

from bsrnn_tf.deploy.backbone import export_backbone, heads_model
from bsrnn_tf.deploy.common import (FORMATS, QUANTIZATION_LABELS, QUANTIZATIONS, VARIANTS,
                                    ExportError, check_choices, cpu_copy, default_name,
                                    ensure_writable, load_for_export, segment_samples_for)
from bsrnn_tf.deploy.parity import ParityProbe, error_figures, music_chunks, sdr_db
from bsrnn_tf.deploy.savedmodel import export_savedmodel, separator_archive
from bsrnn_tf.deploy.stream import export_stream, stream_file_name
from bsrnn_tf.deploy.tflite import (convert_tflite, embed_tflite_metadata, export_tflite,
                                    tflite_file_name, tflite_op_names)
from bsrnn_tf.inference.backends import KerasBackend


STREAM_FORMAT = "stream"  # only for causal models; part of "everything" for them


def export_model(model_path: str, out_dir: str, formats: Optional[Sequence[str]] = None,
                 variants: Sequence[str] = VARIANTS,
                 quantizations: Sequence[str] = QUANTIZATIONS,
                 segment_seconds: Optional[float] = None, name: Optional[str] = None,
                 parity: bool = True, num_threads: Optional[int] = 1,
                 log: Callable[[str], None] = lambda _: None,
                 overwrite: bool = False) -> dict:
    """Exports a trained model in the requested formats (layout: module
    docstring). Nothing is created when the model cannot be loaded.

    Args:
      model_path: ``.keras`` file or run directory.
      out_dir: export root.
      formats: any of :data:`FORMATS` and ``"stream"`` (a causal model's
        streaming step); None: all that apply to the model.
      variants, quantizations: TFLite variants and quantizations (a causal
        model has no ``spectrum`` variant: its frames are not the centred
        ones of that variant's contract; it is left out of the defaults).
      segment_seconds: fixed chunk length (default: the model's segment).
      name: TF Serving model name (default :func:`default_name`).
      parity: measure and record parity against the Keras model.
      overwrite: replace TFLite files and ``backbone/`` of an earlier export
        (else an :class:`ExportError` names them; SavedModels get a new
        version either way).
    Returns:
      ``{"savedmodel": version dir, "tflite": [files], "backbone": dir}``
      for the formats exported.
    """
    check_choices(FORMATS if formats is None else formats, (*FORMATS, STREAM_FORMAT), "format")
    check_choices(variants, VARIANTS, "variant")
    check_choices(quantizations, QUANTIZATIONS, "quantization")
    model, config = load_for_export(model_path)
    formats, variants = _applicable(model, formats, variants, log)
    segment = segment_samples_for(model, segment_seconds)
    name = name or default_name(model_path)
    if not overwrite:
        _refuse_overwrite(out_dir, formats, name, variants, quantizations)
    ensure_writable(out_dir)
    probe = None
    if parity:
        log("computing Keras reference outputs")
        probe = ParityProbe(KerasBackend(model_path, model=model, segment_samples=segment))
    common = {"source": model_path, "config": config, "probe": probe}
    results = {}
    if "savedmodel" in formats:
        log("writing SavedModel")
        results["savedmodel"] = export_savedmodel(
            model, os.path.join(out_dir, "serving", name), segment, **common)
    if "tflite" in formats:
        results["tflite"] = export_tflite(model, os.path.join(out_dir, "tflite"), name, variants,
                                          quantizations, segment, num_threads=num_threads,
                                          log=log, **common)
    if STREAM_FORMAT in formats:
        log("writing the streaming step")
        results[STREAM_FORMAT] = export_stream(
            model, os.path.join(out_dir, STREAM_FORMAT), name, quantizations, source=model_path,
            config=config, parity=parity, num_threads=num_threads, log=log)
    if "backbone" in formats:
        log("writing backbone and heads")
        original = (config.get("model") or {}).get("use_cudnn", "auto")
        results["backbone"] = export_backbone(model, os.path.join(out_dir, "backbone"),
                                              use_cudnn=original, **common)
    return results


def _applicable(model, formats, variants, log) -> tuple:
    """``(formats, variants)`` for this model: None means all that apply;
    a causal model gets the stream and no spectrum variant."""
    if formats is None:
        formats = (*FORMATS, STREAM_FORMAT) if model.causal else FORMATS
    if STREAM_FORMAT in formats and not model.causal:
        raise ExportError("--format stream needs a causal model (model.causal, preset "
                          "cpu-stream); this one's time BLSTMs look at the whole chunk")
    if model.causal and "tflite" in formats and "spectrum" in variants:
        variants = [v for v in variants if v != "spectrum"]
        if not variants:
            raise ExportError("a causal model has no spectrum TFLite variant (its STFT frames "
                              "are causal, the variant's contract is the centred STFT); use "
                              "--variant waveform or --format stream")
        log("spectrum variant left out: a causal model's STFT frames are not the centred ones "
            "of that variant's contract")
    return list(formats), list(variants)


def _refuse_overwrite(out_dir: str, formats, name: str, variants, quantizations) -> None:
    """Raises :class:`ExportError` naming the outputs of an earlier export
    that this one would replace."""
    planned = []
    if "tflite" in formats:
        planned += [os.path.join(out_dir, "tflite", tflite_file_name(name, v, q))
                    for v in variants for q in quantizations]
    if "backbone" in formats:
        planned.append(os.path.join(out_dir, "backbone"))
    if STREAM_FORMAT in formats:
        planned += [os.path.join(out_dir, STREAM_FORMAT, stream_file_name(name, q))
                    for q in quantizations]
    existing = [p for p in planned if os.path.exists(p)]
    if existing:
        more = f" and {len(existing) - 2} more" if len(existing) > 2 else ""
        raise ExportError(f"{', '.join(existing[:2])}{more} already exist from an earlier "
                          f"export; use --overwrite to replace them, or another -o")


__all__ = [
    "FORMATS", "QUANTIZATIONS", "QUANTIZATION_LABELS", "VARIANTS", "ExportError", "ParityProbe",
    "convert_tflite", "cpu_copy", "default_name", "embed_tflite_metadata", "error_figures",
    "STREAM_FORMAT", "export_backbone", "export_model", "export_savedmodel", "export_stream",
    "export_tflite", "heads_model",
    "load_for_export", "music_chunks", "sdr_db", "segment_samples_for", "separator_archive",
    "tflite_file_name", "tflite_op_names",
]
