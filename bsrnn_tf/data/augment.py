"""Augmentations of training audio, as pure functions of TF tensors.

Audio is ``(..., samples, channels)`` float32: one source ``(samples, 2)``
or a stack of sources ``(sources, samples, 2)``; every source gets its own
random draw. Randomness comes from stateless ops and an explicit ``seed``
(integer tensor of shape ``(2,)``), so the result is a function of the seed.

Gain, channel swap and silencing are linear maps of the channels: each is
drawn as a ``(..., 2, 2)`` channel matrix, ``augment`` multiplies the
matrices (tiny) and applies the product to the audio in one pass (a
channel-axis reverse or gather costs about ten times as much on CPU).
Random remixing (each source of an example from a different track) happens
where chunks are drawn, in :mod:`bsrnn_tf.data.pipeline`.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

_IDENTITY = ((1.0, 0.0), (0.0, 1.0))
_SWAP = ((0.0, 1.0), (1.0, 0.0))


def lead_shape(audio: tf.Tensor) -> tf.Tensor:
    """Shape of ``audio`` without its (samples, channels) axes."""
    return tf.shape(audio)[:-2]


def apply_channel_matrix(audio: tf.Tensor, matrix: tf.Tensor) -> tf.Tensor:
    """``audio (..., samples, C) @ matrix (..., C, C)``: output channel j is
    ``sum_i audio[..., i] * matrix[..., i, j]``."""
    return tf.linalg.matmul(audio, matrix)


def db_to_gain(db: tf.Tensor) -> tf.Tensor:
    """Amplitude factor of a level change in dB."""
    return tf.pow(tf.constant(10.0, db.dtype), db / 20.0)


def gain_matrix(seed: tf.Tensor, shape: tf.Tensor, max_db: float) -> tf.Tensor:
    """Gain uniform in [-max_db, +max_db] dB per entry of ``shape``,
    as ``(*shape, 2, 2)`` diagonal matrices."""
    db = tf.random.stateless_uniform(shape, seed, -max_db, max_db)
    return db_to_gain(db)[..., None, None] * tf.constant(_IDENTITY)


def swap_matrix(seed: tf.Tensor, shape: tf.Tensor, prob: float = 0.5) -> tf.Tensor:
    """Left/right swap with probability ``prob`` per entry of ``shape``,
    as ``(*shape, 2, 2)`` permutation matrices."""
    swap = tf.random.stateless_uniform(shape, seed) < prob
    return tf.where(swap[..., None, None], tf.constant(_SWAP), tf.constant(_IDENTITY))


def silence_matrix(seed: tf.Tensor, shape: tf.Tensor, prob: float,
                   mask=True) -> tf.Tensor:
    """Zero with probability ``prob`` per entry of ``shape`` where ``mask``
    (bool, broadcast to ``shape``) is true, else identity; ``(*shape, 2, 2)``."""
    silenced = tf.logical_and(tf.random.stateless_uniform(shape, seed) < prob,
                              tf.cast(mask, tf.bool))
    keep = 1.0 - tf.cast(silenced, tf.float32)
    return keep[..., None, None] * tf.constant(_IDENTITY)


def augmentation_matrix(seed: tf.Tensor, shape: tf.Tensor, data_cfg, is_target=False) -> tf.Tensor:
    """Product of the channel matrices switched on in ``data_cfg`` (a
    ``DataConfig``): gain (``gain_db > 0``), swap (``channel_swap``),
    silencing (``silence_target_prob > 0``) of the entries that are targets.
    ``is_target``: bool, or one bool per entry of the last axis of ``shape``.
    Returns ``(*shape, 2, 2)``."""
    seeds = tf.random.experimental.stateless_split(seed, 3)
    matrix = tf.broadcast_to(tf.constant(_IDENTITY), tf.concat([shape, [2, 2]], 0))
    if data_cfg.gain_db > 0:
        matrix = matrix @ gain_matrix(seeds[0], shape, data_cfg.gain_db)
    if data_cfg.channel_swap:
        matrix = matrix @ swap_matrix(seeds[1], shape)
    if data_cfg.silence_target_prob > 0 and np.any(is_target):
        matrix = matrix @ silence_matrix(seeds[2], shape, data_cfg.silence_target_prob,
                                         is_target)
    return matrix


def augment(audio: tf.Tensor, seed: tf.Tensor, data_cfg, is_target=False) -> tf.Tensor:
    """Applies the augmentations of ``data_cfg`` to ``audio`` ``(..., samples,
    2)``; ``is_target`` as in :func:`augmentation_matrix`."""
    return apply_channel_matrix(audio, augmentation_matrix(seed, lead_shape(audio), data_cfg,
                                                           is_target))


def subchunk_rms_db(chunk: tf.Tensor, subchunks: int) -> tf.Tensor:
    """RMS level in dB (full scale 1.0) of ``subchunks`` equal sub-chunks of
    ``chunk`` ``(samples, channels)``, over both channels; ``(subchunks,)``.
    Trailing samples that do not fill a sub-chunk are ignored; digital
    silence gives -inf."""
    length = tf.shape(chunk)[0] // subchunks
    parts = tf.reshape(chunk[: length * subchunks], [subchunks, -1])
    power = tf.reduce_mean(tf.square(parts), axis=1)
    return 10.0 * tf.math.log(power) / tf.math.log(tf.constant(10.0, power.dtype))


def source_activity(chunk: tf.Tensor, track_rms_db: tf.Tensor, subchunks: int = 10,
                    relative_db: float = -20.0, floor_db: float = -60.0,
                    min_active: float = 0.5) -> tf.Tensor:
    """Whether a source is active in ``chunk`` ``(samples, channels)``.

    A sub-chunk is active when its RMS exceeds ``max(track_rms_db +
    relative_db, floor_db)`` dB, ``track_rms_db`` being the RMS of the whole
    source in its track; the chunk is active when at least ``min_active`` of
    its ``subchunks`` sub-chunks are. Returns a scalar bool tensor.
    """
    threshold = tf.maximum(tf.cast(track_rms_db, chunk.dtype) + relative_db, floor_db)
    active = tf.cast(subchunk_rms_db(chunk, subchunks) > threshold, tf.float32)
    return tf.reduce_mean(active) >= min_active
