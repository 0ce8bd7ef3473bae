"""STFT and inverse STFT (TensorFlow functions), with the complex spectrum
carried as real tensors.

Packed layout, window and centring as in the numpy reference
:mod:`bsrnn_tf.spectral` (which the tests hold these against): spectrum
``(batch, frames, bins, channels * 2)`` float32, last axis ``[ch0.real,
ch0.imag, ch1.real, ...]``; waveforms ``(batch, samples, channels)``. A
signal of ``S`` samples gives ``1 + S // hop`` frames, and the inverse
divides by the overlap-added squared window, which reconstructs every sample
(to float rounding) for a Hann window with ``hop <= n_fft / 2``.

Two framings (:data:`FRAMINGS`): ``"centre"`` (``n_fft // 2`` zeros on
both sides, the offline models') and ``"causal"`` (a causal model's,
:func:`causal_padding`: ``n_fft - hop`` zeros before the signal and frame
``t`` ending at sample ``(t + 1) * hop``, so frame ``t`` needs no sample
after the ``t``-th hop and a stream of hops computes exactly the same frames,
:mod:`bsrnn_tf.inference.streaming`).

The inverse has three ways to compute the inverse real DFT
(:data:`ISTFT_METHODS`), one for each place it runs: ``irfft`` (training and
TF Serving), ``rfft`` (TFLite builtin RFFT2D, power-of-two ``n_fft``) and
``matmul`` (a DFT matrix product, builtin in TFLite for any ``n_fft``).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from bsrnn_tf.spectral import FRAMINGS, causal_padding, num_bins, num_frames, window_envelope
from bsrnn_tf.spectral import hann_window as _hann64

__all__ = ["FRAMINGS", "ISTFT_METHODS", "causal_padding", "frames_spectrum", "hann_window",
           "inverse_rdft_matrix", "istft", "num_bins", "num_frames", "steady_envelope", "stft",
           "windowed_frames"]

ISTFT_METHODS = ("irfft", "rfft", "matmul")


def _padding(samples: int, n_fft: int, hop_length: int, framing: str) -> tuple:
    if framing not in FRAMINGS:
        raise ValueError(f"STFT framing must be one of {FRAMINGS}, got {framing!r}")
    if framing == "causal":
        return causal_padding(samples, n_fft, hop_length)
    return n_fft // 2, n_fft // 2


def hann_window(n_fft: int) -> np.ndarray:
    """Periodic Hann window, ``(n_fft,)`` float32."""
    return _hann64(n_fft).astype(np.float32)


def inverse_rdft_matrix(n_fft: int) -> np.ndarray:
    """Matrix ``(2 * bins, n_fft)`` mapping ``[real parts, imag parts]`` of a
    one-sided spectrum to the real signal (the inverse real DFT as a matrix
    product)."""
    bins = num_bins(n_fft)
    k = np.arange(bins)[:, None]
    n = np.arange(n_fft)[None, :]
    scale = np.full((bins, 1), 2.0 / n_fft)
    scale[0] = 1.0 / n_fft
    scale[-1] = 1.0 / n_fft
    angle = 2 * np.pi * k * n / n_fft
    real = scale * np.cos(angle)
    imag = -scale * np.sin(angle)
    return np.concatenate([real, imag], axis=0).astype(np.float32)


def stft(waveform: tf.Tensor, n_fft: int, hop_length: int, framing: str = "centre") -> tf.Tensor:
    """STFT, centred or causal (module docstring).

    Args:
      waveform: ``(batch, samples, channels)`` float32 (``samples`` static
        for the causal framing).
    Returns:
      packed spectrum ``(batch, frames, n_fft // 2 + 1, channels * 2)``,
      ``frames`` = :func:`num_frames` (centred: ``1 + samples // hop``).
    """
    if framing == "causal":
        left, right = _padding(waveform.shape[1], n_fft, hop_length, framing)
    else:
        left, right = _padding(0, n_fft, hop_length, framing)
    waveform = tf.pad(tf.cast(waveform, tf.float32), [[0, 0], [left, right], [0, 0]])
    return frames_spectrum(waveform, n_fft, hop_length)


def frames_spectrum(waveform: tf.Tensor, n_fft: int, hop_length: int) -> tf.Tensor:
    """STFT of ``waveform`` as it is (no padding): frame ``t`` covers samples
    ``[t * hop, t * hop + n_fft)``; packed ``(batch, frames, bins, C * 2)``.
    A stream calls it on one frame of ``n_fft`` samples."""
    channels = waveform.shape[-1]
    x = tf.transpose(tf.cast(waveform, tf.float32), [0, 2, 1])  # (batch, channels, samples)
    spec = tf.signal.stft(x, frame_length=n_fft, frame_step=hop_length, fft_length=n_fft,
                          window_fn=lambda length, dtype: tf.constant(hann_window(n_fft)),
                          pad_end=False)  # (batch, channels, frames, bins) complex64
    packed = tf.stack([tf.math.real(spec), tf.math.imag(spec)], axis=-1)
    packed = tf.transpose(packed, [0, 2, 3, 1, 4])  # (batch, frames, bins, channels, 2)
    shape = tf.shape(packed)
    return tf.reshape(packed, [shape[0], shape[1], shape[2], channels * 2])


def istft(spectrum: tf.Tensor, n_fft: int, hop_length: int, length: int,
          method: str = "irfft", framing: str = "centre") -> tf.Tensor:
    """Inverse of :func:`stft`.

    Args:
      spectrum: packed ``(batch, frames, bins, channels * 2)``; ``frames`` static.
      length: samples of the output (centred: ``<= (frames - 1) * hop``;
        causal: the length the spectrum was computed from).
      method: one of :data:`ISTFT_METHODS` (``rfft`` falls back to
        ``matmul`` when ``n_fft`` is not a power of two).
      framing: the :func:`stft` framing of ``spectrum``.
    Returns:
      ``(batch, length, channels)`` float32.
    """
    frames = spectrum.shape[1]
    signal = windowed_frames(spectrum, n_fft, method)  # (batch, channels, frames, n_fft)
    audio = tf.signal.overlap_and_add(signal, hop_length)  # (batch, channels, total)
    pad = _padding(length, n_fft, hop_length, framing)[0]
    envelope = window_envelope(frames, n_fft, hop_length)[pad:pad + length]
    if np.any(envelope < 1e-6):
        raise ValueError(f"iSTFT: window envelope vanishes (n_fft {n_fft}, hop {hop_length})")
    audio = audio[:, :, pad:pad + length] * tf.constant((1.0 / envelope).astype(np.float32))
    return tf.transpose(audio, [0, 2, 1])


def windowed_frames(spectrum: tf.Tensor, n_fft: int, method: str = "irfft") -> tf.Tensor:
    """The inverse DFT of every frame times the synthesis window, before
    overlap-add: packed ``(batch, frames, bins, C * 2)`` -> ``(batch, C,
    frames, n_fft)``; ``method`` as in :func:`istft`."""
    if method not in ISTFT_METHODS:
        raise ValueError(f"iSTFT method must be one of {ISTFT_METHODS}, got {method!r}")
    if method == "rfft" and n_fft & (n_fft - 1):
        method = "matmul"
    frames, bins, packed_channels = spectrum.shape[1], spectrum.shape[2], spectrum.shape[3]
    channels = packed_channels // 2
    batch = spectrum.shape[0] or tf.shape(spectrum)[0]  # static where known (TFLite)
    x = tf.reshape(tf.cast(spectrum, tf.float32), [batch, frames, bins, channels, 2])
    x = tf.transpose(x, [0, 3, 1, 4, 2])  # (batch, channels, frames, 2, bins)
    real, imag = x[..., 0, :], x[..., 1, :]
    if method == "matmul":
        flat = tf.reshape(x, [batch * channels * frames, 2 * bins])
        signal = tf.matmul(flat, tf.constant(inverse_rdft_matrix(n_fft)))
        signal = tf.reshape(signal, [batch, channels, frames, n_fft])
    elif method == "rfft":
        signal = _irfft_by_rfft(real, imag, n_fft)
    else:
        signal = tf.signal.irfft(tf.complex(real, imag), fft_length=[n_fft])
    return signal * tf.constant(hann_window(n_fft))


def steady_envelope(n_fft: int, hop_length: int) -> np.ndarray:
    """The overlap-added squared window where every overlapping frame is
    present, for the ``hop`` positions of one hop, ``(hop,)`` float64: what
    the iSTFT divides by everywhere under the causal framing, and in a
    stream."""
    window_sq = hann_window(n_fft).astype(np.float64) ** 2
    return np.array([window_sq[j::hop_length].sum() for j in range(hop_length)])


def _irfft_by_rfft(real, imag, n_fft: int):
    """The inverse real DFT of one-sided spectra ``(..., bins)`` through a
    forward real FFT (the Hartley identity), for TFLite, whose builtin RFFT2D
    has no inverse: with ``C = Re X - Im X`` over the Hermitian extension of
    ``X``, ``x[n] = (Re F[n] - Im F[n]) / N`` where ``F = FFT(C)``. Unlike the
    DFT matrix of ``matmul`` (16.8 MB at n_fft 2048) it adds no weights, so
    weight quantization cannot degrade it. As with ``irfft``, the imaginary
    parts of the DC and Nyquist bins are ignored."""
    half = n_fft // 2
    inner = real[..., 1:half] - imag[..., 1:half]
    mirrored = tf.reverse(real[..., 1:half] + imag[..., 1:half], axis=[-1])
    c = tf.concat([real[..., :1], inner, real[..., half:], mirrored], axis=-1)  # (..., n_fft)
    f = tf.signal.rfft(c)  # (..., half + 1)
    re, im = tf.math.real(f), tf.math.imag(f)
    signal = tf.concat([re - im, tf.reverse((re + im)[..., 1:half], axis=[-1])], axis=-1)
    return signal / float(n_fft)
