"""STFT and inverse STFT (TensorFlow functions), with the complex spectrum
carried as real tensors.

Packed spectrum layout: ``(batch, frames, bins, channels * 2)`` float32, the
last axis ``[ch0.real, ch0.imag, ch1.real, ch1.imag, ...]``. Waveforms are
``(batch, samples, channels)``.

The transform is centred: the waveform is zero-padded by ``n_fft // 2`` on
both sides, so a signal of ``S`` samples gives ``1 + S // hop`` frames, and
the inverse divides by the overlap-added squared window, which reconstructs
every sample exactly (to float rounding) for a Hann window with
``hop <= n_fft / 2``.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


def hann_window(n_fft: int) -> np.ndarray:
    """Periodic Hann window, ``(n_fft,)`` float32."""
    n = np.arange(n_fft)
    return (0.5 - 0.5 * np.cos(2 * np.pi * n / n_fft)).astype(np.float32)


def inverse_rdft_matrix(n_fft: int) -> np.ndarray:
    """Matrix ``(2 * bins, n_fft)`` mapping ``[real parts, imag parts]`` of a
    one-sided spectrum to the real signal (the inverse real DFT as a matrix
    product: builtin-only in TFLite, unlike ``irfft``)."""
    bins = n_fft // 2 + 1
    k = np.arange(bins)[:, None]
    n = np.arange(n_fft)[None, :]
    scale = np.full((bins, 1), 2.0 / n_fft)
    scale[0] = 1.0 / n_fft
    scale[-1] = 1.0 / n_fft
    angle = 2 * np.pi * k * n / n_fft
    real = scale * np.cos(angle)
    imag = -scale * np.sin(angle)
    return np.concatenate([real, imag], axis=0).astype(np.float32)


def stft(waveform: tf.Tensor, n_fft: int, hop_length: int) -> tf.Tensor:
    """Centred STFT.

    Args:
      waveform: ``(batch, samples, channels)`` float32.
    Returns:
      packed spectrum ``(batch, 1 + samples // hop, n_fft // 2 + 1, channels * 2)``.
    """
    waveform = tf.cast(waveform, tf.float32)
    channels = waveform.shape[-1]
    x = tf.transpose(waveform, [0, 2, 1])  # (batch, channels, samples)
    pad = n_fft // 2
    x = tf.pad(x, [[0, 0], [0, 0], [pad, pad]])
    spec = tf.signal.stft(x, frame_length=n_fft, frame_step=hop_length, fft_length=n_fft,
                          window_fn=lambda length, dtype: tf.constant(hann_window(n_fft)),
                          pad_end=False)  # (batch, channels, frames, bins) complex64
    packed = tf.stack([tf.math.real(spec), tf.math.imag(spec)], axis=-1)
    packed = tf.transpose(packed, [0, 2, 3, 1, 4])  # (batch, frames, bins, channels, 2)
    shape = tf.shape(packed)
    return tf.reshape(packed, [shape[0], shape[1], shape[2], channels * 2])


def window_envelope(frames: int, n_fft: int, hop_length: int) -> np.ndarray:
    """Overlap-added squared window, ``((frames - 1) * hop + n_fft,)``."""
    window_sq = hann_window(n_fft).astype(np.float64) ** 2
    envelope = np.zeros((frames - 1) * hop_length + n_fft)
    for t in range(frames):
        envelope[t * hop_length:t * hop_length + n_fft] += window_sq
    return envelope


def istft(spectrum: tf.Tensor, n_fft: int, hop_length: int, length: int,
          use_matmul: bool = False) -> tf.Tensor:
    """Inverse of :func:`stft`.

    Args:
      spectrum: packed ``(batch, frames, bins, channels * 2)``; ``frames`` static.
      length: samples of the output (``<= (frames - 1) * hop``).
      use_matmul: inverse DFT as a matrix product (TFLite builtin ops only).
    Returns:
      ``(batch, length, channels)`` float32.
    """
    frames, bins, packed_channels = spectrum.shape[1], spectrum.shape[2], spectrum.shape[3]
    channels = packed_channels // 2
    batch = tf.shape(spectrum)[0]
    x = tf.reshape(tf.cast(spectrum, tf.float32), [batch, frames, bins, channels, 2])
    x = tf.transpose(x, [0, 3, 1, 4, 2])  # (batch, channels, frames, 2, bins)
    if use_matmul:
        flat = tf.reshape(x, [batch * channels * frames, 2 * bins])
        signal = tf.matmul(flat, tf.constant(inverse_rdft_matrix(n_fft)))
        signal = tf.reshape(signal, [batch, channels, frames, n_fft])
    else:
        signal = tf.signal.irfft(tf.complex(x[..., 0, :], x[..., 1, :]), fft_length=[n_fft])
    signal = signal * tf.constant(hann_window(n_fft))
    audio = tf.signal.overlap_and_add(signal, hop_length)  # (batch, channels, total)
    pad = n_fft // 2
    envelope = window_envelope(frames, n_fft, hop_length)[pad:pad + length]
    if np.any(envelope < 1e-6):
        raise ValueError(f"iSTFT: window envelope vanishes (n_fft {n_fft}, hop {hop_length})")
    audio = audio[:, :, pad:pad + length] * tf.constant((1.0 / envelope).astype(np.float32))
    return tf.transpose(audio, [0, 2, 1])
