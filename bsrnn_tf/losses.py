"""The BSRNN loss and its multi-task sum (refined BSRNN, eq. 2)."""

from __future__ import annotations

from typing import Mapping, Optional

import tensorflow as tf


def bsrnn_loss(est_spec: tf.Tensor, ref_spec: tf.Tensor, est_wave: tf.Tensor,
               ref_wave: tf.Tensor) -> tf.Tensor:
    """Per-example BSRNN loss: mean L1 of the real and of the imaginary part of
    the estimated spectrum plus mean L1 of the waveform.

    Args:
      est_spec, ref_spec: packed spectra ``(batch, frames, bins, channels * 2)``
        (real and imaginary parts interleaved, so one L1 over the packed axis
        is the sum of the real-part and imaginary-part L1 terms, each averaged
        over ``frames * bins * channels``).
      est_wave, ref_wave: ``(batch, samples, channels)``.
    Returns:
      ``(batch,)`` float32.
    """
    spec_l1 = tf.reduce_mean(tf.abs(tf.cast(est_spec, tf.float32) - ref_spec), axis=[1, 2, 3])
    wave_l1 = tf.reduce_mean(tf.abs(tf.cast(est_wave, tf.float32) - ref_wave), axis=[1, 2])
    return 2.0 * spec_l1 + wave_l1


def multitask_loss(per_target: Mapping[str, tf.Tensor],
                   weights: Optional[Mapping[str, float]] = None) -> tf.Tensor:
    """Sum over targets of (optionally weighted) per-target losses."""
    weights = weights or {}
    return tf.add_n([float(weights.get(t, 1.0)) * loss for t, loss in per_target.items()])
