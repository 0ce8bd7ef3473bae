"""The numpy STFT: the reference for every TensorFlow transform and the
contract of the spectrum TFLite variant (an app that runs that variant does
this STFT, the complex product and this iSTFT itself).

Packed spectrum layout, here and in :mod:`bsrnn_tf.layers.stft`:
``(batch, frames, bins, channels * 2)``, the last axis ``[ch0.re, ch0.im,
ch1.re, ...]``; waveforms ``(batch, samples, channels)``. The transform is
centred (``n_fft // 2`` zeros on both sides, so ``S`` samples give
``1 + S // hop`` frames) with a periodic Hann window, and the inverse divides
the overlap-added frames by the overlap-added squared window.
"""

from __future__ import annotations

import numpy as np

# The STFT geometry, computed here only: bins of an ``n_fft``, the causal
# framing's padding, frames of a signal under either framing.
FRAMINGS = ("centre", "causal")


def num_bins(n_fft: int) -> int:
    """Bins of the one-sided spectrum of an ``n_fft``-point real DFT."""
    return n_fft // 2 + 1


def causal_padding(samples: int, n_fft: int, hop_length: int) -> tuple:
    """``(left, right)`` zeros of the causal framing of ``samples`` samples.

    ``left = n_fft - hop``: frame ``t`` covers samples ``[(t + 1) * hop -
    n_fft, (t + 1) * hop)``. Frames run until every sample is covered by all
    the frames that overlap it (``floor((samples - 1 + left) / hop) + 1``
    frames), so the inverse divides by the steady-state window envelope
    everywhere, as a stream does.
    """
    left = n_fft - hop_length
    frames = (samples - 1 + left) // hop_length + 1
    return left, (frames - 1) * hop_length + n_fft - left - samples


def num_frames(samples: int, n_fft: int, hop_length: int, framing: str = "centre") -> int:
    """Frames of the STFT of ``samples`` samples under ``framing`` (centred:
    ``1 + samples // hop``)."""
    if framing == "causal":
        left, right = causal_padding(samples, n_fft, hop_length)
        return 1 + (left + samples + right - n_fft) // hop_length
    return 1 + samples // hop_length


def hann_window(n_fft: int) -> np.ndarray:
    """Periodic Hann window ``(n_fft,)`` float64."""
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)


def window_envelope(frames: int, n_fft: int, hop_length: int) -> np.ndarray:
    """Overlap-added squared window ``((frames - 1) * hop + n_fft,)`` float64."""
    window_sq = hann_window(n_fft) ** 2
    envelope = np.zeros((frames - 1) * hop_length + n_fft)
    for t in range(frames):
        envelope[t * hop_length:t * hop_length + n_fft] += window_sq
    return envelope


def numpy_stft(waveform: np.ndarray, n_fft: int, hop_length: int) -> np.ndarray:
    """Centred STFT.

    Args:
      waveform: ``(batch, samples, channels)``.
    Returns:
      packed spectrum ``(batch, 1 + samples // hop, n_fft // 2 + 1,
      channels * 2)`` float32.
    """
    x = np.asarray(waveform, np.float64).transpose(0, 2, 1)  # (batch, channels, samples)
    pad = n_fft // 2
    x = np.pad(x, [(0, 0), (0, 0), (pad, pad)])
    frames = 1 + (x.shape[-1] - n_fft) // hop_length
    index = np.arange(frames)[:, None] * hop_length + np.arange(n_fft)[None, :]
    spec = np.fft.rfft(x[..., index] * hann_window(n_fft), axis=-1)  # (b, c, frames, bins)
    packed = np.stack([spec.real, spec.imag], axis=-1).transpose(0, 2, 3, 1, 4)
    return packed.reshape(*packed.shape[:3], -1).astype(np.float32)


def apply_packed_mask(mask: np.ndarray, spectrum: np.ndarray) -> np.ndarray:
    """Complex product of two packed arrays ``(..., channels * 2)``."""
    m = mask[..., 0::2] + 1j * mask[..., 1::2]
    x = spectrum[..., 0::2] + 1j * spectrum[..., 1::2]
    y = m * x
    return np.stack([y.real, y.imag], axis=-1).reshape(spectrum.shape).astype(np.float32)


def numpy_istft(spectrum: np.ndarray, n_fft: int, hop_length: int, length: int) -> np.ndarray:
    """Inverse of :func:`numpy_stft`.

    Args:
      spectrum: packed ``(batch, frames, bins, channels * 2)``.
      length: output samples.
    Returns:
      ``(batch, length, channels)`` float32.
    """
    batch, frames, bins, packed = spectrum.shape
    x = spectrum.reshape(batch, frames, bins, packed // 2, 2).astype(np.float64)
    complex_spec = (x[..., 0] + 1j * x[..., 1]).transpose(0, 3, 1, 2)  # (b, c, frames, bins)
    signal = np.fft.irfft(complex_spec, n=n_fft, axis=-1) * hann_window(n_fft)
    audio = np.zeros(signal.shape[:2] + ((frames - 1) * hop_length + n_fft,))
    for t in range(frames):
        audio[..., t * hop_length:t * hop_length + n_fft] += signal[:, :, t]
    pad = n_fft // 2
    envelope = window_envelope(frames, n_fft, hop_length)[pad:pad + length]
    audio = audio[..., pad:pad + length] / np.maximum(envelope, 1e-10)
    return audio.transpose(0, 2, 1).astype(np.float32)
