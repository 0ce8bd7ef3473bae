"""Parity of an exported artifact with the Keras model it came from: fixed
probe inputs (random chunks and chunks of a generated song), the Keras
outputs on them, and error figures of any backend against those."""

from __future__ import annotations

from typing import Dict

import numpy as np

from bsrnn_tf.inference.backends import Backend


def error_figures(reference: Dict[str, np.ndarray], estimate: Dict[str, np.ndarray]) -> dict:
    """Max absolute error over all targets and samples, and that error
    relative to the peak absolute reference value."""
    max_abs = max(float(np.max(np.abs(estimate[t] - reference[t]))) for t in reference)
    peak = max(float(np.max(np.abs(reference[t]))) for t in reference)
    return {"max_abs_error": max_abs, "max_rel_error": max_abs / max(peak, 1e-12)}


def sdr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    """``10 log10(sum ref^2 / sum (ref - est)^2)`` over all samples and
    channels, in dB (eps 1e-12)."""
    signal = float(np.sum(np.square(reference, dtype=np.float64)))
    noise = float(np.sum(np.square(reference - estimate, dtype=np.float64)))
    return 10.0 * np.log10((signal + 1e-12) / (noise + 1e-12))


def music_chunks(sample_rate: int, segment: int, channels: int, count: int,
                 seed: int = 0) -> tuple:
    """``count`` consecutive chunks ``(count, segment, channels)`` float32 of
    a generated song (:func:`bsrnn_tf.datasets.synth.render_song`).

    Returns:
      ``(name, chunks)``.
    """
    from bsrnn_tf.datasets.synth import mix_stems, render_song

    seconds = count * segment / sample_rate + 0.05
    name, stems = render_song(seed, "test", 0, seconds, sample_rate)
    audio = mix_stems(stems).astype(np.float32) / 32768.0
    audio = audio[:count * segment]
    audio = audio[:, :channels] if channels <= audio.shape[1] else np.repeat(
        audio[:, :1], channels, axis=1)
    return name, audio.reshape(count, segment, channels).astype(np.float32)


class ParityProbe:
    """Fixed inputs (random chunks, chunks of a generated song) and the Keras
    outputs on them; :meth:`measure` scores any backend against those.

    Args:
      reference: the Keras model as a :class:`Backend`.
      random_chunks, song_chunks: how many chunks of each kind.
    """

    def __init__(self, reference: Backend, random_chunks: int = 2, song_chunks: int = 2,
                 seed: int = 0):
        info = reference.info
        rng = np.random.default_rng(seed)
        shape = (random_chunks, info.segment_samples, info.channels)
        self.random = (0.1 * rng.standard_normal(shape)).astype(np.float32)
        self.song_name, self.song = music_chunks(info.sample_rate, info.segment_samples,
                                                 info.channels, song_chunks, seed)
        self.random_reference = reference(self.random)
        self.song_reference = reference(self.song)

    def measure(self, backend: Backend) -> dict:
        """Error figures on the random chunks and SDR (dB) on the song."""
        random_out = backend(self.random)
        song_out = backend(self.song)
        sdr = {t: round(sdr_db(self.song_reference[t], song_out[t]), 2)
               for t in self.song_reference}
        return {"random_chunks": {"count": len(self.random), "std": 0.1,
                                  **error_figures(self.random_reference, random_out)},
                "song": {"track": self.song_name, "chunks": len(self.song),
                         "sdr_db": sdr, "min_sdr_db": min(sdr.values()),
                         **error_figures(self.song_reference, song_out)}}
