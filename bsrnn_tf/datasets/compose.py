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

:func:`compose_song` composes a whole song and :func:`write_midi` writes
parts as one type-1 MIDI file (one track per part) with ``mido``; the
renderer (:mod:`bsrnn_tf.datasets.sampled`) chooses programs and drum kits
from what its soundfont contains. The song and its plan are
:mod:`bsrnn_tf.datasets.score`, the parts :mod:`bsrnn_tf.datasets.compose_parts`;
their names are re-exported here.
"""

from __future__ import annotations

import numpy as np

from bsrnn_tf.datasets.compose_parts import (CLAP, CLOSED_HAT, CRASH, FLOOR_TOM, HIGH_TOM, KICK,
                                             LOW_TOM, MID_TOM, OPEN_HAT, OTHER_ROLES, PEDAL_HAT,
                                             RIDE, SNARE, STICK, compose_bass, compose_drums,
                                             compose_other, compose_vocals)
from bsrnn_tf.datasets.score import (DRUM_CHANNEL, GROOVES, MAJOR, MINOR, NOTE_NAMES,
                                     PROGRESSIONS, SOURCES, TEMPO_RANGE, Note, Part, Song,
                                     plan_song)

__all__ = ["SOURCES", "MAJOR", "MINOR", "NOTE_NAMES", "PROGRESSIONS", "GROOVES", "OTHER_ROLES",
           "TEMPO_RANGE", "DRUM_CHANNEL", "TICKS_PER_BEAT", "KICK", "STICK", "SNARE", "CLAP",
           "FLOOR_TOM", "CLOSED_HAT", "LOW_TOM", "PEDAL_HAT", "MID_TOM", "OPEN_HAT", "HIGH_TOM",
           "CRASH", "RIDE", "Note", "Part", "Song", "plan_song", "compose_drums", "compose_bass",
           "compose_other", "compose_vocals", "compose_song", "write_midi"]

TICKS_PER_BEAT = 480


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
