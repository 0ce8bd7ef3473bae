"""Normalisation over a chunk (the BSRNN authors') or per frame.

The BSRNN authors normalise with a group norm of one group: per example, the
statistics cover the features *and* the sequence axis of the chunk; the
refined paper's code does the same with a layer norm over ``[features,
frames]``. The affine parameters stay per feature. ``norm="frame"`` is the
per-frame layer norm over the last axis that bsrnn_tf used before 0.2; a
model saved without the field keeps it.

Where the statistics are taken, for band features ``(batch, frames, bands, N)``:

- band split: per example and band, over the band's bins x re/im x channels
  and all frames;
- before the time BLSTM and in the mask head: per example and band, over
  N x frames (axes 1 and 3);
- before the band BLSTM: per example and frame, over N x bands (axes 2, 3).

Statistics are computed in float32 whatever the compute dtype (a float16
sum of squares of a loud band overflows 65504), as Keras' own norms do.
"""

from __future__ import annotations

from typing import Optional, Sequence

import tensorflow as tf

from bsrnn_tf.config import DEFAULT_NORM, LEGACY_NORM, NORMS

__all__ = ["DEFAULT_NORM", "LEGACY_NORM", "check_norm", "normalize", "with_legacy_norm"]


def with_legacy_norm(config: dict) -> dict:
    """A saved layer/model config, with ``norm`` set to :data:`LEGACY_NORM`
    when it lacks the field (saved before it existed): the constructors
    default to :data:`DEFAULT_NORM`, which such a model was not trained with."""
    return {"norm": LEGACY_NORM, **config}


def check_norm(norm: str) -> str:
    """``norm`` if it names a normalisation, else a ``ValueError``."""
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {', '.join(NORMS)}, got {norm!r}")
    return norm


def normalize(x: tf.Tensor, axes: Sequence[int], epsilon: float,
              valid: Optional[tf.Tensor] = None) -> tf.Tensor:
    """Zero mean, unit variance over ``axes`` (kept as size-1 axes).

    Args:
      x: any float tensor; padded entries (where ``valid`` is 0) must be 0.
      axes: the axes the statistics cover.
      valid: optional 1/0 mask broadcastable to ``x``: only its 1 entries
        count, and the 0 entries stay 0 in the output.
    Returns:
      ``x`` normalised, in ``x.dtype``; statistics in float32.
    """
    x32 = tf.cast(x, tf.float32)
    if valid is None:
        mean, var = tf.nn.moments(x32, axes=list(axes), keepdims=True)
        return tf.cast((x32 - mean) * tf.math.rsqrt(var + epsilon), x.dtype)
    valid = tf.cast(valid, tf.float32)
    count = tf.reduce_sum(tf.broadcast_to(valid, tf.shape(x32)), axis=list(axes), keepdims=True)
    mean = tf.reduce_sum(x32, axis=list(axes), keepdims=True) / count
    centred = (x32 - mean) * valid
    var = tf.reduce_sum(tf.square(centred), axis=list(axes), keepdims=True) / count
    return tf.cast(centred * tf.math.rsqrt(var + epsilon), x.dtype)
