"""TFLite export: one ``.tflite`` per variant and quantization, batch 1 and
a fixed segment, builtin ops only (checked), :class:`ModelInfo` embedded as
metadata.

Variants: ``waveform`` (waveform -> stems, STFT and iSTFT inside, both on
the builtin RFFT2D) and ``spectrum`` (packed spectrum -> packed masks with
``frames = 1 + segment // hop``; the app does the STFT and iSTFT, reference
:mod:`bsrnn_tf.spectral`). The BLSTMs are unrolled over their static steps:
no WHILE loops, and faster than Keras on CPU. Quantizations: ``none``
(float32), ``float16`` (weights) or ``dynamic-int8`` (int8 weights, float
activations). Full-integer int8 is not offered: the converter crashes on
Keras 3 LSTMs.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Callable, List, Optional, Sequence

import numpy as np

from bsrnn_tf.deploy.common import (QUANTIZATION_LABELS, QUANTIZATIONS, VARIANTS, ExportError,
                                    check_choices, ensure_writable, model_info, model_section,
                                    provenance, write_config, write_json)
from bsrnn_tf.deploy.parity import ParityProbe
from bsrnn_tf.deploy.savedmodel import separator_archive
from bsrnn_tf.fileio import (EXPORT_FILE, atomic_write_bytes, remove_stale_temporary_dirs,
                             temporary_dir)
from bsrnn_tf.inference.backends import TFLITE_METADATA_NAME, ModelInfo, TFLiteBackend


TMP_PREFIX = ".tmp-tflite-"  # the SavedModel a conversion reads: OUT/tflite/.tmp-tflite-<pid>-*/


def tflite_file_name(name: str, variant: str, quantize: str) -> str:
    return f"{name}-{variant}-{QUANTIZATION_LABELS[quantize]}.tflite"


def export_tflite(model, out_dir: str, name: str = "bsrnn",
                  variants: Sequence[str] = VARIANTS,
                  quantizations: Sequence[str] = QUANTIZATIONS,
                  segment_samples: Optional[int] = None, *, source: Optional[str] = None,
                  config: Optional[dict] = None, probe: Optional[ParityProbe] = None,
                  num_threads: Optional[int] = 1,
                  log: Callable[[str], None] = lambda _: None) -> List[str]:
    """Writes one ``.tflite`` per variant and quantization into ``out_dir``;
    ``export.json`` there gets one entry per file (entries for other files
    already there are kept).

    Returns:
      the paths written.
    """
    check_choices(variants, VARIANTS, "variant")
    check_choices(quantizations, QUANTIZATIONS, "quantization")
    segment = segment_samples or model.segment_samples
    ensure_writable(out_dir)
    info = model_info(model, segment)
    artifacts, paths = {}, []
    for stale in remove_stale_temporary_dirs(out_dir, TMP_PREFIX):
        log(f"removed {stale}, left by an export that was killed")
    tmp = temporary_dir(out_dir, TMP_PREFIX)
    try:
        archive = separator_archive(model, segment, {v: v for v in variants}, for_tflite=True)
        archive.write_out(tmp, verbose=False)
        for variant in variants:
            for quantize in quantizations:
                path = os.path.join(out_dir, tflite_file_name(name, variant, quantize))
                log(f"converting {os.path.basename(path)}")
                entry = _write_tflite(convert_tflite(tmp, variant, quantize), path, info,
                                      variant, quantize)
                if probe is not None:
                    entry["parity_vs_keras"] = probe.measure(TFLiteBackend(path, num_threads))
                artifacts[os.path.basename(path)] = entry
                paths.append(path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    write_config(out_dir, model, config)
    section = model_section(model, segment)
    export = {**provenance("tflite", source), "model": section,
              "artifacts": {**_kept_artifacts(out_dir, section), **artifacts}}
    write_json(os.path.join(out_dir, EXPORT_FILE), export)
    return paths


def convert_tflite(saved_model_dir: str, signature_key: str, quantize: str = "none") -> bytes:
    """Converts one signature of a fixed-shape SavedModel, builtin ops only."""
    import tensorflow as tf

    if quantize not in QUANTIZATIONS:
        raise ExportError(f"unknown quantization {quantize!r}; choose one of {QUANTIZATIONS} "
                          f"(full-integer int8 is not supported: the converter crashes on "
                          f"Keras 3 LSTMs)")
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir,
                                                         signature_keys=[signature_key])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    try:
        return converter.convert()
    except Exception as e:  # noqa: BLE001  (the converter raises many kinds)
        raise ExportError(f"TFLite conversion of {signature_key!r} ({quantize}) failed: "
                          f"{type(e).__name__}: {str(e)[:2000]}") from e


def tflite_op_names(content: bytes) -> set:
    """Names of the operators used in all subgraphs of a ``.tflite``
    flatbuffer; custom ops (Flex included) as ``CUSTOM:<name>``."""
    from ai_edge_litert import schema_py_generated as schema

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    model = schema.Model.GetRootAs(content, 0)
    ops = set()
    for j in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(j)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == schema.BuiltinOperator.CUSTOM:
            ops.add(f"CUSTOM:{(code.CustomCode() or b'').decode()}")
        else:
            ops.add(names.get(builtin, f"BUILTIN_{builtin}"))
    return ops


def embed_tflite_metadata(content: bytes, metadata: dict) -> bytes:
    """Adds ``metadata`` as JSON under the model metadata name ``bsrnn_tf``."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(content), 0)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(json.dumps(metadata, sort_keys=True).encode(), np.uint8).copy()
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = TFLITE_METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or [])
                      if m.name not in (TFLITE_METADATA_NAME, TFLITE_METADATA_NAME.encode())]
    model.metadata.append(entry)
    builder = flatbuffers.Builder(len(content) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _write_tflite(content: bytes, path: str, info: ModelInfo, variant: str,
                  quantize: str) -> dict:
    ops = tflite_op_names(content)
    custom = sorted(op for op in ops if op.startswith("CUSTOM:"))
    if custom:
        raise ExportError(f"{path}: converted model needs non-builtin ops {custom}")
    shapes = _tflite_io(info, variant)
    metadata = {**info.to_dict(), "variant": variant, "quantization": quantize,
                "signature": variant, **shapes}
    atomic_write_bytes(path, embed_tflite_metadata(content, metadata))
    return {"variant": variant, "quantization": quantize, "signature": variant, **shapes,
            "size_bytes": os.path.getsize(path), "ops": sorted(ops)}


def _tflite_io(info: ModelInfo, variant: str) -> dict:
    c = info.channels
    if variant == "waveform":
        shape = [1, info.segment_samples, c]
        return {"inputs": {"waveform": shape}, "outputs": {t: shape for t in info.targets}}
    shape = [1, info.frames, info.bins, 2 * c]
    return {"inputs": {"spectrum": shape}, "outputs": {t: shape for t in info.targets}}


def _kept_artifacts(out_dir: str, section: dict) -> dict:
    """Entries of an existing ``export.json`` made from the same model
    description (``section``) whose files are still there."""
    try:
        with open(os.path.join(out_dir, EXPORT_FILE)) as f:
            old = json.load(f)
    except (OSError, json.JSONDecodeError):
        return {}
    if old.get("model") != section:
        return {}
    return {k: v for k, v in old.get("artifacts", {}).items()
            if os.path.exists(os.path.join(out_dir, k))}
