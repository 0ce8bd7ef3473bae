"""Building separators from trained parts: weight copies between two builds
of one architecture, a new separator on an exported (frozen) backbone for
training heads of new instruments (the refined paper's transfer learning;
``training/fit.py --init-backbone`` reuses a whole run instead), and the
merge of such heads back into the model whose backbone they were trained on
(``bsrnn-tf add-heads``).
"""

from __future__ import annotations

import os
from typing import Sequence

import numpy as np

from bsrnn_tf.fileio import CONFIG_FILE, EXPORT_FILE, JsonFileError, read_json
from bsrnn_tf.models.io import ModelLoadError

BACKBONE_FILE = "backbone.keras"


def copy_weights(source, target) -> None:
    """Copies weights in creation order (variable paths carry auto-numbered
    LSTM names, so they differ between two builds) as float32; shapes must
    match."""
    pairs = list(zip(source.weights, target.weights))
    if len(source.weights) != len(target.weights) or any(
            tuple(a.shape) != tuple(b.shape) for a, b in pairs):
        raise ValueError(f"cannot copy weights: {type(source).__name__} structures differ")
    for a, b in pairs:
        b.assign(np.asarray(a.numpy(), np.float32))


def separator_from_backbone(path: str, targets: Sequence[str], freeze: bool = True):
    """A new :class:`Separator` on an exported backbone, for training heads.

    Args:
      path: a backbone export directory (``export/export.py --format
        backbone``) or its ``backbone.keras``.
      targets: the new heads (untrained).
      freeze: make the backbone non-trainable.
    Raises:
      ModelLoadError: ``path`` is not a backbone export.
    """
    import keras

    import bsrnn_tf.layers  # noqa: F401  (registers the custom objects)
    from bsrnn_tf.models.backbone import Backbone
    from bsrnn_tf.models.separator import Separator

    directory = os.path.dirname(os.path.abspath(path)) if path.endswith(".keras") else path
    keras_file = os.path.join(directory, BACKBONE_FILE)
    export_file = os.path.join(directory, EXPORT_FILE)
    if not (os.path.exists(keras_file) and os.path.exists(export_file)):
        raise ModelLoadError(f"{path}: not a backbone export (needs {BACKBONE_FILE} and "
                             f"{EXPORT_FILE})")
    backbone = keras.saving.load_model(keras_file, safe_mode=True)
    if not isinstance(backbone, Backbone):
        raise ModelLoadError(f"{keras_file}: holds a {type(backbone).__name__}, not a Backbone")
    try:
        info = read_json(export_file)["model"]
        # config.json is optional; a corrupt one is an error, not an absent one.
        run_config = read_json(os.path.join(directory, CONFIG_FILE), missing={})
    except JsonFileError as e:
        raise ModelLoadError(str(e)) from None
    model_config = dict(run_config.get("model") or {})
    if model_config:
        model_config["targets"] = list(targets)
    model = Separator(backbone.band_ranges, targets, feature_dim=backbone.feature_dim,
                      num_layers=backbone.num_layers, mlp_ratio=info["mlp_ratio"],
                      audio_channels=backbone.audio_channels, sample_rate=info["sample_rate"],
                      n_fft=info["n_fft"], hop_length=info["hop_length"],
                      segment_samples=info["model_segment_samples"],
                      standardize=backbone.standardize, use_cudnn=backbone.use_cudnn,
                      norm=backbone.norm, model_config=model_config)
    model.build()
    copy_weights(backbone, model.backbone)
    model.freeze_backbone(freeze)
    return model


def merge_heads(base, others: Sequence, replace: bool = False, names: Sequence[str] = ()):
    """Adds the heads of ``others`` to ``base``: one separator, one backbone
    pass for all targets (the refined paper's "new instrument": train a head
    on the frozen backbone of ``base``, then merge it back).

    Every model of ``others`` must carry exactly the backbone of ``base``
    (``fit.py --init-backbone BASE --freeze-backbone`` keeps it bit for bit);
    a head whose target ``base`` has already is refused unless ``replace``.
    ``base`` is changed in place (its own heads untouched) and returned.
    Raises ``ValueError`` naming the model (``names``: one label per model of
    ``others``) and the problem."""
    for i, other in enumerate(others):
        name = names[i] if i < len(names) else f"model {i + 1}"
        mine, theirs = base.backbone.weights, other.backbone.weights
        same = len(mine) == len(theirs) and all(
            tuple(a.shape) == tuple(b.shape) and np.array_equal(a.numpy(), b.numpy())
            for a, b in zip(mine, theirs))
        if not same:
            raise ValueError(f"{name}: its heads were trained on another backbone (train them "
                             f"with --init-backbone on the base model and --freeze-backbone)")
        for target in other.targets:
            if target in base.targets:
                if not replace:
                    raise ValueError(f"{name}: the base model has a {target!r} head already "
                                     f"(replace it explicitly)")
                base.remove_head(target)
            base.add_head(target)
            copy_weights(other.heads[target], base.heads[target])
    return base
