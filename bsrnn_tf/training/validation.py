"""The references a validation score is read against, on the validation
chunks themselves (TF ops; the numpy versions for whole songs are in
:mod:`bsrnn_tf.metrics`)."""

from __future__ import annotations

import math
from typing import Sequence

import tensorflow as tf


def db_ratio(signal: float, error: float, eps: float = 1e-7) -> float:
    """``10 log10((signal + eps) / (error + eps))``: uSDR from summed energies."""
    return 10.0 * math.log10((signal + eps) / (error + eps))


def scaled_mixture(mixture: tf.Tensor, reference: tf.Tensor) -> tf.Tensor:
    """Each example's mixture times its least-squares gain for ``reference``,
    ``(batch, samples, channels)``."""
    gain = tf.math.divide_no_nan(tf.reduce_sum(reference * mixture, axis=[1, 2]),
                                 tf.reduce_sum(mixture * mixture, axis=[1, 2]))
    return gain[:, None, None] * mixture


def ideal_ratio_mask(model, mixture: tf.Tensor, sources: dict, targets: Sequence[str],
                     length: int) -> dict:
    """``{target: waveform}``: the oracle ideal ratio mask ``|S_t| / sum |S_k|``
    on ``model``'s STFT, applied to the mixture (``sources`` must be all of
    its sources)."""
    spectra = {t: model.stft(sources[t]) for t in targets}
    magnitude = {t: tf.sqrt(tf.square(x[..., 0::2]) + tf.square(x[..., 1::2]))
                 for t, x in spectra.items()}
    total = tf.add_n(list(magnitude.values()))
    mix_spec = model.stft(mixture)
    out = {}
    for t in targets:
        mask = tf.math.divide_no_nan(magnitude[t], total)
        mask = tf.reshape(tf.stack([mask, mask], axis=-1), tf.shape(mix_spec))
        out[t] = model.istft(mix_spec * mask, length)
    return out


def reference_usdr(model, valid_data, targets: Sequence[str], length: int) -> dict:
    """uSDR (dB) per target of the references of a validation set of
    ``(mixture, {target: source})`` batches, energies summed over chunks as
    the trainer's validation does: ``scaled_mixture`` (each chunk's mixture
    times its least-squares gain for the target: no separation) and, when
    the targets are all the sources of the mixture, ``oracle_irm`` (the
    ceiling of a mask model)."""
    from bsrnn_tf.data.musdb import SOURCES
    with_irm = set(SOURCES) <= set(targets)
    names = ["scaled_mixture"] + (["oracle_irm"] if with_irm else [])
    signal = {t: 0.0 for t in targets}
    error = {n: {t: 0.0 for t in targets} for n in names}
    for mixture, sources in valid_data:
        estimates = {"scaled_mixture": {t: scaled_mixture(mixture, sources[t]) for t in targets}}
        if with_irm:
            estimates["oracle_irm"] = ideal_ratio_mask(model, mixture, sources, targets, length)
        for t in targets:
            signal[t] += float(tf.reduce_sum(tf.square(sources[t])))
            for n in names:
                error[n][t] += float(tf.reduce_sum(tf.square(sources[t] - estimates[n][t])))
    return {n: {t: db_ratio(signal[t], error[n][t]) for t in targets} for n in names}
