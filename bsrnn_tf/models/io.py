"""Saving and loading separators: a ``.keras`` file plus ``config.json``."""

from __future__ import annotations

import json
import os
import zipfile

import keras

from bsrnn_tf.fileio import CONFIG_FILE, MODEL_FILE, atomic_save, atomic_write_text



class ModelLoadError(ValueError):
    """A model path does not hold a loadable separator; the message says why."""


def save_separator(model, path: str, experiment_config=None) -> str:
    """Saves ``model`` atomically.

    Args:
      path: a ``.keras`` file, or a directory that receives ``model.keras``
        and ``config.json`` (the experiment config if given, else the model's).
    Returns:
      the path of the ``.keras`` file.
    """
    if path.endswith(".keras"):
        keras_path, directory = path, os.path.dirname(os.path.abspath(path))
    else:
        keras_path, directory = os.path.join(path, MODEL_FILE), path
    atomic_save(keras_path, model.save)
    if not path.endswith(".keras"):
        config = (experiment_config.to_dict() if experiment_config is not None
                  else {"model": model.model_config})
        atomic_write_text(os.path.join(directory, CONFIG_FILE),
                          json.dumps(config, indent=2, sort_keys=True) + "\n")
    return keras_path


def load_separator(path: str):
    """Loads a separator from a ``.keras`` file or a directory holding
    ``model.keras`` (a run directory), in Keras safe mode."""
    import bsrnn_tf.layers  # noqa: F401  (registers the custom objects)
    from bsrnn_tf.models.separator import Separator

    if os.path.isdir(path):
        candidate = os.path.join(path, MODEL_FILE)
        if not os.path.exists(candidate):
            raise ModelLoadError(f"{path}: directory has no {MODEL_FILE}")
        path = candidate
    if not os.path.exists(path):
        raise ModelLoadError(f"{path}: no such file or directory")
    if not path.endswith(".keras"):
        raise ModelLoadError(f"{path}: expected a .keras file or a run directory")
    if not zipfile.is_zipfile(path):  # Keras would say "File not found" of a truncated one
        raise ModelLoadError(f"{path}: truncated or corrupt .keras file (not a complete zip "
                             f"archive, {os.path.getsize(path)} bytes)")
    try:
        model = keras.saving.load_model(path, safe_mode=True)
    except Exception as e:  # noqa: BLE001  (Keras raises many kinds)
        raise ModelLoadError(f"{path}: cannot load Keras model ({type(e).__name__}: {e})") from e
    if not isinstance(model, Separator):
        raise ModelLoadError(f"{path}: holds a {type(model).__name__}, not a bsrnn_tf Separator")
    return model
