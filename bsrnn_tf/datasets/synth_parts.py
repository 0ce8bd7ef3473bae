"""The synthesized songs' music: a plan per song and a renderer per source.

:func:`plan_song` draws a key, mode, tempo and chord progression
(:class:`SongPlan`); :func:`render_drums` (kick, snare, hats and an open
hat made of pitched transients and shaped noise), :func:`render_bass` (a
line on the chord roots), :func:`render_other` (two or three of pad,
arpeggio and electric-piano keys) and :func:`render_vocals` (a harmonic
source with vibrato and glides shaped by vowel formants, in phrases with
rests) each turn it into ``(samples, 2)`` float32 audio with its own stereo
placement. Levelling, quantising and writing the songs is
:mod:`bsrnn_tf.datasets.synth`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

from bsrnn_tf.datasets.synth_dsp import (_bandpass, _envelope, _highpass, _lowpass, _note_grid,
                                         _pan, _phase, _place, _reverb, _saw, midi_to_hz)

_NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10)
# Progressions as scale degrees (0-based), one chord per bar.
_PROGRESSIONS = ((0, 4, 5, 3), (0, 5, 3, 4), (0, 3, 4, 4), (5, 3, 0, 4),
                 (0, 3, 0, 4), (0, 6, 5, 4), (0, 2, 3, 4), (0, 5, 1, 4))
# Vowel formants (Hz) and bandwidths (Hz): a, e, i, o, u.
_FORMANTS = np.array([[800, 1150, 2900], [450, 1900, 2600], [300, 2300, 3000],
                      [480, 850, 2600], [330, 700, 2450]], dtype=np.float32)
_FORMANT_BW = np.array([90.0, 110.0, 160.0], dtype=np.float32)
_WORDS_A = ("Amber", "Blue", "Copper", "Distant", "Electric", "Golden", "Hollow",
            "Iron", "Lunar", "Misty", "Neon", "Quiet", "Silver", "Velvet")
_WORDS_B = ("Harbor", "Engine", "Garden", "Signal", "River", "Machine", "Lantern",
            "Valley", "Station", "Orbit", "Meadow", "Circuit", "Tide", "Window")


@dataclass
class SongPlan:
    """Musical decisions of one song (times in seconds, pitches in MIDI)."""

    name: str
    tonic: int                 # MIDI note of the key's tonic in octave 3
    scale: tuple
    tempo: float               # beats per minute
    chords: np.ndarray         # (bars, 3) MIDI notes of each bar's triad
    num_samples: int
    sample_rate: int

    @property
    def step(self) -> float:
        """Duration of a sixteenth note, seconds."""
        return 60.0 / self.tempo / 4.0

    @property
    def bar(self) -> float:
        return 16 * self.step

    @property
    def seconds(self) -> float:
        return self.num_samples / self.sample_rate


# ------------------------------------------------------------------ planning


def plan_song(rng: np.random.Generator, subset: str, index: int, seconds: float,
              sample_rate: int) -> SongPlan:
    """Draws key, mode, tempo and chord progression of one song."""
    key = int(rng.integers(12))
    minor = bool(rng.random() < 0.5)
    scale = _MINOR if minor else _MAJOR
    tempo = float(rng.integers(78, 150))
    progression = _PROGRESSIONS[int(rng.integers(len(_PROGRESSIONS)))]
    tonic = 48 + key  # C3..B3
    bar_seconds = 4 * 60.0 / tempo
    bars = int(np.ceil(seconds / bar_seconds)) + 1
    degrees = np.array([progression[b % len(progression)] for b in range(bars)])
    triads = np.stack([degrees, degrees + 2, degrees + 4], axis=1)
    octave, step = np.divmod(triads, 7)
    chords = tonic + 12 * octave + np.asarray(scale)[step]
    word_a = _WORDS_A[int(rng.integers(len(_WORDS_A)))]
    word_b = _WORDS_B[int(rng.integers(len(_WORDS_B)))]
    mode = "minor" if minor else "major"
    name = (f"BSRNN Synth {subset.capitalize()} {index:03d} - {word_a} {word_b} "
            f"({_NOTE_NAMES[key]} {mode}, {int(tempo)} bpm)")
    return SongPlan(name=name, tonic=tonic, scale=scale, tempo=tempo, chords=chords,
                    num_samples=int(round(seconds * sample_rate)), sample_rate=sample_rate)


# ------------------------------------------------------------------- drums


def _kick(sr: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(0.35 * sr)) / sr
    f_end = rng.uniform(42, 60)
    freq = f_end + rng.uniform(90, 160) * np.exp(-t / 0.03)
    body = np.sin(_phase(freq, sr)) * np.exp(-t / rng.uniform(0.12, 0.25))
    click = rng.standard_normal(t.size) * np.exp(-t / 0.002) * 0.3
    return (body + click).astype(np.float32)


def _snare(sr: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(0.3 * sr)) / sr
    tone = np.sin(2 * np.pi * rng.uniform(170, 230) * t) * np.exp(-t / 0.05)
    noise = _bandpass(rng.standard_normal(t.size), 1200, 9000, sr)
    noise = noise * np.exp(-t / rng.uniform(0.06, 0.12)) * 2.0
    return (0.6 * tone + noise).astype(np.float32)


def _hat(sr: int, rng: np.random.Generator, decay: float) -> np.ndarray:
    t = np.arange(int(6 * decay * sr)) / sr
    noise = _highpass(rng.standard_normal(t.size), rng.uniform(6000, 9000), sr)
    metal = sum(np.sign(np.sin(2 * np.pi * f * t)) for f in rng.uniform(3000, 9000, 4))
    metal = _highpass(metal, 5000, sr) / 4.0
    return ((noise + 0.5 * metal) * np.exp(-t / decay)).astype(np.float32)


def render_drums(plan: SongPlan, rng: np.random.Generator) -> np.ndarray:
    """Kick, snare, closed and open hats on a sixteenth grid, ``(n, 2)``."""
    sr, n = plan.sample_rate, plan.num_samples
    steps = int(np.ceil(plan.seconds / plan.step)) + 1
    pos = np.arange(steps) % 16
    kick_pattern = (pos % 8 == 0) | ((rng.random(16)[pos] < 0.18) & (pos % 2 == 0))
    snare_pattern = (pos % 8 == 4) | (rng.random(16)[pos] < 0.08)
    hat_div = int(rng.choice([1, 2, 2, 4]))
    hat_pattern = (pos % hat_div == 0)
    open_pattern = (pos == 14) & (rng.random(steps) < 0.5)
    hat_pattern &= ~open_pattern
    # Drums drop out now and then (an intro bar, a break).
    bar_of_step = np.arange(steps) // 16
    bars = bar_of_step.max() + 1
    playing = rng.random(bars) > 0.12
    if rng.random() < 0.5:
        playing[0] = False
    playing = playing[bar_of_step]
    times = np.arange(steps) * plan.step + rng.normal(0, 0.003, steps).clip(-0.008, 0.008)
    times = np.maximum(times, 0.0)
    parts = (
        (kick_pattern, _kick(sr, rng), 1.0, 0.0),
        (snare_pattern, _snare(sr, rng), 0.7, rng.uniform(-0.15, 0.15)),
        (hat_pattern, _hat(sr, rng, 0.015), 0.25, rng.uniform(-0.5, 0.5)),
        (open_pattern, _hat(sr, rng, 0.08), 0.12, rng.uniform(-0.5, 0.5)),
    )
    out = np.zeros((n, 2), dtype=np.float32)
    for pattern, shot, level, pan in parts:
        hits = pattern & playing
        gains = (level * rng.uniform(0.6, 1.0, steps)).astype(np.float32)
        out += _pan(_place(times[hits], gains[hits], shot, n, sr), pan)
    return out


# -------------------------------------------------------------------- bass


def render_bass(plan: SongPlan, rng: np.random.Generator) -> np.ndarray:
    """A bass line on the chord roots (root, fifth, octave), ``(n, 2)``."""
    sr, n = plan.sample_rate, plan.num_samples
    per_bar = int(rng.choice([4, 8, 8, 16]))  # notes per bar
    note_len = 16 // per_bar * plan.step
    count = int(np.ceil(plan.seconds / note_len)) + 1
    onsets = np.arange(count) * note_len
    bar = (onsets // plan.bar).astype(int)
    root = plan.chords[bar, 0] - 12
    root = np.where(root < 36, root + 12, root)
    offsets = np.array([0, 0, 0, 7, 12, 0, 7, 0])[rng.integers(0, 8, count)]
    offsets[np.arange(count) % per_bar == 0] = 0  # the downbeat plays the root
    notes = root + offsets
    held = note_len * rng.uniform(0.55, 0.95, count)
    rests = rng.random(count) < 0.1
    held[rests] = 0.0
    index, since = _note_grid(onsets, n, sr)
    freq = midi_to_hz(notes)[index]
    env = _envelope(since, held[index], 0.005, rng.uniform(0.15, 0.4), 0.6, 0.03)
    phase = _phase(freq, sr)
    if rng.random() < 0.5:
        tone = _lowpass(_saw(phase), rng.uniform(400, 900), sr, order=4)
    else:  # rounder: sine plus a little second and third harmonic
        tone = np.sin(phase) + 0.3 * np.sin(2 * phase) + 0.1 * np.sin(3 * phase)
    return _pan((tone * env).astype(np.float32), rng.uniform(-0.1, 0.1))


# ------------------------------------------------------------------- other


def _chord_voices(plan: SongPlan, onsets: np.ndarray, pick: np.ndarray) -> np.ndarray:
    """Per note the MIDI pitch of chord tone ``pick`` (0..5: two octaves)."""
    bar = (onsets // plan.bar).astype(int)
    tones = plan.chords[bar]
    octave, which = np.divmod(pick, 3)
    return tones[np.arange(len(onsets)), which] + 12 * octave


def _pad(plan: SongPlan, rng: np.random.Generator) -> np.ndarray:
    """Sustained chords of detuned saws, one voice per chord tone."""
    sr, n = plan.sample_rate, plan.num_samples
    onsets = np.arange(int(np.ceil(plan.seconds / plan.bar)) + 1) * plan.bar
    index, since = _note_grid(onsets, n, sr)
    env = _envelope(since, np.full(n, plan.bar * 0.95, np.float32), 0.15, 1.0, 0.8, 0.2)
    out = np.zeros((n, 2), dtype=np.float32)
    for voice in range(3):
        freq = midi_to_hz(_chord_voices(plan, onsets, np.full(len(onsets), voice)) + 12)
        detune = 1.0 + rng.uniform(-0.004, 0.004)
        tone = _saw(_phase(freq[index] * detune, sr))
        tone = _lowpass(tone, rng.uniform(1200, 3000), sr)
        out += _pan(tone * env, rng.uniform(-0.7, 0.7))
    return out


def _arpeggio(plan: SongPlan, rng: np.random.Generator) -> np.ndarray:
    """Plucked chord tones on eighths or sixteenths (decaying harmonics)."""
    sr, n = plan.sample_rate, plan.num_samples
    step = plan.step * int(rng.choice([1, 2]))
    count = int(np.ceil(plan.seconds / step)) + 1
    onsets = np.arange(count) * step
    shape = rng.permutation(6)[: int(rng.integers(3, 6))]
    pick = shape[np.arange(count) % len(shape)]
    notes = _chord_voices(plan, onsets, pick) + 12
    index, since = _note_grid(onsets, n, sr)
    phase = _phase(midi_to_hz(notes)[index], sr)
    t = np.maximum(since, 0.0)
    tone = np.zeros(n, dtype=np.float32)
    for k in range(1, 7):
        tone += (np.sin(k * phase) * np.exp(-t * (4.0 + 3.0 * k)) / k).astype(np.float32)
    tone[since < 0] = 0.0
    attack = np.clip(since / 0.002, 0.0, 1.0)
    return _pan(tone * attack, rng.uniform(-0.8, 0.8))


def _keys(plan: SongPlan, rng: np.random.Generator) -> np.ndarray:
    """Electric-piano-like comping: FM tones struck on off-beats."""
    sr, n = plan.sample_rate, plan.num_samples
    steps = int(np.ceil(plan.seconds / plan.step)) + 1
    pos = np.arange(steps) % 16
    hits = np.flatnonzero(np.isin(pos, rng.choice([2, 6, 10, 14, 4, 12], 3, replace=False)))
    if hits.size == 0:  # a very short song
        return np.zeros((n, 2), dtype=np.float32)
    onsets = hits * plan.step
    index, since = _note_grid(onsets, n, sr)
    held = np.full(n, 2 * plan.step, np.float32)
    env = _envelope(since, held, 0.003, 0.3, 0.3, 0.08)
    out = np.zeros((n, 2), dtype=np.float32)
    for voice in range(3):
        freq = midi_to_hz(_chord_voices(plan, onsets, np.full(len(onsets), voice)))[index]
        phase = _phase(freq, sr)
        depth = 2.0 * np.exp(-np.maximum(since, 0) / 0.2)
        tone = np.sin(phase + depth * np.sin(phase)).astype(np.float32)
        out += _pan(tone * env, rng.uniform(-0.5, 0.5))
    return out


def render_other(plan: SongPlan, rng: np.random.Generator) -> np.ndarray:
    """Two or three of: pad, arpeggio, keys; each drops out now and then."""
    n = plan.num_samples
    makers = [_pad, _arpeggio, _keys]
    chosen = rng.permutation(3)[: int(rng.integers(2, 4))]
    out = np.zeros((n, 2), dtype=np.float32)
    bar_samples = plan.bar * plan.sample_rate
    bar_of_sample = (np.arange(n) // bar_samples).astype(int)
    for i in chosen:
        part = makers[i](plan, rng)
        part /= np.sqrt(np.mean(part ** 2)) + 1e-9
        active = rng.random(bar_of_sample.max() + 1) > 0.2
        gate = signal.lfilter([0.002], [1, -0.998], active[bar_of_sample].astype(np.float32))
        out += part * gate.astype(np.float32)[:, None] * rng.uniform(0.5, 1.0)
    return _reverb(out, rng, plan.sample_rate, 0.8, 0.25)


# ------------------------------------------------------------------ vocals


def _melody(plan: SongPlan, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Phrases of notes with rests: onsets (s), held lengths (s), MIDI notes,
    vowel indices."""
    onsets, lengths, notes = [], [], []
    now = plan.bar * float(rng.integers(0, 2)) if plan.seconds > 3 * plan.bar else 0.0
    scale = np.asarray(plan.scale)
    degree = int(rng.integers(0, 5))
    base = plan.tonic + (12 if plan.tonic < 54 else 0)  # lead around F#3..F5
    while now < plan.seconds:
        phrase_end = now + plan.bar * float(rng.choice([1.0, 1.5, 2.0]))
        while now < phrase_end:
            dur = plan.step * float(rng.choice([2, 2, 3, 4, 4, 6, 8]))
            degree = int(np.clip(degree + rng.choice([-2, -1, -1, 0, 1, 1, 2]), -3, 9))
            octave, step = divmod(degree, 7)
            notes.append(base + 12 * octave + scale[step])
            onsets.append(now)
            lengths.append(dur * rng.uniform(0.75, 1.0))
            now += dur
        now += plan.step * float(rng.choice([4, 6, 8, 12, 16]))  # a rest
    count = len(onsets)
    vowels = rng.integers(0, len(_FORMANTS), count)
    return np.array(onsets), np.array(lengths), np.array(notes), vowels


