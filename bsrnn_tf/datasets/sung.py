"""Vocals with words: a lead sung from speech-synthesised syllables.

**Not a recording of singing.** Every note of a vocal part gets a word
(one syllable, from a small per-song vocabulary so that phrases repeat);
the word is spoken by ``espeak-ng`` (Debian package ``espeak-ng``) in one of
its voices, analysed with the WORLD vocoder (PyPI ``pyworld``: pitch,
spectral envelope, aperiodicity), and resynthesised at the note's pitch and
length:

* timing: the consonants before and after the vowel keep their spoken
  length, the voiced nucleus is stretched over the rest of the note;
* pitch: the note's frequency with a glide from the previous note when the
  line is legato (40-120 ms), vibrato (4.5-6.5 Hz, 10-60 cents) that sets in
  after 150-350 ms, and a slow random drift of a few cents; unvoiced
  frames stay unvoiced, so consonants remain noise;
* voice: a formant shift per song (spectral envelope warped by 0.85-1.2)
  on top of the espeak voice variant, and a little breath noise above
  10 kHz (espeak speaks at 22.05 kHz).

:func:`render_sung` plays a :class:`~bsrnn_tf.datasets.score.Part` and
returns ``(samples, 2)`` float32 (mono in both channels).
"""

from __future__ import annotations

import functools
import os
import subprocess
import tempfile

import numpy as np

from bsrnn_tf.datasets.cache import GenerationError, require_module, require_program

ESPEAK = "espeak-ng"
SPEECH_RATE = 22050
FRAME_MS = 5.0
# espeak-ng voice variants: training draws from the first list, the produced
# test split from the second (never in training).
TRAIN_VOICES = ("en-us+f1", "en-us+f2", "en-us+f3", "en-us+f5", "en-us+m1", "en-us+m2",
                "en-gb+m4", "en-gb+f2", "en-us+m6", "en-gb+klatt2", "en-us+Annie",
                "en-us+belinda")
TEST_VOICES = ("en-us+f4", "en-gb+m3", "en-us+m7")
WORDS = ("love", "night", "heart", "fire", "light", "rain", "home", "road", "dream", "sky",
         "gone", "stay", "run", "fall", "hold", "time", "sun", "cold", "blue", "down", "high",
         "free", "way", "know", "feel", "call", "burn", "find", "lost", "shine", "more",
         "dance", "slow", "fade", "wild", "sea", "stone", "gold", "star", "moon", "wait",
         "take", "give", "soul", "kiss", "dark", "break", "rise", "sleep", "wake", "song",
         "sing", "cry", "fly", "sweet", "town", "street", "face", "eyes", "hand", "touch",
         "yeah", "oh", "baby", "ah", "you", "me", "we", "all", "now", "here", "there")


def find_espeak() -> str:
    return require_program(ESPEAK, "espeak-ng")


def _world():
    return require_module("pyworld", "pyworld", "sung vocals")


@functools.lru_cache(maxsize=1024)
def analyse_word(word: str, voice: str, speed: int) -> tuple:
    """espeak-ng speaks ``word``; returns WORLD's ``(f0 (frames,), spectral
    envelope (frames, bins), aperiodicity (frames, bins))`` of it, silence
    at both ends trimmed, at ``SPEECH_RATE`` and ``FRAME_MS``."""
    import soundfile as sf

    with tempfile.TemporaryDirectory(prefix="bsrnn-sung-") as work:
        out = os.path.join(work, "w.wav")
        done = subprocess.run([find_espeak(), "-v", voice, "-s", str(speed), "-w", out, word],
                              stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if done.returncode != 0 or not os.path.isfile(out):
            raise GenerationError(f"espeak-ng failed on {word!r} ({voice}): "
                                  f"{done.stderr.strip()[-300:]}")
        x, rate = sf.read(out, dtype="float64")
    if rate != SPEECH_RATE:
        raise GenerationError(f"espeak-ng wrote {rate} Hz, expected {SPEECH_RATE}")
    loud = np.flatnonzero(np.abs(x) > 0.01 * np.abs(x).max())
    x = np.ascontiguousarray(x[loud[0]: loud[-1] + 1]) if loud.size else x
    pw = _world()
    f0, t = pw.dio(x, rate, frame_period=FRAME_MS, f0_floor=60.0, f0_ceil=600.0)
    f0 = pw.stonemask(x, f0, t, rate)
    sp = pw.cheaptrick(x, f0, t, rate)
    ap = pw.d4c(x, f0, t, rate)
    return f0, sp, ap


def frame_map(voiced: np.ndarray, frames: int) -> np.ndarray:
    """Source frame index for each of ``frames`` output frames: the
    unvoiced onset and coda (consonants) at their own length, at most 40 %
    of the note each, the voiced nucleus stretched over the rest."""
    n = len(voiced)
    idx = np.flatnonzero(voiced)
    if idx.size == 0 or frames <= 2:
        return np.linspace(0, n - 1, frames)
    first, last = int(idx[0]), int(idx[-1])
    onset, coda = min(first, int(0.4 * frames)), min(n - 1 - last, int(0.4 * frames))
    middle = frames - onset - coda
    parts = [np.linspace(0, first, onset, endpoint=False),
             np.linspace(first, last, middle),
             np.linspace(last + 1, n - 1, coda)]
    return np.concatenate(parts)


def pitch_curve(rng: np.random.Generator, pitch: float, frames: int,
                previous: float | None) -> np.ndarray:
    """Frequency (Hz) per frame of a sung note of MIDI ``pitch``: glide from
    ``previous`` (MIDI, legato) or none, delayed vibrato, slow drift."""
    t = np.arange(frames) * FRAME_MS / 1e3
    semis = np.full(frames, float(pitch))
    if previous is not None:
        glide = rng.uniform(0.04, 0.12)
        w = np.clip(t / glide, 0, 1)
        semis += (previous - pitch) * (1 - (3 * w ** 2 - 2 * w ** 3))
    onset, rate, depth = rng.uniform(0.15, 0.35), rng.uniform(4.5, 6.5), rng.uniform(10, 60)
    ramp = np.clip((t - onset) / 0.2, 0, 1)
    semis += depth / 100 * ramp * np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi))
    drift = np.cumsum(rng.normal(0, 0.3, frames))
    semis += 0.05 * (drift - drift.mean()) / (np.std(drift) + 1e-9)
    return 440.0 * 2 ** ((semis - 69) / 12)


