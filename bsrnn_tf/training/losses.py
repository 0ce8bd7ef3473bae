"""The BSRNN loss and its multi-task sum (refined BSRNN, eq. 2), and an
optional SDR term.

``LOSSES``: ``"bsrnn"`` is the authors' loss (L1 of the real and imaginary
parts of the spectrum plus L1 of the waveform). ``"bsrnn+sdr"`` adds
``sdr_weight`` times the negative uSDR (dB) of each example whose target is
not silent: a deviation from the paper, for short (CPU) training. Under L1
a model that cannot yet tell a target from the rest shrinks its estimate
towards silence (the median of an uncertain target is near zero), which
scores below simply scaling the mixture; the SDR term's optimum for the same
model is the least-squares scale, so what it learns shows from the start.
Measured: experiments/CPU_RECIPE.md.
"""

from __future__ import annotations

from typing import Mapping, Optional

import tensorflow as tf

from bsrnn_tf.config import LOSSES


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


SILENT_ENERGY = 1e-6  # a reference with less energy (sum of squares) is silent


def negative_sdr(est_wave: tf.Tensor, ref_wave: tf.Tensor, eps: float = 1e-7) -> tf.Tensor:
    """``-10 log10((sum s^2 + eps) / (sum (s - s_hat)^2 + eps))`` per example
    of ``(batch, samples, channels)``: ``(batch,)`` float32 (dB)."""
    ref = tf.cast(ref_wave, tf.float32)
    err = ref - tf.cast(est_wave, tf.float32)
    num = tf.reduce_sum(tf.square(ref), axis=[1, 2]) + eps
    den = tf.reduce_sum(tf.square(err), axis=[1, 2]) + eps
    return -10.0 * tf.math.log(num / den) / tf.math.log(10.0)


def target_loss(kind: str, est_spec: tf.Tensor, ref_spec: tf.Tensor, est_wave: tf.Tensor,
                ref_wave: tf.Tensor, sdr_weight: float = 0.1) -> tf.Tensor:
    """The per-example loss ``kind`` (one of :data:`LOSSES`), ``(batch,)``;
    the SDR term is left out for examples whose reference is silent (its
    SDR only says how loud the estimate is)."""
    loss = bsrnn_loss(est_spec, ref_spec, est_wave, ref_wave)
    if kind == "bsrnn":
        return loss
    if kind != "bsrnn+sdr":
        raise ValueError(f"unknown loss {kind!r}; choose one of {LOSSES}")
    active = tf.cast(tf.reduce_sum(tf.square(tf.cast(ref_wave, tf.float32)), axis=[1, 2])
                     > SILENT_ENERGY, tf.float32)
    return loss + sdr_weight * active * negative_sdr(est_wave, ref_wave)


def multitask_loss(per_target: Mapping[str, tf.Tensor],
                   weights: Optional[Mapping[str, float]] = None) -> tf.Tensor:
    """Sum over targets of (optionally weighted) per-target losses."""
    weights = weights or {}
    return tf.add_n([float(weights.get(t, 1.0)) * loss for t, loss in per_target.items()])