def _formant_harmonics(f0: np.ndarray, phase: np.ndarray, formants: np.ndarray, sr: int,
                       harmonics: int = 24, control: int = 32) -> np.ndarray:
    """Sum of ``harmonics`` harmonics of ``phase`` (radians) whose amplitudes
    follow the formant envelope at ``k * f0`` (Hz), ``formants`` ``(m, 3)``.

    Amplitudes are computed every ``control`` samples and interpolated; the
    sines come from the recurrence sin((k+1)p) = 2 cos(p) sin(kp) - sin((k-1)p).
    """
    m = f0.size
    coarse = np.arange(0, m, control)
    fine = np.arange(m)
    f0c, fc = f0[coarse].astype(np.float32), formants[coarse]
    wrapped = np.mod(phase, 2.0 * np.pi).astype(np.float32)
    two_cos = 2.0 * np.cos(wrapped)
    prev, cur = np.zeros(m, np.float32), np.sin(wrapped)
    out = np.zeros(m, dtype=np.float32)
    for k in range(1, harmonics + 1):
        fk = k * f0c
        gain = np.full_like(fk, 0.02)
        for j in range(3):
            gain += (1.0 / (1 + j)) / (1.0 + ((fk - fc[:, j]) / _FORMANT_BW[j]) ** 2)
        gain *= k ** -0.7 * (fk < 0.45 * sr)
        out += np.interp(fine, coarse, gain).astype(np.float32) * cur
        prev, cur = cur, two_cos * cur - prev
    return out