def warp_envelope(sp: np.ndarray, factor: float) -> np.ndarray:
    """Spectral envelope with its formants moved by ``factor`` (> 1 up)."""
    bins = np.arange(sp.shape[1])
    src = np.clip(bins / factor, 0, sp.shape[1] - 1)
    return np.stack([np.interp(src, bins, row) for row in sp])


def sing_note(word: str, voice: str, pitch: int, seconds: float, rng: np.random.Generator,
              previous: float | None, formant: float, speed: int) -> np.ndarray:
    """One sung note at ``SPEECH_RATE``, mono float64 of about ``seconds``."""
    f0, sp, ap = analyse_word(word, voice, speed)
    frames = max(4, int(round(seconds * 1e3 / FRAME_MS)))
    src = np.round(frame_map(f0 > 0, frames)).astype(int)
    voiced = f0[src] > 0
    curve = np.where(voiced, pitch_curve(rng, pitch, frames, previous), 0.0)
    env = warp_envelope(sp[src], formant) if abs(formant - 1) > 1e-3 else sp[src]
    y = _world().synthesize(np.ascontiguousarray(curve), np.ascontiguousarray(env),
                            np.ascontiguousarray(ap[src]), SPEECH_RATE, FRAME_MS)
    fade = min(len(y) // 2, int(0.008 * SPEECH_RATE))
    if fade:
        ramp = np.linspace(0, 1, fade)
        y[:fade] *= ramp
        y[-fade:] *= ramp[::-1]
    return y


def lyrics(rng: np.random.Generator, notes: list) -> dict:
    """``{note start (beats): word}``: a vocabulary of 8-16 words per song,
    cycled so that lines repeat."""
    vocab = [WORDS[i] for i in rng.choice(len(WORDS), int(rng.integers(8, 17)), replace=False)]
    line = [vocab[int(rng.integers(len(vocab)))] for _ in range(int(rng.integers(4, 9)))]
    return {round(n.start, 4): line[i % len(line)] if rng.random() < 0.8 else
            vocab[int(rng.integers(len(vocab)))] for i, n in enumerate(notes)}


def render_sung(part, tempo: float, rng: np.random.Generator, num_samples: int,
                sample_rate: int, voice: str, words: dict) -> np.ndarray:
    """Sings the notes of ``part`` (beats, MIDI pitches) with the espeak
    ``voice`` and ``words`` (``{start beat: word}``, ``"ah"`` where none);
    ``(num_samples, 2)`` float32."""
    from scipy.signal import butter, resample_poly, sosfilt

    speech = np.zeros(int(np.ceil(num_samples * SPEECH_RATE / sample_rate)) + 1)
    formant, speed = rng.uniform(0.85, 1.2), int(rng.integers(120, 200))
    seconds_per_beat, previous, last_end = 60.0 / tempo, None, -1.0
    for note in sorted(part.notes, key=lambda n: n.start):
        start_s = note.start * seconds_per_beat + rng.normal(0, 0.008)
        legato = previous if start_s - last_end < 0.1 else None
        y = sing_note(words.get(round(note.start, 4), "ah"), voice, note.pitch,
                      note.length * seconds_per_beat, rng, legato, formant, speed)
        at = max(0, int(start_s * SPEECH_RATE))
        y = y[: max(0, len(speech) - at)] * (0.5 + note.velocity / 254)
        speech[at: at + len(y)] += y
        previous, last_end = float(note.pitch), start_s + len(y) / SPEECH_RATE
    audio = resample_poly(speech, sample_rate, SPEECH_RATE)[:num_samples]
    audio = np.pad(audio, (0, num_samples - len(audio)))
    if sample_rate > 2 * 10500:  # breath above espeak's band, following the voice
        env = np.convolve(np.abs(audio), np.ones(441) / 441, mode="same")
        sos = butter(4, 10000, "highpass", fs=sample_rate, output="sos")
        audio += 0.06 * env * sosfilt(sos, rng.standard_normal(num_samples))
    return np.repeat(audio[:, None], 2, axis=1).astype(np.float32)
