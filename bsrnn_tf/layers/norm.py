"""Normalisation over a chunk (the BSRNN authors'), per frame, or over the
frames so far (causal).

The BSRNN authors normalise with a group norm of one group: per example, the
statistics cover the features *and* the sequence axis of the chunk; the
refined paper's code does the same with a layer norm over ``[features,
frames]``. The affine parameters stay per feature. ``norm="frame"`` is the
per-frame layer norm over the last axis that bsrnn_tf used before 0.2; a
model saved without the field keeps it. ``norm="cumulative"`` is the
cumulative layer norm (cLN) of Conv-TasNet (Luo & Mesgarani 2019): the
chunk norm's statistics restricted to frames ``0..t`` at frame ``t``, so a
causal (streaming) model can pool over time without looking ahead.

Where the statistics are taken, for band features ``(batch, frames, bands, N)``:

- band split: per example and band, over the band's bins x re/im x channels
  and all frames (``"cumulative"``: frames ``<= t``);
- before the time BLSTM and in the mask head: per example and band, over
  N x frames (axes 1 and 3; ``"cumulative"``: frames ``<= t``);
- before the band BLSTM: per example and frame, over N x bands (axes 2, 3),
  for ``"chunk"`` and ``"cumulative"`` alike (already causal).

:func:`pooled_normalize` is the one dispatch for the places where
``"chunk"`` pools over frames. A cumulative norm carries a state, its
running statistics (:data:`NormState`), so that a stream fed one frame per
call (:mod:`bsrnn_tf.inference.streaming`) computes what the offline model
computes on the whole song.

Statistics are computed in float32 whatever the compute dtype (a float16
sum of squares of a loud band overflows 65504), as Keras' own norms do.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import tensorflow as tf

from bsrnn_tf.config import CAUSAL_NORMS, DEFAULT_NORM, LEGACY_NORM, NORMS

__all__ = ["CAUSAL_NORMS", "DEFAULT_NORM", "LEGACY_NORM", "NormState", "check_norm",
           "cumulative_normalize", "normalize", "pooled_normalize", "with_legacy_norm"]

# A cumulative norm's running statistics: the sum and the sum of squares of
# the entries seen so far per example and statistics group (``x``'s shape
# without the frame axis and the pooled axes, e.g. ``(batch, bands)``), and
# the number of frames seen per example, ``(batch,)``; all float32, zeros at
# the start of a song. The count of entries follows from the frames: frames x
# the valid entries of one frame.
NormState = Tuple[tf.Tensor, tf.Tensor, tf.Tensor]


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


def cumulative_normalize(x: tf.Tensor, axes: Sequence[int], epsilon: float,
                         valid: Optional[tf.Tensor] = None,
                         state: Optional[NormState] = None) -> Tuple[tf.Tensor, NormState]:
    """The cumulative layer norm: at frame ``t`` (axis 1), zero mean and unit
    variance with statistics over ``axes`` and frames ``0..t``.

    Computed with cumulative sums over the frames of each frame's sum and
    sum of squares (float32); ``var = E[x^2] - mean^2``, clamped at 0.

    Args:
      x: ``(batch, frames, ...)``; padded entries (where ``valid`` is 0) must be 0.
      axes: the axes pooled within a frame (not 0 or 1).
      valid: optional 1/0 mask broadcastable to ``x`` and constant over the
        batch and frames (e.g. ``(bands, features)``): only its 1 entries
        count, and the 0 entries stay 0 in the output.
      state: the statistics of the frames before ``x`` (:data:`NormState`);
        None: ``x`` starts the song.
    Returns:
      ``(x normalised in x.dtype, the state after x's last frame)``.
    """
    axes = sorted(int(a) for a in axes)
    if not axes or axes[0] < 2:
        raise ValueError(f"cumulative_normalize pools within a frame: axes must be >= 2, "
                         f"got {axes}")
    pooled = [1] + axes
    rank = len(x.shape)
    x32 = tf.cast(x, tf.float32)
    shape = tf.shape(x32)
    if valid is None:
        per_frame = tf.cast(tf.reduce_prod(tf.gather(shape, axes)), tf.float32)
    else:
        valid = tf.cast(valid, tf.float32)
        one_frame = tf.broadcast_to(valid, tf.concat([[1, 1], shape[2:]], 0))
        per_frame = tf.reduce_sum(one_frame, axis=axes, keepdims=True)
    frames = tf.cast(tf.range(1, shape[1] + 1), tf.float32)
    total = tf.cumsum(tf.reduce_sum(x32, axis=axes, keepdims=True), axis=1)
    total_sq = tf.cumsum(tf.reduce_sum(tf.square(x32), axis=axes, keepdims=True), axis=1)
    if state is not None:
        before, before_sq, seen = (tf.cast(s, tf.float32) for s in state)
        total += _expand(before, pooled)
        total_sq += _expand(before_sq, pooled)
        frames = frames[None] + seen[:, None]  # (batch, frames)
    frames = tf.reshape(frames, tf.concat([[-1, shape[1]], tf.ones([rank - 2], tf.int32)], 0))
    count = frames * per_frame
    mean = total / count
    var = tf.maximum(total_sq / count - tf.square(mean), 0.0)
    y = (x32 - mean) * tf.math.rsqrt(var + epsilon)
    if valid is not None:
        y *= valid
    seen_after = tf.broadcast_to(tf.reshape(frames[:, -1], [-1]), shape[:1])
    new_state = (tf.squeeze(total[:, -1:], pooled), tf.squeeze(total_sq[:, -1:], pooled),
                 seen_after)
    return tf.cast(y, x.dtype), new_state


def _expand(statistic: tf.Tensor, axes: Sequence[int]) -> tf.Tensor:
    """A state statistic with size-1 ``axes`` put back (increasing order)."""
    for axis in axes:
        statistic = tf.expand_dims(statistic, axis)
    return statistic


def pooled_normalize(x: tf.Tensor, norm: str, axes: Sequence[int], epsilon: float,
                     valid: Optional[tf.Tensor] = None,
                     state: Optional[NormState] = None) -> Tuple[tf.Tensor, Optional[NormState]]:
    """The norm ``norm`` at a place where ``"chunk"`` pools over the frames
    (axis 1) and ``axes``: ``"chunk"`` over frames and ``axes``, ``"frame"``
    over ``axes`` per frame, ``"cumulative"`` over ``axes`` and the frames so
    far (:func:`cumulative_normalize`, starting from ``state``).

    Returns:
      ``(x normalised, the new state)``; the state is None unless ``norm``
      is ``"cumulative"``.
    """
    if norm == "cumulative":
        return cumulative_normalize(x, axes, epsilon, valid, state)
    return normalize(x, [1, *axes] if norm == "chunk" else axes, epsilon, valid), None
