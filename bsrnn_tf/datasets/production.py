"""Production of a stem: per-stem effect chains drawn per track.

A *chain* is a list of plain dicts, one per effect, e.g. ``{"effect":
"compressor", "threshold_db": -18.0, ...}`` (JSON, stored in a dataset's
metadata). :func:`draw_chain` draws one for a source; :func:`apply_chain`
runs it on ``(samples, 2)`` float32 audio and returns the same shape, finite
and at the input's RMS (the level of a stem is set elsewhere:
:mod:`bsrnn_tf.datasets.sampled_song`). Effects, in chain order:

=============  ================================================================
``highpass``   12 dB/octave high-pass (rumble cut), 30-150 Hz
``low_shelf``  low shelf, 60-250 Hz, -6..+6 dB
``peak``       one or two bell EQs, 150 Hz-6 kHz, -6..+6 dB, Q 0.5-2
``high_shelf`` high shelf (air / dull), 4-12 kHz, -6..+6 dB
``compressor`` threshold 0-18 dB below the stem's RMS, ratio 1.5-8, attack
               1-30 ms, release 40-300 ms (pedalboard's ``Compressor``)
``saturation`` parallel ``tanh`` soft clipping, drive 3-18 dB, mix 0.2-1
``chorus``     pedalboard ``Chorus`` (other, vocals)
``delay``      echo synced to the tempo (1/8, dotted 1/8, 1/4 note),
               feedback 0.05-0.45, mix 0.05-0.3
``reverb``     either ``plate`` (pedalboard's Freeverb ``Reverb``: room size,
               damping, width) or ``room`` (convolution with a synthetic
               stereo impulse response: RT60 0.15-2.5 s, pre-delay 0-40 ms,
               damped tail), wet 0.04-0.4
``width``      mid/side stereo width 0-1.4 (bass narrow, other wide)
=============  ================================================================

The chains run at the rendered songs' rate (pedalboard needs float32,
``(channels, samples)``; it is the PyPI package ``pedalboard``).
"""

from __future__ import annotations

import numpy as np

from bsrnn_tf.datasets.cache import require_module

# Per source: probability of each optional effect, and the stereo width range.
_PROBS = {
    "drums": {"highpass": 0.3, "low_shelf": 0.7, "peak": 0.6, "high_shelf": 0.6,
              "compressor": 0.85, "saturation": 0.35, "chorus": 0.0, "delay": 0.1,
              "reverb": 0.7},
    "bass": {"highpass": 0.6, "low_shelf": 0.6, "peak": 0.5, "high_shelf": 0.3,
             "compressor": 0.9, "saturation": 0.45, "chorus": 0.1, "delay": 0.05,
             "reverb": 0.25},
    "other": {"highpass": 0.6, "low_shelf": 0.4, "peak": 0.6, "high_shelf": 0.5,
              "compressor": 0.6, "saturation": 0.25, "chorus": 0.25, "delay": 0.3,
              "reverb": 0.8},
    "vocals": {"highpass": 0.85, "low_shelf": 0.3, "peak": 0.7, "high_shelf": 0.6,
               "compressor": 0.9, "saturation": 0.2, "chorus": 0.15, "delay": 0.45,
               "reverb": 0.9},
}
_WIDTH = {"drums": (0.6, 1.3), "bass": (0.0, 0.5), "other": (0.5, 1.4), "vocals": (0.0, 1.0)}
_LEVEL_DB = -20.0  # the chain sees every stem at this RMS (thresholds, drives)


def _pedalboard():
    return require_module("pedalboard", "pedalboard", "production effects")


