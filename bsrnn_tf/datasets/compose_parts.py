"""The notes of each source of a composed song (see :mod:`bsrnn_tf.datasets.compose`).

:func:`compose_drums` (a groove per song, hats or ride per section, fills,
crashes), :func:`compose_bass` (the chord roots with a rhythm per section),
:func:`compose_other` (two or three parts in different roles) and
:func:`compose_vocals` (a lead in phrases, sometimes a backing voice) each
add :class:`~bsrnn_tf.datasets.score.Part` objects to a planned
:class:`~bsrnn_tf.datasets.score.Song`, drawing from the ``rng`` they are
given in a fixed order.
"""

from __future__ import annotations

import numpy as np

from bsrnn_tf.datasets.score import DRUM_CHANNEL, Note, Part, Song, _vel

OTHER_ROLES = ("comp", "pad", "arpeggio", "pluck")

# General MIDI percussion keys.
KICK, STICK, SNARE, CLAP, FLOOR_TOM, CLOSED_HAT, LOW_TOM = 36, 37, 38, 39, 41, 42, 45
PEDAL_HAT, MID_TOM, OPEN_HAT, HIGH_TOM, CRASH, RIDE = 44, 47, 46, 50, 49, 51


# ---------------------------------------------------------------------- drums


def _groove_bar(groove: str, rng: np.random.Generator, ride: bool) -> list:
    """One bar as ``[(beat, key, base velocity)]``."""
    cymbal = RIDE if ride else CLOSED_HAT
    eighths = [(i / 2, cymbal, 85 if i % 2 == 0 else 65) for i in range(8)]
    sixteenths = [(i / 4, cymbal, 80 if i % 4 == 0 else 55) for i in range(16)]
    if groove == "rock":
        extra = [(float(rng.choice([1.5, 2.5, 3.5])), KICK, 90)] if rng.random() < 0.7 else []
        return [(0.0, KICK, 110), (2.0, KICK, 100), (1.0, SNARE, 105), (3.0, SNARE, 110),
                *extra, *(sixteenths if rng.random() < 0.3 else eighths)]
    if groove == "four_on_floor":
        back = CLAP if rng.random() < 0.5 else SNARE
        return [*[(float(b), KICK, 112) for b in range(4)], (1.0, back, 100), (3.0, back, 100),
                *[(b + 0.5, OPEN_HAT, 70) for b in range(4)],
                *[(b / 4, CLOSED_HAT, 60) for b in range(16) if b % 4 not in (0, 2)]]
    if groove == "half_time":
        kicks = [(0.0, KICK, 110)] + [(float(t), KICK, 90) for t in rng.choice(
            [0.75, 1.5, 2.5, 3.25, 3.5], 2, replace=False)]
        hats = [(b / 2, cymbal, 70) for b in range(8)] if rng.random() < 0.5 else \
            [(float(b), RIDE, 80) for b in range(4)]
        return [*kicks, (2.0, SNARE, 115), *hats]
    if groove == "shuffle":
        swing = [b + t for b in range(4) for t in (0.0, 2 / 3)]
        return [(0.0, KICK, 105), (2.0, KICK, 95), (2 + 2 / 3, KICK, 75), (1.0, SNARE, 100),
                (3.0, SNARE, 105), *[(t, cymbal, 80 if t % 1 == 0 else 60) for t in swing]]
    # breakbeat
    ghosts = [(float(t), SNARE, 40) for t in rng.choice([0.75, 1.75, 2.25, 3.75], 2,
                                                       replace=False)]
    return [(0.0, KICK, 110), (1.25, KICK, 85), (2.5, KICK, 100), (1.0, SNARE, 110),
            (3.0, SNARE, 110), *ghosts, *eighths, (3.5, OPEN_HAT, 70)]


def _fill(rng: np.random.Generator, beats: float, triplets: bool) -> list:
    """A fill over the last ``beats`` of a bar: snare and toms descending."""
    step = 1 / 3 if triplets else 0.25
    count = int(round(beats / step))
    toms = [SNARE, HIGH_TOM, MID_TOM, LOW_TOM, FLOOR_TOM]
    order = np.sort(rng.integers(0, len(toms), count))
    start = 4.0 - beats
    return [(start + i * step, toms[k], 75 + 35 * i / max(count - 1, 1))
            for i, k in enumerate(order)] + [(start, KICK, 90)]


