"""The one pre-processing path: loudness normalisation of the waveform.

The refined paper (section II.A) normalises the whole waveform by its RMS and
its peak before the STFT, and standardises each STFT chunk (that part is
``BandSplit(standardize=True)``, inside the model). The rule, used by
training, validation, evaluation and separation alike:

1. scale the waveform so that its RMS over all samples and channels is
   ``TARGET_RMS_DB`` dBFS (full scale 1.0);
2. if a sample would then exceed ``PEAK``, scale down instead so that the
   largest one is exactly ``PEAK`` (a loud transient wins over the RMS);
3. a silent or near-silent waveform (RMS below -160 dBFS) is left as it is.

"The whole waveform" is the song in separation and evaluation
(:func:`song_scale`; the estimates are divided by the same scale) and the
training or validation example in training (:func:`normalize_example`: the
mixture chunk sets the scale, and the sources get the same one, so the
mixture stays their sum and the loss is computed at the model's level). Both
put the model's input at about -20 dBFS, so examples of every loudness weigh
alike in the loss.
"""

from __future__ import annotations

import math
from typing import Dict, Iterable, Tuple

import numpy as np
import tensorflow as tf

TARGET_RMS_DB = -20.0
PEAK = 0.99
SILENCE_RMS = 1e-8  # -160 dBFS


def _scale_from(rms: float, peak: float, target_rms_db: float, peak_limit: float) -> float:
    if not math.isfinite(rms) or rms < SILENCE_RMS:
        return 1.0
    scale = 10.0 ** (target_rms_db / 20.0) / rms
    return peak_limit / peak if peak * scale > peak_limit else scale


def song_scale(audio: np.ndarray, target_rms_db: float = TARGET_RMS_DB, peak: float = PEAK,
               block: int = 1 << 18) -> float:
    """The factor the rule multiplies ``audio`` ``(samples, channels)`` by,
    computed ``block`` samples at a time (no copy of a long song)."""
    audio = np.asarray(audio, np.float32)
    blocks = (audio[start:start + block] for start in range(0, audio.shape[0] if audio.ndim
                                                             else 0, block))
    return song_scale_of_blocks(blocks, target_rms_db, peak)


def song_scale_of_blocks(blocks: Iterable[np.ndarray], target_rms_db: float = TARGET_RMS_DB,
                         peak: float = PEAK) -> float:
    """:func:`song_scale` of the song made of ``blocks`` (consecutive
    ``(samples, channels)`` pieces), so a song read from a file a block at a
    time never needs to be in memory whole."""
    energy, top, size = 0.0, 0.0, 0
    for piece in blocks:
        piece = np.asarray(piece, np.float64)
        if piece.size:
            energy += float(np.sum(piece * piece))
            top = max(top, float(np.max(np.abs(piece))))
            size += piece.size
    rms = math.sqrt(energy / size) if size else 0.0
    return _scale_from(rms, top, target_rms_db, peak)


def example_scale(mixture: tf.Tensor, target_rms_db: float = TARGET_RMS_DB,
                  peak: float = PEAK) -> tf.Tensor:
    """The rule's factor for each waveform of ``(..., samples, channels)``:
    ``(...)`` float32 (TF ops, for the tf.data pipeline)."""
    x = tf.cast(mixture, tf.float32)
    rms = tf.sqrt(tf.reduce_mean(tf.square(x), axis=[-2, -1]))
    top = tf.reduce_max(tf.abs(x), axis=[-2, -1])
    by_rms = 10.0 ** (target_rms_db / 20.0) / tf.maximum(rms, SILENCE_RMS)
    scale = tf.where(top * by_rms > peak, peak / tf.maximum(top, SILENCE_RMS), by_rms)
    return tf.where(rms < SILENCE_RMS, tf.ones_like(scale), scale)


def normalize_example(mixture: tf.Tensor, sources: Dict[str, tf.Tensor]
                      ) -> Tuple[tf.Tensor, Dict[str, tf.Tensor]]:
    """A training or validation example ``(mixture, {target: source})``,
    each ``(..., samples, channels)``, scaled by the mixture's factor."""
    scale = example_scale(mixture)[..., None, None]
    return mixture * scale, {t: s * scale for t, s in sources.items()}
