"""What every export shares: the error type, the choices, loading a CPU copy
of the model, and the ``export.json`` pieces (model section, provenance,
sizes)."""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
import time
from typing import Optional, Sequence

from bsrnn_tf.fileio import CONFIG_FILE, MODEL_FILE, JsonFileError, atomic_write_text, read_json
from bsrnn_tf.inference.backends import ModelInfo
from bsrnn_tf.spectral import num_bins, num_frames

FORMATS = ("savedmodel", "tflite", "backbone")
VARIANTS = ("waveform", "spectrum")
QUANTIZATIONS = ("none", "float16", "dynamic-int8")
QUANTIZATION_LABELS = {"none": "float32", "float16": "float16", "dynamic-int8": "dynamic-int8"}


class ExportError(ValueError):
    """An export cannot be made; the message names the path or the option."""


def check_choices(values: Sequence[str], choices: Sequence[str], what: str) -> None:
    unknown = [v for v in values if v not in choices]
    if unknown or not values:
        raise ExportError(f"unknown {what}(s) {unknown or values}; choose from {list(choices)}")


# -- the model to export ----------------------------------------------------------------

def load_for_export(path: str):
    """Loads a separator (``.keras`` file or run directory) for export.

    Returns:
      ``(cpu_model, config)``: a CPU copy (see :func:`cpu_copy`) and the
      config to ship with it (the run's ``config.json``, else
      ``{"model": model_config}``).
    """
    from bsrnn_tf.models.io import ModelLoadError, load_separator

    try:
        model = load_separator(path)
    except ModelLoadError as e:
        raise ExportError(str(e)) from e
    return cpu_copy(model), _run_config(path, model)


def _run_config(path: str, model) -> dict:
    directory = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    file = os.path.join(directory, CONFIG_FILE)
    is_run = os.path.isdir(path) or os.path.basename(path) == MODEL_FILE
    absent = object()
    try:
        config = read_json(file, missing=absent) if is_run else absent
    except JsonFileError as e:
        raise ExportError(f"{file}: not a readable config JSON ({e.reason}); it would be "
                          f"shipped with every export: fix or remove it") from None
    if config is not absent:
        _check_run_config(file, config, model)
        return config
    return {"model": model.model_config}


def _check_run_config(file: str, config, model) -> None:
    """Refuses a run's ``config.json`` whose model section is not the model
    in ``model.keras`` (it would describe every export wrongly)."""
    import dataclasses

    from bsrnn_tf.config import ConfigError, model_config_from_dict

    section = config.get("model") if isinstance(config, dict) else None
    try:
        described = dataclasses.asdict(model_config_from_dict(section))
    except (ConfigError, TypeError) as e:
        raise ExportError(f"{file}: its model section cannot be read ({e}); it would be shipped "
                          f"with every export: fix or remove it") from None
    actual = dataclasses.asdict(model.config_object())
    differ = [f"{k} {described.get(k)!r} (model.keras: {actual.get(k)!r})"
              for k in sorted(actual.keys() | described.keys())
              if described.get(k) != actual.get(k)]
    if differ:
        raise ExportError(f"{file} contradicts {MODEL_FILE} beside it: {'; '.join(differ)}; it "
                          f"would be shipped with every export: fix or remove it (without it "
                          f"the model's own config is shipped)")


def cpu_copy(model, use_cudnn=False):
    """A float32 copy of a :class:`Separator` built on CPU with the given
    ``use_cudnn`` (a cuDNN-traced LSTM neither loads on CPU nor converts to
    TFLite)."""
    import tensorflow as tf

    from bsrnn_tf.models.separator import Separator
    from bsrnn_tf.models.transfer import copy_weights

    config = dict(model.get_config(), use_cudnn=use_cudnn, dtype="float32")
    with tf.device("/CPU:0"):
        copy = Separator.from_config(config)
        copy.build()
        copy_weights(model, copy)
    return copy


def default_name(model_path: str) -> str:
    """A TF Serving model name from a model path: the run directory's name
    or the ``.keras`` file's stem, reduced to ``[A-Za-z0-9_.-]``."""
    path = os.path.abspath(model_path)
    stem = os.path.splitext(os.path.basename(path))[0]
    if os.path.isfile(path) and stem == "model":
        stem = os.path.basename(os.path.dirname(path))
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-.") or "bsrnn"


def segment_samples_for(model, seconds: Optional[float]) -> int:
    """Chunk length in samples: ``seconds`` at the model's sample rate, else
    the model's own segment; at least ``n_fft``."""
    if seconds is not None and not 0 < seconds < math.inf:
        raise ExportError(f"segment must be a finite number of seconds > 0, got {seconds}")
    samples = model.segment_samples if seconds is None else int(round(seconds * model.sample_rate))
    if samples < model.n_fft:
        raise ExportError(f"segment of {samples} samples is shorter than n_fft ({model.n_fft})")
    return samples


def model_info(model, segment_samples: int) -> ModelInfo:
    return ModelInfo(model.sample_rate, segment_samples, model.audio_channels, model.targets,
                     model.n_fft, model.hop_length)


def model_section(model, segment_samples: int) -> dict:
    """``export.json["model"]``: :class:`ModelInfo` plus architecture figures."""
    return {**model_info(model, segment_samples).to_dict(),
            "segment_seconds": segment_samples / model.sample_rate,
            "frames": num_frames(segment_samples, model.n_fft, model.hop_length),
            "bins": num_bins(model.n_fft),
            "num_bands": model.backbone.num_bands, "feature_dim": model.feature_dim,
            "num_layers": model.num_layers, "mlp_ratio": model.mlp_ratio,
            "model_segment_samples": model.segment_samples}


def write_config(directory: str, model, config: Optional[dict]) -> None:
    """The ``config.json`` that goes with an artifact: ``config``, else the
    model's own section."""
    write_json(os.path.join(directory, CONFIG_FILE), config or {"model": model.model_config})


def provenance(what: str, source: Optional[str]) -> dict:
    import bsrnn_tf
    return {"format": what, "source": os.path.abspath(source) if source else None,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "bsrnn_tf_version": bsrnn_tf.__version__}


# -- files and directories -------------------------------------------------------------

def ensure_writable(directory: str) -> None:
    """Creates ``directory`` and checks that a file can be written in it."""
    try:
        os.makedirs(directory, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".probe-"):
            pass
    except OSError as e:
        raise ExportError(f"{directory}: output is not writable ({e.strerror or e})") from e


def write_json(path: str, data: dict) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def directory_size(path: str) -> int:
    """Bytes of all files under ``path``."""
    return sum(os.path.getsize(os.path.join(root, f))
               for root, _, files in os.walk(path) for f in files)


def path_size(path: str) -> int:
    return directory_size(path) if os.path.isdir(path) else os.path.getsize(path)