def draw_chain(rng: np.random.Generator, source: str, tempo: float) -> list:
    """An effect chain for ``source`` (drums, bass, other, vocals) in a song
    at ``tempo`` bpm: a list of effect dicts in processing order."""
    probs, chain = _PROBS[source], []

    def on(name):
        return rng.random() < probs[name]

    u = rng.uniform
    if on("highpass"):
        chain.append({"effect": "highpass", "cutoff_hz": u(30, 60 if source == "bass" else 150)})
    if on("low_shelf"):
        chain.append({"effect": "low_shelf", "cutoff_hz": u(60, 250), "gain_db": u(-6, 6)})
    if on("peak"):
        for _ in range(int(rng.integers(1, 3))):
            chain.append({"effect": "peak", "cutoff_hz": float(np.exp(u(np.log(150),
                                                                         np.log(6000)))),
                          "gain_db": u(-6, 6), "q": u(0.5, 2.0)})
    if on("high_shelf"):
        chain.append({"effect": "high_shelf", "cutoff_hz": u(4000, 12000), "gain_db": u(-6, 6)})
    if on("compressor"):
        chain.append({"effect": "compressor", "threshold_db": _LEVEL_DB - u(0, 18),
                      "ratio": u(1.5, 8), "attack_ms": u(1, 30), "release_ms": u(40, 300)})
    if on("saturation"):
        chain.append({"effect": "saturation", "drive_db": u(3, 18), "mix": u(0.2, 1.0)})
    if on("chorus"):
        chain.append({"effect": "chorus", "rate_hz": u(0.2, 2.0), "depth": u(0.1, 0.4),
                      "mix": u(0.2, 0.5)})
    if on("delay"):
        beats = float(rng.choice([0.5, 0.75, 1.0]))
        chain.append({"effect": "delay", "seconds": beats * 60.0 / tempo,
                      "feedback": u(0.05, 0.45), "mix": u(0.05, 0.3)})
    if on("reverb"):
        wet = u(0.04, 0.4)
        if rng.random() < 0.5:
            chain.append({"effect": "reverb", "kind": "plate", "room_size": u(0.1, 0.95),
                          "damping": u(0.1, 0.9), "width": u(0.5, 1.0), "wet": wet})
        else:
            chain.append({"effect": "reverb", "kind": "room", "rt60": u(0.15, 2.5),
                          "predelay_ms": u(0, 40), "damping": u(0.2, 0.9), "wet": wet,
                          "seed": int(rng.integers(2 ** 31))})
    chain.append({"effect": "width", "width": u(*_WIDTH[source])})
    return chain


def room_impulse(rt60: float, predelay_ms: float, damping: float, seed: int,
                 sample_rate: int) -> np.ndarray:
    """A synthetic stereo room impulse response ``(samples, 2)`` float32:
    sparse early reflections over 5-80 ms, then decorrelated noise decaying
    by 60 dB in ``rt60`` seconds, low-passed more as it decays (``damping``
    0..1); unit energy. No direct sound (the wet part only)."""
    rng = np.random.default_rng(seed)
    n = int(sample_rate * (predelay_ms / 1e3 + rt60 * 1.1)) + 1
    t = np.arange(n) / sample_rate
    start = int(predelay_ms * 1e-3 * sample_rate)
    envelope = np.where(t >= predelay_ms / 1e3, 10 ** (-3 * (t - predelay_ms / 1e3) / rt60), 0.0)
    noise = rng.standard_normal((n, 2)) * envelope[:, None]
    for _ in range(int(rng.integers(4, 12))):  # early reflections
        at = start + int(rng.uniform(0.005, 0.08) * sample_rate)
        if at < n:
            noise[at] += rng.uniform(-1, 1, 2) * 3.0
    # Damping: a one-pole low-pass whose cut-off falls along the tail, done as
    # a blend of the noise and its smoothed version weighted by time.
    from scipy.signal import lfilter
    a = 0.2 + 0.75 * damping
    smooth = lfilter([1 - a], [1, -a], noise, axis=0)
    blend = np.clip(t / max(rt60, 1e-3), 0, 1)[:, None]
    ir = (1 - blend) * noise + blend * smooth
    return (ir / np.sqrt(np.sum(ir ** 2) / 2 + 1e-12)).astype(np.float32)


def _saturate(audio: np.ndarray, drive_db: float, mix: float) -> np.ndarray:
    g = 10 ** (drive_db / 20)
    return (1 - mix) * audio + mix * np.tanh(g * audio) / g


