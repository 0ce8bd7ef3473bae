"""The frozen-backbone export: the backbone and the heads as separate
Keras files and SavedModels, so new heads can be trained on a fixed backbone
(:func:`bsrnn_tf.models.separator_from_backbone`) and a server can run one
backbone for many heads."""

from __future__ import annotations

import os
import shutil
from typing import Callable, Optional

from bsrnn_tf.deploy.common import (ExportError, ensure_writable, model_section, path_size,
                                    provenance, write_config, write_json)
from bsrnn_tf.deploy.parity import ParityProbe, error_figures
from bsrnn_tf.fileio import EXPORT_FILE, atomic_save
from bsrnn_tf.spectral import num_bins

KERAS_FILES = ("backbone.keras", "heads.keras")
SAVEDMODELS = ("backbone_savedmodel", "heads_savedmodel")


def heads_model(model):
    """A functional Keras model ``features (batch, frames, K, N) ->
    {target: packed mask}`` sharing ``model``'s heads."""
    import keras

    features = keras.Input((None, model.backbone.num_bands, model.feature_dim), name="features")
    return keras.Model(features, {t: model.heads[t](features) for t in model.targets},
                       name="heads")


def export_backbone(model, out_dir: str, *, source: Optional[str] = None,
                    config: Optional[dict] = None, probe: Optional[ParityProbe] = None,
                    use_cudnn="auto") -> str:
    """Writes the backbone and the heads separately.

    Files: ``backbone.keras`` (a :class:`Backbone`; ``use_cudnn`` as given,
    for training on top of it), ``heads.keras``, ``backbone_savedmodel/``
    (``serving_default``: ``spectrum (batch, frames, bins, C*2)`` ->
    ``{"features": (batch, frames, K, N)}``) and ``heads_savedmodel/``
    (``serving_default``: ``features`` -> ``{target: mask}``).

    Returns:
      ``out_dir``.
    """
    if model.channels != "features":
        raise ExportError("the backbone export takes a model whose stereo is in its band "
                          "features; this one folds channels into the batch (channels "
                          "'batch'): export the whole separator instead")
    import tensorflow as tf

    from bsrnn_tf.models.backbone import Backbone
    from bsrnn_tf.models.transfer import copy_weights

    ensure_writable(out_dir)
    trainable = Backbone.from_config(dict(model.backbone.get_config(), use_cudnn=use_cudnn))
    trainable.build()
    copy_weights(model.backbone, trainable)
    atomic_save(os.path.join(out_dir, "backbone.keras"), trainable.save)
    heads = heads_model(model)
    atomic_save(os.path.join(out_dir, "heads.keras"), heads.save)
    bins, c = num_bins(model.n_fft), model.audio_channels
    k, n = model.backbone.num_bands, model.feature_dim
    spectrum_spec = tf.TensorSpec((None, None, bins, 2 * c), tf.float32, name="spectrum")
    features_spec = tf.TensorSpec((None, None, k, n), tf.float32, name="features")
    _write_archive(model.backbone, lambda spectrum: {"features": model.backbone(
        spectrum, training=False)}, spectrum_spec, os.path.join(out_dir, "backbone_savedmodel"))
    _write_archive(heads, lambda features: heads(features), features_spec,
                   os.path.join(out_dir, "heads_savedmodel"))
    write_config(out_dir, model, config)
    export = {**provenance("backbone", source),
              "model": model_section(model, model.segment_samples),
              "band_ranges": [list(r) for r in model.band_ranges],
              "signatures": {"backbone_savedmodel": {"inputs": {"spectrum": [-1, -1, bins, 2 * c]},
                                                     "outputs": {"features": [-1, -1, k, n]}},
                             "heads_savedmodel": {"inputs": {"features": [-1, -1, k, n]},
                                                  "outputs": {t: [-1, -1, bins, 2 * c]
                                                              for t in model.targets}}},
              "files": {f: path_size(os.path.join(out_dir, f))
                        for f in KERAS_FILES + SAVEDMODELS}}
    if probe is not None:
        export["parity_vs_keras"] = _parity(model, out_dir, probe)
    write_json(os.path.join(out_dir, EXPORT_FILE), export)
    return out_dir


def _write_archive(tracked, fn: Callable, spec, path: str) -> None:
    import keras

    if os.path.exists(path):
        shutil.rmtree(path)
    archive = keras.export.ExportArchive()
    archive.track(tracked)
    archive.add_endpoint("serving_default", fn, [spec])
    archive.write_out(path, verbose=False)


def _parity(model, out_dir: str, probe: ParityProbe) -> dict:
    """Features and masks of the exported pieces against the Keras model on
    the probe's random chunks."""
    import tensorflow as tf

    spectrum = model.stft(probe.random)
    features = model.backbone(spectrum, training=False)
    masks = model.masks(spectrum, training=False)
    loaded = tf.saved_model.load(os.path.join(out_dir, "backbone_savedmodel"))
    got_features = loaded.signatures["serving_default"](spectrum=spectrum)["features"]
    heads = tf.saved_model.load(os.path.join(out_dir, "heads_savedmodel"))
    got_masks = heads.signatures["serving_default"](features=features)
    return {"backbone_savedmodel": error_figures({"features": features.numpy()},
                                                 {"features": got_features.numpy()}),
            "heads_savedmodel": error_figures({t: v.numpy() for t, v in masks.items()},
                                              {t: got_masks[t].numpy() for t in masks})}