def render_vocals(plan: SongPlan, rng: np.random.Generator) -> np.ndarray:
    """A sung line: harmonic source with glides and vibrato, amplitudes
    shaped by the formants of a vowel per note, breath noise, ``(n, 2)``."""
    sr, n = plan.sample_rate, plan.num_samples
    onsets, lengths, notes, vowels = _melody(plan, rng)
    index, since = _note_grid(onsets, n, sr)
    env = _envelope(since, lengths[index].astype(np.float32), 0.04, 0.5, 0.8, 0.08)
    # Pitch: glide between notes (one-pole smoothing of the MIDI pitch), then
    # vibrato fading in after each onset.
    glide = np.exp(-1.0 / (0.03 * sr))
    pitch = signal.lfilter([1 - glide], [1, -glide], notes[index].astype(np.float64),
                           zi=[notes[0] * glide])[0]
    rate = rng.uniform(4.8, 6.5)
    depth = rng.uniform(0.2, 0.45) * np.clip((since - 0.15) / 0.25, 0.0, 1.0)
    t = np.arange(n) / sr
    pitch = pitch + depth * np.sin(2 * np.pi * rate * t + rng.uniform(0, 6.28))
    f0 = midi_to_hz(pitch)
    phase = _phase(f0, sr)
    # Formant tracks: the vowel of each note, smoothed at the transitions.
    smooth = np.exp(-1.0 / (0.04 * sr))
    formants = signal.lfilter([1 - smooth], [1, -smooth], _FORMANTS[vowels][index], axis=0,
                              zi=_FORMANTS[vowels[0]][None, :] * smooth)[0]
    formants = formants.astype(np.float32) * rng.uniform(0.9, 1.15)
    active = np.flatnonzero(env > 1e-4)
    voice = _formant_harmonics(f0[active], phase[active], formants[active], sr)
    breath = _bandpass(rng.standard_normal(active.size), 2000, 8000, sr) * 0.02
    mono = np.zeros(n, dtype=np.float32)
    mono[active] = (voice + breath) * env[active]
    dry = _pan(mono, rng.uniform(-0.2, 0.2))
    return _reverb(dry, rng, sr, 1.2, 0.2)
