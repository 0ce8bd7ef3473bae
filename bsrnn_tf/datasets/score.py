"""What a composed song is: :class:`Note`, :class:`Part`, :class:`Song`, and
its plan (:func:`plan_song`).

A :class:`Song` holds a key, a tempo, one chord per bar, sections of 2-8 bars
in which each source plays or rests, and the note lists of every part. Times
are in beats (quarter notes), pitches are MIDI note numbers, velocities 1-127.
The parts are composed by :mod:`bsrnn_tf.datasets.compose_parts`; the whole
song and its MIDI file come from :mod:`bsrnn_tf.datasets.compose`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bsrnn_tf.data.track import SOURCES

MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
# Progressions as scale degrees (0-based), one chord per bar.
PROGRESSIONS = ((0, 4, 5, 3), (0, 5, 3, 4), (0, 3, 4, 4), (5, 3, 0, 4), (0, 3, 0, 4),
                (0, 6, 5, 4), (0, 2, 3, 4), (0, 5, 1, 4), (0, 0, 3, 4), (5, 4, 3, 4))
GROOVES = ("rock", "four_on_floor", "half_time", "shuffle", "breakbeat")
TEMPO_RANGE = (60, 180)         # beats per minute
DRUM_CHANNEL = 9                # MIDI channel 10


@dataclass
class Note:
    """One note: ``start`` and ``length`` in beats, MIDI ``pitch`` and ``velocity``."""

    start: float
    length: float
    pitch: int
    velocity: int


@dataclass
class Part:
    """The notes of one instrument; ``role`` names its musical job."""

    source: str
    role: str
    channel: int
    notes: list = field(default_factory=list)


@dataclass
class Song:
    """Musical plan of one song (see the module docstring for units)."""

    tonic: int                  # MIDI note of the key's tonic, octave 3 (48..59)
    minor: bool
    tempo: float                # beats per minute
    bars: int                   # bars of 4 beats covering the song
    chords: np.ndarray          # (bars, 3) MIDI notes of each bar's triad
    sections: list              # [(first bar, number of bars)]
    active: dict                # source -> (sections,) bool: plays in that section
    groove: str
    parts: dict = field(default_factory=dict)   # source -> [Part]

    @property
    def key_name(self) -> str:
        return f"{NOTE_NAMES[self.tonic % 12]} {'minor' if self.minor else 'major'}"

    @property
    def scale(self) -> tuple:
        return MINOR if self.minor else MAJOR

    def section_bars(self, source: str) -> list:
        """Bars (indices) in which ``source`` plays."""
        return [b for s, (first, count) in enumerate(self.sections) if self.active[source][s]
                for b in range(first, first + count)]


# ------------------------------------------------------------------ structure


def _sections(rng: np.random.Generator, bars: int) -> list:
    """Splits ``bars`` into sections of 2-8 bars (shorter ones in short songs);
    a remainder under two bars joins the last section."""
    lengths = (2, 4) if bars < 12 else (4, 4, 8)
    sections, first = [], 0
    while first < bars:
        count = min(int(rng.choice(lengths)), bars - first)
        if count < 2 and sections:
            start, prev = sections.pop()
            sections.append((start, prev + count))
        else:
            sections.append((first, count))
        first += count
    return sections


def _activity(rng: np.random.Generator, sections: int, silent_prob: float) -> dict:
    """Per source a ``(sections,)`` bool mask. Each source rests in a section
    with probability ``silent_prob`` but plays in at least half of them, and
    no section is silent for every source."""
    active = rng.random((len(SOURCES), sections)) >= silent_prob
    need = (sections + 1) // 2
    for row in active:
        idle = np.flatnonzero(~row)
        missing = need - int(row.sum())
        if missing > 0:
            row[rng.choice(idle, missing, replace=False)] = True
    for s in np.flatnonzero(~active.any(axis=0)):
        active[int(rng.integers(len(SOURCES))), s] = True
    return {name: active[i] for i, name in enumerate(SOURCES)}


def _chords(rng: np.random.Generator, tonic: int, scale: tuple, bars: int) -> np.ndarray:
    """One triad per bar from a progression, ``(bars, 3)`` MIDI notes."""
    progression = PROGRESSIONS[int(rng.integers(len(PROGRESSIONS)))]
    degrees = np.array([progression[b % len(progression)] for b in range(bars)])
    triads = np.stack([degrees, degrees + 2, degrees + 4], axis=1)
    octave, step = np.divmod(triads, 7)
    return tonic + 12 * octave + np.asarray(scale)[step]


def plan_song(rng: np.random.Generator, seconds: float, silent_prob: float = 0.25) -> Song:
    """Draws key, mode, tempo, chords and sections covering ``seconds``."""
    tonic = 48 + int(rng.integers(12))
    minor = bool(rng.random() < 0.5)
    tempo = float(rng.integers(TEMPO_RANGE[0], TEMPO_RANGE[1] + 1))
    bars = max(1, int(np.ceil(seconds * tempo / 240.0 - 1e-9)))
    scale = MINOR if minor else MAJOR
    sections = _sections(rng, bars)
    return Song(tonic=tonic, minor=minor, tempo=tempo, bars=bars,
                chords=_chords(rng, tonic, scale, bars), sections=sections,
                active=_activity(rng, len(sections), silent_prob),
                groove=str(rng.choice(GROOVES)))


def _vel(rng: np.random.Generator, base: float, spread: float = 12.0) -> int:
    return int(np.clip(round(base + rng.normal(0.0, spread / 2)), 1, 127))