def compose_drums(song: Song, rng: np.random.Generator) -> Part:
    """Groove with per-section hats/ride, fills before section ends, crashes."""
    part = Part("drums", song.groove, DRUM_CHANNEL)
    triplets = song.groove == "shuffle"
    for s, (first, count) in enumerate(song.sections):
        if not song.active["drums"][s]:
            continue
        ride = rng.random() < 0.3
        pattern = _groove_bar(song.groove, rng, ride)
        fill_beats = float(rng.choice([1.0, 2.0])) if rng.random() < 0.7 else 0.0
        for bar in range(first, first + count):
            hits = list(pattern)
            if bar == first + count - 1 and fill_beats and count > 1:
                hits = [h for h in hits if h[0] < 4.0 - fill_beats] + _fill(rng, fill_beats,
                                                                            triplets)
            if bar == first and (s > 0 or rng.random() < 0.5):
                hits.append((0.0, CRASH, 100))
            for beat, key, base in hits:
                jitter = rng.normal(0.0, 0.008)
                part.notes.append(Note(max(0.0, bar * 4 + beat + jitter), 0.25, key,
                                       _vel(rng, base)))
    return part


# ----------------------------------------------------------------------- bass

_BASS_RHYTHMS = {  # (onset beats, held fraction of the gap to the next onset)
    "whole": ((0.0,), 0.95), "half": ((0.0, 2.0), 0.9), "quarter": ((0.0, 1.0, 2.0, 3.0), 0.8),
    "eighths": (tuple(i / 2 for i in range(8)), 0.7),
    "syncopated": ((0.0, 0.75, 1.5, 2.5, 3.0, 3.5), 0.6),
    "octaves": (tuple(i / 2 for i in range(8)), 0.5), "walking": ((0.0, 1.0, 2.0, 3.0), 0.9),
}


def _bass_root(chord_root: int) -> int:
    """The chord root in the bass register E1..D#2 (28..39)."""
    return 28 + (chord_root - 28) % 12


def _walk(song: Song, bar: int, rng: np.random.Generator) -> list:
    """Four pitches: root, chord tone, chord tone, approach to the next root."""
    root = _bass_root(int(song.chords[bar, 0]))
    nxt = _bass_root(int(song.chords[min(bar + 1, song.bars - 1), 0]))
    third, fifth = (int(song.chords[bar, i]) - int(song.chords[bar, 0]) for i in (1, 2))
    middle = [root + int(rng.choice([third, fifth, 12])), root + int(rng.choice([fifth, third]))]
    approach = nxt + int(rng.choice([-1, 1, -2, 2]))
    return [root, *middle, approach]


def compose_bass(song: Song, rng: np.random.Generator) -> Part:
    """Chord roots with a rhythm per section, octaves, fifths and passing notes."""
    part = Part("bass", "bass", 0)
    for s, (first, count) in enumerate(song.sections):
        if not song.active["bass"][s]:
            continue
        style = str(rng.choice(list(_BASS_RHYTHMS)))
        onsets, held = _BASS_RHYTHMS[style]
        up = 12 if rng.random() < 0.25 else 0
        for bar in range(first, first + count):
            root = _bass_root(int(song.chords[bar, 0])) + up
            if style == "walking":
                pitches = [p + up for p in _walk(song, bar, rng)]
            elif style == "octaves":
                pitches = [root + 12 * (i % 2) for i in range(len(onsets))]
            else:
                fifth = int(song.chords[bar, 2]) - int(song.chords[bar, 0])
                pitches = [root if i == 0 or rng.random() < 0.7 else root + int(
                    rng.choice([fifth, 12, -12 + fifth])) for i in range(len(onsets))]
            gaps = np.diff([*onsets, 4.0])
            for i, (onset, pitch) in enumerate(zip(onsets, pitches)):
                if i > 0 and rng.random() < 0.06:
                    continue  # a rest
                accent = 100 if onset % 1 == 0 else 85
                part.notes.append(Note(bar * 4 + onset, gaps[i] * held * rng.uniform(0.85, 1.05),
                                       int(np.clip(pitch, 24, 60)), _vel(rng, accent)))
    return part


# ---------------------------------------------------------------------- other


def _voicing(song: Song, bar: int, rng: np.random.Generator, low: int) -> list:
    """The bar's triad as pitches at or above ``low``, sometimes inverted."""
    notes = sorted(int(p) for p in song.chords[bar])
    for _ in range(int(rng.integers(0, 3))):
        notes = notes[1:] + [notes[0] + 12]
    shift = 12 * int(np.ceil((low - notes[0]) / 12))
    return [p + shift for p in notes]


