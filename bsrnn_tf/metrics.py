"""Separation metrics.

- uSDR (utterance-level SDR, MDX 2021 "new SDR"), per track and source:
  ``10 log10((sum s^2 + eps) / (sum (s - s_hat)^2 + eps))`` over all samples
  and channels, ``eps = 1e-7``; averaged over tracks. A silent reference
  gives ``10 log10(eps / (error energy + eps))``: finite, 0 dB for a silent
  estimate, very negative for any non-silent one (about -80 dB for an
  estimate 40 dB below a typical mixture), so one such track would move a
  mean over 24 tracks by about 3 dB. ``training/evaluate.py`` therefore
  leaves out of its means the (track, target) pairs whose reference is
  silent (:func:`silent_reference`: at least 60 dB below the mixture), and
  lists them, as museval leaves silent windows out of cSDR.
- cSDR (chunk-level, SiSEC 2018): museval BSSEval v4 SDR over 1 s windows
  and hops, median over windows (windows where museval gives NaN, e.g. a
  silent reference, are ignored; an exact estimate gives +inf), then median
  over tracks. The per-track part runs in ``training/evaluate.py``
  (``score_track``); :func:`aggregate_csdr` takes the median over tracks.
"""

from __future__ import annotations

from typing import Dict, Mapping, Sequence

import numpy as np

EPS = 1e-7


SILENT_REFERENCE_DB = -60.0  # a reference this far below its mixture is not scored


# -- references that need no model -------------------------------------------------

def silent_reference(reference: np.ndarray, mixture: np.ndarray,
                     below_db: float = SILENT_REFERENCE_DB) -> bool:
    """Whether ``reference`` is silent in ``mixture``: its energy (sum of
    squares over samples and channels) at least ``-below_db`` dB under the
    mixture's, or zero. Its uSDR would measure only the estimate's leakage."""
    energy = float(np.sum(np.square(np.asarray(reference, np.float64))))
    total = float(np.sum(np.square(np.asarray(mixture, np.float64))))
    return energy <= 0.0 or energy <= total * 10.0 ** (below_db / 10.0)


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
    from bsrnn_tf.spectral import numpy_istft, numpy_stft

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
