"""Soundfont presets and the instrument choices of the sampled dataset.

:func:`soundfont_presets` reads a SoundFont 2 file's preset headers (the
``phdr`` chunk) without loading its samples; the choosers pick General MIDI
programs per source and role from what a soundfont actually contains.

Families of ``other`` programs (``(bank, program)``; bank 0 is General MIDI,
bank 8 holds variations that FluidR3_GM has and TimGM6mb has not) are the
names of the optional per-instrument stems.
"""

from __future__ import annotations

import functools
import struct

import numpy as np

_GM = 0
DRUM_BANK = 128
# General MIDI drum kit numbers (bank 128): Standard, Room, Power, Electronic,
# TR-808, Jazz, Brush, Orchestra. Fonts may hold variants just above them.
KIT_FAMILIES = (0, 8, 16, 24, 25, 32, 40, 48)
KIT_WEIGHTS = {48: 0.3}  # the orchestra kit (timpani, concert drums) now and then
BASS_PROGRAMS = [(_GM, p) for p in range(32, 40)] + [(_GM, 43), (8, 38), (8, 39)]
VOICE_PROGRAMS = [(_GM, 52), (_GM, 53), (_GM, 54), (_GM, 85)]
FAMILIES = {
    "piano": [(_GM, p) for p in range(0, 8)] + [(8, 4), (8, 5), (8, 6)],
    "mallets": [(_GM, p) for p in range(8, 16)],
    "organ": [(_GM, p) for p in range(16, 22)] + [(8, 16), (8, 17), (8, 19), (8, 21)],
    "guitar": [(_GM, p) for p in range(24, 32)] + [(8, 24), (8, 25), (8, 26), (8, 28), (16, 25)],
    "strings": [(_GM, p) for p in (40, 41, 42, 44, 45, 46, 48, 49, 50, 51)] + [(8, 48), (8, 50)],
    "brass": [(_GM, p) for p in range(56, 64)] + [(8, 61), (8, 62), (8, 63)],
    "winds": [(_GM, p) for p in range(64, 80)],
    "synth": [(_GM, p) for p in range(80, 85)] + [(_GM, p) for p in range(88, 96)] + [(8, 80)],
    "plucked": [(_GM, p) for p in range(104, 109)] + [(8, 107)],
}
# Weights of the families per role of an ``other`` part (brass in moderation).
ROLE_FAMILIES = {
    "pad": {"strings": 3, "organ": 2, "synth": 3, "winds": 1, "brass": 0.5},
    "comp": {"piano": 4, "organ": 2, "guitar": 4, "brass": 0.5, "mallets": 0.5},
    "arpeggio": {"piano": 2, "mallets": 2, "guitar": 2, "plucked": 2, "synth": 2, "strings": 1},
    "pluck": {"guitar": 3, "plucked": 2, "mallets": 2, "piano": 1, "strings": 1, "winds": 1},
}
WIDE_WEIGHT = 0.5  # a family outside a role's template, with more timbres


@functools.lru_cache(maxsize=None)
def soundfont_presets(path: str) -> dict:
    """``{(bank, program): preset name}`` of a SoundFont 2 file.

    Reads the RIFF chunk headers and the ``pdta/phdr`` records (38 bytes
    each, the last one a terminator); the sample data is skipped. Reads SF3
    files too (Ogg-compressed samples, same headers). Raises
    ``ValueError`` if the file is not a SoundFont 2 file.
    """
    with open(path, "rb") as f:
        riff, size, form = struct.unpack("<4sI4s", f.read(12))
        if riff != b"RIFF" or form != b"sfbk":
            raise ValueError(f"{path} is not a SoundFont 2 file")
        while f.tell() < 8 + size:
            chunk, length = struct.unpack("<4sI", f.read(8))
            if chunk == b"LIST" and f.read(4) == b"pdta":
                return _read_phdr(f, f.tell() + length - 4)
            f.seek(length - (4 if chunk == b"LIST" else 0) + (length & 1), 1)
            if length & 1 and not f.read(4).isalpha():
                f.seek(-5, 1)  # an unpadded odd chunk (FluidR3Mono_GM.sf3's sdta)
            elif length & 1:
                f.seek(-4, 1)
    raise ValueError(f"{path} has no preset headers (pdta chunk)")


def _read_phdr(f, stop: int) -> dict:
    while f.tell() < stop:
        chunk, length = struct.unpack("<4sI", f.read(8))
        data = f.read(length + (length & 1))
        if chunk == b"phdr":
            presets = {}
            for i in range(length // 38 - 1):
                name, program, bank = struct.unpack_from("<20sHH", data, 38 * i)
                presets[(bank, program)] = name.split(b"\0")[0].decode("latin-1").strip()
            return presets
    raise ValueError("no phdr chunk in pdta")


def _pick(rng: np.random.Generator, options: list, available: dict) -> tuple:
    usable = [o for o in options if o in available]
    if not usable:
        raise ValueError(f"none of the presets {options} is in the soundfont")
    return usable[int(rng.integers(len(usable)))]


def choose_kit(rng: np.random.Generator, available: dict) -> tuple:
    """``(128, kit)``: a kit family drawn among those the font has (weights
    ``KIT_WEIGHTS``, else 1),
    then one of the font's variants of it (e.g. FluidR3 ``Room 1..7``)."""
    families = [k for k in KIT_FAMILIES if (DRUM_BANK, k) in available]
    if not families:
        raise ValueError("the soundfont has no drum kits (bank 128)")
    weights = np.array([KIT_WEIGHTS.get(k, 1.0) for k in families])
    family = families[int(rng.choice(len(families), p=weights / weights.sum()))]
    upper = min([k for k in KIT_FAMILIES if k > family] + [family + 8])
    return _pick(rng, [(DRUM_BANK, k) for k in range(family, upper)], available)


def choose_bass(rng: np.random.Generator, available: dict) -> tuple:
    return _pick(rng, BASS_PROGRAMS, available)


def choose_voice(rng: np.random.Generator, available: dict) -> tuple:
    return _pick(rng, VOICE_PROGRAMS, available)


def role_weights(role: str, wide: bool = False) -> dict:
    """Weights of the families for a role; ``wide`` adds every other family
    at ``WIDE_WEIGHT`` (combinations outside the role's template)."""
    weights = dict(ROLE_FAMILIES[role])
    if wide:
        weights.update({f: WIDE_WEIGHT for f in FAMILIES if f not in weights})
    return weights


def choose_other(rng: np.random.Generator, role: str, available: dict,
                 avoid: set = frozenset(), wide: bool = False) -> tuple:
    """``(family, (bank, program))`` for an ``other`` part in ``role``; a
    family in ``avoid`` (already used in the song) is drawn only if nothing
    else is left. ``wide``: see :func:`role_weights`."""
    table = role_weights(role, wide)
    weights = {f: w for f, w in table.items() if f not in avoid} or table
    names = sorted(weights)
    p = np.array([weights[n] for n in names], dtype=np.float64)
    family = names[int(rng.choice(len(names), p=p / p.sum()))]
    return family, _pick(rng, FAMILIES[family], available)