def _other_bar(role: str, song: Song, bar: int, rng: np.random.Generator, style: dict) -> list:
    """Notes of one bar of an ``other`` part in a role."""
    chord = _voicing(song, bar, rng, style["low"])
    base = bar * 4
    if role == "pad":
        return [Note(base, 3.9, p, _vel(rng, 70)) for p in chord]
    if role == "comp":
        hits = style["hits"]
        return [Note(base + h, style["hold"], p, _vel(rng, 90 if h % 1 == 0 else 78))
                for h in hits for p in chord]
    if role == "arpeggio":
        step = style["step"]
        tones = chord + [p + 12 for p in chord]
        order = style["order"]
        return [Note(base + i * step, step * 0.9, tones[order[i % len(order)]],
                     _vel(rng, 85 if i % 4 == 0 else 70)) for i in range(int(4 / step))]
    # pluck: single notes or dyads on a syncopated pattern
    notes = []
    for h in style["hits"]:
        pitch = chord[int(rng.integers(len(chord)))] + 12 * int(rng.random() < 0.3)
        notes.append(Note(base + h, 0.4, pitch, _vel(rng, 88)))
        if rng.random() < 0.3:
            notes.append(Note(base + h, 0.4, pitch - 5, _vel(rng, 70)))
    return notes


def _other_style(role: str, rng: np.random.Generator) -> dict:
    """Per-section settings of a role (register, rhythm, arpeggio shape)."""
    style = {"low": int(rng.choice([48, 55, 60, 64]))}
    if role == "comp":
        options = [(0.0, 1.0, 2.0, 3.0), (0.5, 1.5, 2.5, 3.5), (0.0, 1.5, 3.0), (1.0, 3.0),
                   (0.0, 0.75, 2.0, 2.75)]
        style["hits"] = options[int(rng.integers(len(options)))]
        style["hold"] = float(rng.choice([0.2, 0.4, 0.9]))
    elif role == "arpeggio":
        style["step"] = float(rng.choice([0.25, 0.5, 1 / 3]))
        style["order"] = list(rng.permutation(6)[: int(rng.integers(3, 7))])
    elif role == "pluck":
        style["hits"] = tuple(sorted(rng.choice(np.arange(16) / 4, int(rng.integers(3, 8)),
                                                replace=False)))
        style["low"] += 12
    return style


def compose_other(song: Song, rng: np.random.Generator, count: int) -> list:
    """``count`` parts with different roles on channels 0.. (``count`` <= 4);
    in each section where ``other`` plays at least one of them plays."""
    roles = [str(r) for r in rng.choice(OTHER_ROLES, count, replace=False)]
    parts = [Part("other", role, i) for i, role in enumerate(roles)]
    for s, (first, bars) in enumerate(song.sections):
        if not song.active["other"][s]:
            continue
        playing = rng.random(count) < 0.8
        playing[int(rng.integers(count))] = True
        for part, on in zip(parts, playing):
            if not on:
                continue
            style = _other_style(part.role, rng)
            for bar in range(first, first + bars):
                part.notes.extend(_other_bar(part.role, song, bar, rng, style))
    return parts


# --------------------------------------------------------------------- vocals


def _phrase(song: Song, start: float, end: float, rng: np.random.Generator,
            degree: int) -> tuple:
    """A phrase of scale-stepping notes from ``start`` to at most ``end``
    beats. Returns ``(notes, last scale degree)``."""
    scale = song.scale
    base = song.tonic + (12 if song.tonic < 55 else 0)
    notes, now = [], start
    while now < end - 0.25:
        dur = min(float(rng.choice([0.5, 0.5, 0.75, 1.0, 1.0, 1.5, 2.0])), end - now)
        degree = int(np.clip(degree + rng.choice([-2, -1, -1, 0, 1, 1, 2, 3]), -3, 9))
        octave, step = divmod(degree, 7)
        notes.append(Note(now, dur * rng.uniform(0.8, 0.98), base + 12 * octave + scale[step],
                          _vel(rng, 92 if now % 1 == 0 else 80)))
        now += dur
    return notes, degree


def compose_vocals(song: Song, rng: np.random.Generator) -> list:
    """The lead, and a backing part a third above in some phrases."""
    lead, backing = Part("vocals", "lead", 0), Part("vocals", "backing", 1)
    degree = int(rng.integers(0, 5))
    for s, (first, bars) in enumerate(song.sections):
        if not song.active["vocals"][s]:
            continue
        now, end = first * 4.0, (first + bars) * 4.0
        while now < end - 1.0:
            length = min(float(rng.choice([4.0, 6.0, 8.0])), end - now)
            notes, degree = _phrase(song, now, now + length, rng, degree)
            lead.notes.extend(notes)
            if rng.random() < 0.3:
                backing.notes.extend(Note(n.start, n.length, n.pitch + (3 if song.minor else 4),
                                          max(1, n.velocity - 20)) for n in notes)
            now += length + float(rng.choice([0.5, 1.0, 1.5, 2.0, 4.0]))
    return [lead, backing] if backing.notes else [lead]
