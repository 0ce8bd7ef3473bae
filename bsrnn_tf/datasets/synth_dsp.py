"""Signal building blocks of the synthesized dataset (:mod:`bsrnn_tf.datasets.synth`).

Pitch to frequency, running phase, a naive sawtooth, ADSR envelopes on a
note grid, Butterworth filters, constant-power panning, one-shots placed at
event times and a noise reverb tail: the pieces that
:mod:`bsrnn_tf.datasets.synth_parts` renders the four sources from. All
work on float32 numpy arrays at a given sample rate.
"""

from __future__ import annotations

import numpy as np
from scipy import signal


def midi_to_hz(note) -> np.ndarray:
    return 440.0 * 2.0 ** ((np.asarray(note, dtype=np.float64) - 69.0) / 12.0)


def _pan(mono: np.ndarray, pan: float) -> np.ndarray:
    """Constant-power pan of ``(samples,)`` to ``(samples, 2)``; pan in [-1, 1]."""
    angle = (float(pan) + 1.0) * np.pi / 4.0
    gains = np.array([np.cos(angle), np.sin(angle)], dtype=np.float32)
    return mono.astype(np.float32)[:, None] * gains


def _note_grid(onsets: np.ndarray, n: int, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """Index of the latest note started at each sample and the time since.

    ``onsets`` are sorted times in seconds. Returns ``(index (n,) int, seconds
    since that onset (n,) float32)``; samples before the first onset get
    index 0 and a negative time.
    """
    starts = np.round(np.asarray(onsets) * sr).astype(np.int64)
    samples = np.arange(n)
    if starts.size == 0:  # no notes: silence
        return np.zeros(n, dtype=np.int64), np.full(n, -1.0, dtype=np.float32)
    index = np.clip(np.searchsorted(starts, samples, side="right") - 1, 0, None)
    since = ((samples - starts[index]) / sr).astype(np.float32)
    return index, since


def _envelope(since: np.ndarray, length: np.ndarray, attack: float, decay: float,
              sustain: float, release: float) -> np.ndarray:
    """ADSR envelope per sample given the time since the note onset and the
    note's held length (both seconds)."""
    att = np.clip(since / attack, 0.0, 1.0)
    body = sustain + (1.0 - sustain) * np.exp(-np.maximum(since, 0.0) / decay)
    tail = np.exp(-np.maximum(since - length, 0.0) / release)
    env = att * body * tail
    env[since < 0] = 0.0
    return env.astype(np.float32)


def _phase(freq: np.ndarray, sr: int) -> np.ndarray:
    """Running phase (radians) of a per-sample frequency track in Hz."""
    return (2.0 * np.pi / sr) * np.cumsum(freq, dtype=np.float64)


def _saw(phase: np.ndarray) -> np.ndarray:
    """Naive sawtooth in [-1, 1] of a phase in radians."""
    frac = np.mod(phase / (2.0 * np.pi), 1.0)
    return (2.0 * frac - 1.0).astype(np.float32)


def _lowpass(x: np.ndarray, cutoff: float, sr: int, order: int = 2) -> np.ndarray:
    sos = signal.butter(order, min(cutoff, 0.45 * sr), btype="low", fs=sr, output="sos")
    return signal.sosfilt(sos, x, axis=0).astype(np.float32)


def _bandpass(x: np.ndarray, low: float, high: float, sr: int) -> np.ndarray:
    sos = signal.butter(2, [low, min(high, 0.45 * sr)], btype="band", fs=sr, output="sos")
    return signal.sosfilt(sos, x, axis=0).astype(np.float32)


def _highpass(x: np.ndarray, cutoff: float, sr: int) -> np.ndarray:
    sos = signal.butter(2, cutoff, btype="high", fs=sr, output="sos")
    return signal.sosfilt(sos, x, axis=0).astype(np.float32)


def _reverb(stereo: np.ndarray, rng: np.random.Generator, sr: int, seconds: float,
            wet: float) -> np.ndarray:
    """Adds a decorrelated stereo tail (exponentially decaying noise)."""
    t = np.arange(int(seconds * sr)) / sr
    decay = np.exp(-6.9 * t / seconds)[:, None]
    ir = (rng.standard_normal((t.size, 2)) * decay).astype(np.float32)
    ir = _lowpass(ir, 6000.0, sr) / np.sqrt(np.sum(ir ** 2, axis=0, keepdims=True))
    tail = signal.oaconvolve(stereo, ir, axes=0)[: stereo.shape[0]]
    return (stereo + wet * tail).astype(np.float32)


def _place(events: np.ndarray, gains: np.ndarray, shot: np.ndarray, n: int,
           sr: int) -> np.ndarray:
    """Places a one-shot ``shot`` at event times (seconds) with gains: an
    impulse train convolved with the shot, ``(n,)``."""
    train = np.zeros(n, dtype=np.float32)
    idx = np.round(events * sr).astype(np.int64)
    keep = idx < n
    np.add.at(train, idx[keep], gains[keep])
    return signal.oaconvolve(train, shot)[:n].astype(np.float32)
