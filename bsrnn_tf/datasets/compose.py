"""Song composition for the sampled dataset: notes per source, written as MIDI.

A :class:`Song` holds a key, a tempo, one chord per bar, sections of 2-8 bars
in which each source plays or rests, and the note lists of every part. Times
are in beats (quarter notes), pitches are MIDI note numbers, velocities 1-127.

* drums: one of five grooves (rock, four-on-the-floor, half-time, shuffle,
  breakbeat) on General MIDI channel 10 (index 9), hats or ride per section,
  a fill in the last bar of most sections and a crash on section starts;
* bass: the chord roots with a rhythm per section (whole, half, quarter,
  pumping eighths, syncopated, octave jumps, walking with passing notes);
* other: two or three parts, each its own instrument and role (comping
  chords, pad, arpeggio, plucked pattern);
* vocals: a monophonic lead in phrases with rests, sometimes doubled a third
  above (a backing voice).

:func:`write_midi` writes one type-1 MIDI file (one track per part) with
``mido``; the renderer (:mod:`bsrnn_tf.datasets.sampled`) chooses programs and
drum kits from what its soundfont contains.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

SOURCES = ("drums", "bass", "other", "vocals")
MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
NOTE_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
# Progressions as scale degrees (0-based), one chord per bar.
PROGRESSIONS = ((0, 4, 5, 3), (0, 5, 3, 4), (0, 3, 4, 4), (5, 3, 0, 4), (0, 3, 0, 4),
                (0, 6, 5, 4), (0, 2, 3, 4), (0, 5, 1, 4), (0, 0, 3, 4), (5, 4, 3, 4))
GROOVES = ("rock", "four_on_floor", "half_time", "shuffle", "breakbeat")
OTHER_ROLES = ("comp", "pad", "arpeggio", "pluck")
TEMPO_RANGE = (60, 180)         # beats per minute
DRUM_CHANNEL = 9                # MIDI channel 10
TICKS_PER_BEAT = 480

# General MIDI percussion keys.
KICK, STICK, SNARE, CLAP, FLOOR_TOM, CLOSED_HAT, LOW_TOM = 36, 37, 38, 39, 41, 42, 45
PEDAL_HAT, MID_TOM, OPEN_HAT, HIGH_TOM, CRASH, RIDE = 44, 47, 46, 50, 49, 51


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


def compose_song(rng: np.random.Generator, seconds: float, silent_prob: float = 0.25) -> Song:
    """A complete song: plan plus the parts of all four sources."""
    song = plan_song(rng, seconds, silent_prob)
    song.parts = {"drums": [compose_drums(song, rng)], "bass": [compose_bass(song, rng)],
                  "other": compose_other(song, rng, int(rng.integers(2, 4))),
                  "vocals": compose_vocals(song, rng)}
    return song


# ----------------------------------------------------------------------- MIDI


def _note_events(notes: list) -> list:
    """``[(tick, is_on, pitch, velocity)]`` sorted by time, note-offs first
    at a tick. A note ends at the latest when the next one of its pitch starts
    (a later note-off would cut that one short); notes repeating a pitch at
    the same tick are dropped."""
    ticks = sorted((int(round(n.start * TICKS_PER_BEAT)),
                    int(round((n.start + n.length) * TICKS_PER_BEAT)), n.pitch, n.velocity)
                   for n in notes)
    last_start, events = {}, []
    for on, off, pitch, vel in reversed(ticks):  # from the end: the next start is known
        nxt = last_start.get(pitch)
        if nxt == on:
            continue
        end = max(on + 1, min(off, nxt) if nxt is not None else off)
        events += [(on, 1, pitch, vel), (end, 0, pitch, 0)]
        last_start[pitch] = on
    return sorted(events, key=lambda e: (e[0], e[1]))


def write_midi(path: str, tempo: float, parts: list, programs: list,
               controls: list) -> None:
    """Writes ``parts`` as a type-1 MIDI file, one track per part.

    ``programs[i]`` is ``(bank, program)`` of part ``i`` (on the drum channel
    ``program`` is the kit; the bank select sends ``bank`` MSB = 0 there, as
    the kit bank 128 is implied); ``controls[i]`` maps MIDI controller numbers
    (e.g. 7 volume, 10 pan, 91 reverb send, 93 chorus send) to values 0-127.
    """
    import mido

    mid = mido.MidiFile(type=1, ticks_per_beat=TICKS_PER_BEAT)
    meta = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(tempo), time=0)])
    mid.tracks.append(meta)
    for part, (bank, program), ctrl in zip(parts, programs, controls):
        ch = part.channel
        head = [mido.Message("control_change", channel=ch, control=0,
                             value=0 if ch == DRUM_CHANNEL else min(bank, 127)),
                mido.Message("control_change", channel=ch, control=32, value=0),
                mido.Message("program_change", channel=ch, program=program)]
        head += [mido.Message("control_change", channel=ch, control=c, value=int(v))
                 for c, v in sorted(ctrl.items())]
        events = _note_events(part.notes)
        track, now = mido.MidiTrack(head), 0
        for tick, is_on, pitch, vel in events:
            kind = "note_on" if is_on else "note_off"
            track.append(mido.Message(kind, channel=ch, note=pitch, velocity=vel,
                                      time=tick - now))
            now = tick
        mid.tracks.append(track)
    mid.save(path)
