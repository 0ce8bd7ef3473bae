"""Separation metrics.

- uSDR (utterance-level SDR, MDX 2021 "new SDR"), per track and source:
  ``10 log10((sum s^2 + eps) / (sum (s - s_hat)^2 + eps))`` over all samples
  and channels, ``eps = 1e-7``; averaged over tracks. A silent reference
  gives ``10 log10(eps / (error energy + eps))``: finite, 0 dB for a silent
  estimate, very negative for any non-silent one.
- cSDR (chunk-level, SiSEC 2018): museval BSSEval v4 SDR over 1 s windows
  and hops, median over windows (windows where museval gives NaN, e.g. a
  silent reference, are ignored; an exact estimate gives +inf), then median
  over tracks.
"""

from __future__ import annotations

import math
from typing import Dict, Mapping, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

EPS = 1e-7


# -- references that need no model -------------------------------------------------

def scaled_mixture(reference: np.ndarray, mixture: np.ndarray) -> np.ndarray:
    """The best-scaled mixture ``g * mixture`` with the least-squares gain
    ``g = <s, m> / <m, m>`` over all samples and channels: the best any
    estimate that does not separate can do (float64). A silent mixture
    gives zeros."""
    s = np.asarray(reference, np.float64)
    m = np.asarray(mixture, np.float64)
    power = float(np.sum(m * m))
    gain = float(np.sum(s * m)) / power if power > 0 else 0.0
    return gain * m


def ideal_ratio_mask_estimates(sources: Mapping[str, np.ndarray], n_fft: int,
                               hop_length: int) -> Dict[str, np.ndarray]:
    """The oracle ideal ratio mask: per bin and channel ``|S_target| / sum_k
    |S_k|`` applied to the mixture STFT (the sum of ``sources``), inverted with
    the same STFT: the ceiling of a real-valued mask model with these STFT
    settings.

    Args:
      sources: every source of the mixture, ``{name: (samples, channels)}``.
    Returns:
      ``{name: (samples, channels)}`` float32 estimates.
    """
    from bsrnn_tf.backends import numpy_istft, numpy_stft

    names = list(sources)
    length = np.asarray(sources[names[0]]).shape[0]
    spectra = {k: numpy_stft(np.asarray(v, np.float32)[None], n_fft, hop_length)[0]
               for k, v in sources.items()}
    magnitude = {k: np.hypot(v[..., 0::2], v[..., 1::2]) for k, v in spectra.items()}
    total = sum(magnitude.values())
    mixture = sum(spectra.values())
    out = {}
    for k in names:
        mask = np.where(total > 0, magnitude[k] / np.maximum(total, 1e-20), 0.0)
        packed = mixture * np.repeat(mask, 2, axis=-1)
        out[k] = numpy_istft(packed[None], n_fft, hop_length, length)[0]
    return out


def reference_scores(sources: Mapping[str, np.ndarray], targets: Sequence[str], n_fft: int,
                     hop_length: int) -> Dict[str, Dict[str, float]]:
    """uSDR (dB) of the two references for each target of one track:
    ``{"scaled_mixture": {target: dB}, "oracle_irm": {target: dB}}``.
    ``sources`` must hold every source of the mixture."""
    mixture = sum(np.asarray(v, np.float64) for v in sources.values())
    irm = ideal_ratio_mask_estimates(sources, n_fft, hop_length)
    return {"scaled_mixture": {t: usdr(sources[t], scaled_mixture(sources[t], mixture))
                               for t in targets},
            "oracle_irm": {t: usdr(sources[t], irm[t]) for t in targets}}


def usdr(reference: np.ndarray, estimate: np.ndarray, eps: float = EPS) -> float:
    """uSDR (dB) of one source of one track, ``(samples, channels)`` each."""
    reference = np.asarray(reference, np.float64)
    estimate = np.asarray(estimate, np.float64)
    if reference.shape != estimate.shape:
        raise ValueError(f"shapes differ: reference {reference.shape}, estimate {estimate.shape}")
    num = np.sum(reference ** 2) + eps
    den = np.sum((reference - estimate) ** 2) + eps
    return float(10.0 * np.log10(num / den))