def _width(audio: np.ndarray, width: float) -> np.ndarray:
    mid = 0.5 * (audio[:, 0] + audio[:, 1])
    side = 0.5 * (audio[:, 0] - audio[:, 1]) * width
    return np.stack([mid + side, mid - side], axis=1)


def _plugin(pb, effect: dict):
    """The pedalboard plugin of an effect dict, or None for numpy effects."""
    kind = effect["effect"]
    if kind == "highpass":
        return pb.HighpassFilter(effect["cutoff_hz"])
    if kind == "low_shelf":
        return pb.LowShelfFilter(effect["cutoff_hz"], effect["gain_db"])
    if kind == "high_shelf":
        return pb.HighShelfFilter(effect["cutoff_hz"], effect["gain_db"])
    if kind == "peak":
        return pb.PeakFilter(effect["cutoff_hz"], effect["gain_db"], effect["q"])
    if kind == "compressor":
        return pb.Compressor(effect["threshold_db"], effect["ratio"], effect["attack_ms"],
                             effect["release_ms"])
    if kind == "chorus":
        return pb.Chorus(rate_hz=effect["rate_hz"], depth=effect["depth"], mix=effect["mix"])
    if kind == "delay":
        return pb.Delay(effect["seconds"], effect["feedback"], effect["mix"])
    if kind == "reverb" and effect["kind"] == "plate":
        return pb.Reverb(room_size=effect["room_size"], damping=effect["damping"],
                         wet_level=effect["wet"], dry_level=1.0 - effect["wet"],
                         width=effect["width"])
    return None


def apply_chain(audio: np.ndarray, chain: list, sample_rate: int) -> np.ndarray:
    """Runs ``chain`` on ``audio`` ``(samples, 2)``; returns float32 of the
    same shape at the input's RMS (silence stays silence)."""
    audio = np.asarray(audio, dtype=np.float32)
    rms = float(np.sqrt(np.mean(audio ** 2)))
    if rms < 1e-7:
        return audio.copy()
    scale = 10 ** (_LEVEL_DB / 20) / rms
    x = audio * scale
    pb = _pedalboard()
    pending = []  # consecutive pedalboard plugins, run as one board

    def flush(x):
        if pending:
            x = pb.Pedalboard(list(pending))(np.ascontiguousarray(x.T), sample_rate,
                                             reset=True).T
            pending.clear()
        return x

    for effect in chain:
        plugin = _plugin(pb, effect)
        if plugin is not None:
            pending.append(plugin)
            continue
        x = flush(x)
        kind = effect["effect"]
        if kind == "saturation":
            x = _saturate(x, effect["drive_db"], effect["mix"])
        elif kind == "reverb":  # room: convolution, wet/dry
            from scipy.signal import fftconvolve
            ir = room_impulse(effect["rt60"], effect["predelay_ms"], effect["damping"],
                              effect["seed"], sample_rate)
            wet = np.stack([fftconvolve(x[:, c], ir[:, c])[: len(x)] for c in range(2)], 1)
            x = (1 - effect["wet"]) * x + effect["wet"] * wet
        elif kind == "width":
            x = _width(x, effect["width"])
        else:
            raise ValueError(f"unknown effect {kind!r}")
    x = flush(x)
    out = np.nan_to_num(x[: len(audio)], nan=0.0, posinf=0.0, neginf=0.0) / scale
    out_rms = float(np.sqrt(np.mean(out ** 2)))
    return (out * (rms / out_rms if out_rms > 1e-9 else 1.0)).astype(np.float32)


def produce_stems(stems: dict, rng: np.random.Generator, tempo: float,
                  sample_rate: int) -> tuple:
    """Processes each ``{source: (samples, 2)}`` stem through a chain drawn
    for it; returns ``(processed stems, {source: chain})``. The mixture of
    the processed stems is their sum, as in MUSDB18."""
    chains = {s: draw_chain(rng, s, tempo) for s in stems}
    return {s: apply_chain(a, chains[s], sample_rate) for s, a in stems.items()}, chains