def usdr_tf(reference: tf.Tensor, estimate: tf.Tensor, eps: float = EPS) -> tf.Tensor:
    """uSDR (dB) of each example of ``(batch, samples, channels)``: ``(batch,)``."""
    reference = tf.cast(reference, tf.float32)
    estimate = tf.cast(estimate, tf.float32)
    num = tf.reduce_sum(tf.square(reference), axis=[1, 2]) + eps
    den = tf.reduce_sum(tf.square(reference - estimate), axis=[1, 2]) + eps
    return 10.0 * tf.math.log(num / den) / math.log(10.0)


@keras.saving.register_keras_serializable(package="bsrnn_tf")
class USDR(keras.metrics.Metric):
    """Mean uSDR (dB) over the examples seen, for ``(batch, samples, channels)``."""

    def __init__(self, name: str = "usdr", eps: float = EPS, **kwargs):
        super().__init__(name=name, **kwargs)
        self.eps = eps
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        values = usdr_tf(y_true, y_pred, self.eps)
        if sample_weight is not None:
            weight = tf.cast(tf.reshape(sample_weight, [-1]), tf.float32)
            self.total.assign_add(tf.reduce_sum(values * weight))
            self.count.assign_add(tf.reduce_sum(weight))
        else:
            self.total.assign_add(tf.reduce_sum(values))
            self.count.assign_add(tf.cast(tf.size(values), tf.float32))

    def result(self):
        return tf.math.divide_no_nan(self.total, self.count)

    def get_config(self):
        return {**super().get_config(), "eps": self.eps}


def csdr(references: Mapping[str, np.ndarray], estimates: Mapping[str, np.ndarray],
         sample_rate: int = 44100, window_seconds: float = 1.0, hop_seconds: float = 1.0,
         mixture: Optional[np.ndarray] = None) -> Dict[str, float]:
    """cSDR (dB) per target of one track through museval (BSSEval v4).

    museval evaluates sources jointly and needs at least two; with a single
    target, pass ``mixture`` and the target is evaluated together with its
    complement (reference ``mixture - target``, estimate
    ``mixture - estimate``), whose score is not returned. An all-zero signal
    (which museval refuses) gets a -160 dB dither.

    Args:
      references, estimates: ``{target: (samples, channels)}``, same keys.
    Returns:
      ``{target: median SDR over windows}`` (NaN if every window is NaN).
    """
    import museval

    targets = list(references)
    if set(targets) != set(estimates):
        raise ValueError(f"targets differ: {sorted(references)} vs {sorted(estimates)}")
    refs = [np.asarray(references[t], np.float64) for t in targets]
    ests = [np.asarray(estimates[t], np.float64) for t in targets]
    if len(targets) == 1:
        if mixture is None:
            raise ValueError("museval needs two sources: pass the mixture to evaluate a single "
                             "target against its complement")
        mix = np.asarray(mixture, np.float64)
        refs.append(mix - refs[0])
        ests.append(mix - ests[0])
    # museval refuses all-zero signals; a -160 dB dither keeps them defined.
    dither = np.random.default_rng(0)
    refs = [x if np.any(x) else dither.standard_normal(x.shape) * 1e-8 for x in refs]
    ests = [x if np.any(x) else dither.standard_normal(x.shape) * 1e-8 for x in ests]
    window = int(window_seconds * sample_rate)
    hop = int(hop_seconds * sample_rate)
    sdr = museval.metrics.bss_eval(np.stack(refs), np.stack(ests), window=window,
                                            hop=hop, compute_permutation=False,
                                            bsseval_sources_version=False)[0]
    out = {}
    for i, target in enumerate(targets):
        values = np.asarray(sdr[i], np.float64)
        values = values[~np.isnan(values)]  # +inf (a perfect window) is kept
        out[target] = float(np.median(values)) if values.size else float("nan")
    return out


def aggregate_usdr(per_track: Sequence[Mapping[str, float]]) -> Dict[str, float]:
    """Mean over tracks of per-track uSDR, per target."""
    return _aggregate(per_track, np.mean)


def aggregate_csdr(per_track: Sequence[Mapping[str, float]]) -> Dict[str, float]:
    """Median over tracks of per-track cSDR, per target (NaN tracks ignored)."""
    return _aggregate(per_track, np.median)


def _aggregate(per_track, reduce) -> Dict[str, float]:
    targets = sorted({t for track in per_track for t in track})
    out = {}
    for t in targets:
        values = np.array([track[t] for track in per_track if t in track], np.float64)
        values = values[~np.isnan(values)]
        out[t] = float(reduce(values)) if values.size else float("nan")
    return out
