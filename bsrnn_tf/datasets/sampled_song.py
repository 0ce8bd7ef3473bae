"""One song of the sampled dataset: composed, given instruments, rendered.

:func:`render_song` composes a song (:mod:`bsrnn_tf.datasets.compose`),
chooses a soundfont and the instruments of its parts from the presets that
soundfont holds (:mod:`bsrnn_tf.datasets.instruments`), and renders every
part by its own FluidSynth process (:func:`bsrnn_tf.datasets.fluidsynth.render_midi`)
with its own reverb and chorus settings (room size, damping, level, width
drawn per part). Each part is then cut to the song length, widened or
narrowed and panned in numpy (:func:`place_stereo`), each source levelled to
a target (``LEVELS_DB`` +-5 dB of active RMS), and the stems quantised to
int16. With a :class:`~bsrnn_tf.datasets.produced.Recipe` a part may instead
be played by a recorded drum kit or sung, rendered with another soundfont,
and produced (an effect chain after the stereo placement), before the same
levelling. Writing songs into a dataset is :mod:`bsrnn_tf.datasets.sampled`.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

from bsrnn_tf.datasets.fluidsynth import render_midi
from bsrnn_tf.datasets.cache import GenerationError
from bsrnn_tf.datasets.synth import quantise_stems
from bsrnn_tf.datasets import compose, instruments

SOURCES = compose.SOURCES
LEVELS_DB = {"drums": -16.0, "bass": -19.0, "other": -21.0, "vocals": -17.0}

_SUBSET_IDS = {"train": 1, "test": 2}
_WORDS_A = ("Ashen", "Brass", "Cobalt", "Drifting", "Ember", "Faded", "Glass", "Hidden",
            "Ivory", "Jade", "Paper", "Scarlet", "Sunken", "Wooden")
_WORDS_B = ("Avenue", "Bridge", "Canyon", "Ferry", "Harvest", "Island", "Kitchen",
            "Lighthouse", "Mirror", "Parade", "Quarry", "Rooftop", "Tunnel", "Winter")



# -------------------------------------------------------------- instruments


def _assign_programs(song: compose.Song, rng: np.random.Generator, presets: dict,
                     wide: bool = False) -> dict:
    """Per source a list of ``(family, (bank, program))``, one per part."""
    voice = instruments.choose_voice(rng, presets)
    chosen = {"drums": [("drums", instruments.choose_kit(rng, presets))],
              "bass": [("bass", instruments.choose_bass(rng, presets))],
              "vocals": [("vocals", voice if i == 0 else instruments.choose_voice(rng, presets))
                         for i in range(len(song.parts["vocals"]))]}
    used, other = set(), []
    for part in song.parts["other"]:
        family, program = instruments.choose_other(rng, part.role, presets, used, wide)
        used.add(family)
        other.append((family, program))
    chosen["other"] = other
    return chosen


def _controls(rng: np.random.Generator, source: str) -> dict:
    """MIDI controllers of a part: 7 volume, 91 reverb send, 93 chorus send,
    and for vocals 1 modulation (the soundfont's vibrato, up to ~25 cents)."""
    reverb = 0 if source in ("drums", "bass") and rng.random() < 0.5 else rng.integers(10, 90)
    controls = {7: 110, 91: int(reverb),
                93: int(rng.integers(0, 50) if rng.random() < 0.4 else 0)}
    if source == "vocals":
        controls[1] = int(rng.integers(10, 64))
    return controls


def _synth_settings(rng: np.random.Generator) -> list:
    """FluidSynth ``-o`` settings for one part's reverb and chorus."""
    return [f"synth.reverb.active={int(rng.random() < 0.7)}",
            f"synth.reverb.room-size={rng.uniform(0.1, 0.9):.3f}",
            f"synth.reverb.damp={rng.uniform(0.0, 0.7):.3f}",
            f"synth.reverb.level={rng.uniform(0.2, 0.9):.3f}",
            f"synth.reverb.width={rng.uniform(0.2, 1.0):.3f}",
            f"synth.chorus.active={int(rng.random() < 0.4)}",
            f"synth.chorus.depth={rng.uniform(2.0, 12.0):.2f}",
            f"synth.chorus.speed={rng.uniform(0.2, 1.0):.2f}"]


# ---------------------------------------------------------------- rendering


def place_stereo(audio: np.ndarray, width: float, pan: float) -> np.ndarray:
    """Scales the side signal of ``(n, 2)`` audio by ``width`` (0 mono, 1
    unchanged) and pans it with a constant-power balance, ``pan`` in [-1, 1]."""
    mid = 0.5 * (audio[:, 0] + audio[:, 1])
    side = 0.5 * (audio[:, 0] - audio[:, 1]) * width
    angle = (pan + 1.0) * np.pi / 4.0
    gains = np.sqrt(2.0) * np.array([np.cos(angle), np.sin(angle)], dtype=np.float32)
    return np.stack([mid + side, mid - side], axis=1) * gains


def active_rms(audio: np.ndarray, sample_rate: int, block_seconds: float = 0.25) -> float:
    """RMS of ``(n, 2)`` audio over its blocks within 40 dB of the loudest
    block (the playing parts; silent sections do not count)."""
    block = max(1, int(block_seconds * sample_rate))
    usable = len(audio) // block * block or len(audio)
    energy = np.mean(audio[:usable].reshape(-1, min(block, usable), 2) ** 2, axis=(1, 2))
    loud = energy[energy >= energy.max() * 1e-4]
    return float(np.sqrt(np.mean(loud))) if loud.size else 0.0


_PLACEMENT = {"drums": (0.7, 1.0, 0.1), "bass": (0.0, 0.4, 0.1),
              "other": (0.3, 1.2, 0.6), "vocals": (0.2, 0.8, 0.2)}


def _render_parts(song: compose.Song, programs: dict, soundfont: str, rng: np.random.Generator,
                  num_samples: int, sample_rate: int, work_dir: str,
                  midi_dir: str | None = None, levers=None, fonts: tuple = ()) -> dict:
    """Per source the list of ``(family, (n, 2) float32)`` of its parts;
    the MIDI file of each part goes to ``midi_dir`` (default ``work_dir``) as
    ``<source>_<part>.mid``. ``levers`` (a
    :class:`~bsrnn_tf.datasets.produced.SongLevers`) may play a part
    (recorded kit, sung vocals), choose its soundfont among ``fonts`` and
    produce it; the draws of ``rng`` are the same with or without it."""
    rendered = {}
    for source in SOURCES:
        low_w, high_w, max_pan = _PLACEMENT[source]
        rendered[source] = []
        for i, (part, (family, program)) in enumerate(zip(song.parts[source], programs[source])):
            if not part.notes:
                continue
            controls, settings = _controls(rng, source), _synth_settings(rng)
            audio = levers.render_part(source, i, part, song.tempo, num_samples,
                                       sample_rate) if levers else None
            if audio is None:
                font = levers.part_soundfont(source, program, soundfont, fonts) if levers \
                    else soundfont
                midi = os.path.join(midi_dir or work_dir, f"{source}_{i}.mid")
                compose.write_midi(midi, song.tempo, [part], [program], [controls])
                audio = render_midi(midi, font, settings, num_samples, sample_rate, work_dir)
            audio = place_stereo(audio, rng.uniform(low_w, high_w),
                                 rng.uniform(-max_pan, max_pan))
            if levers:
                audio = levers.produce(source, i, audio, song.tempo, sample_rate)
            rendered[source].append((family, audio))
    return rendered


def _level(rendered: dict, rng: np.random.Generator, sample_rate: int) -> dict:
    """Scales each source to its target level (dBFS, active RMS); returns
    per source the list of ``(family, scaled audio)``. Raises if a source is
    silent."""
    out = {}
    for source, parts in rendered.items():
        total = sum((a for _, a in parts), np.zeros((1, 2), np.float32))
        rms = active_rms(total, sample_rate) if total.shape[0] > 1 else 0.0
        if rms < 1e-5:
            raise GenerationError(f"the {source} stem rendered silent")
        gain = 10 ** ((LEVELS_DB[source] + rng.uniform(-5.0, 5.0)) / 20) / rms
        out[source] = [(family, (a * gain).astype(np.float32)) for family, a in parts]
    return out


def _quantise(parts: dict, instrument_stems: bool) -> dict:
    """int16 stems ``{name: (n, 2)}``: the four sources, plus per-family
    stems of ``other`` (whose exact int sum is ``other``) if asked."""
    stems = {s: sum(a for _, a in parts[s]) for s in SOURCES}
    if not instrument_stems:
        return quantise_stems(stems)
    families = {}
    for family, audio in parts["other"]:
        families[family] = families.get(family, 0) + audio
    loud = float(np.max(np.abs(stems["other"])))
    pre = min(1.0, 0.89 / max(loud, 1e-9))  # keep the sum of the families in range too
    split = {**{s: stems[s] * pre for s in SOURCES if s != "other"},
             **{f: a * pre for f, a in families.items()}}
    quantised = quantise_stems(split)
    quantised["other"] = np.sum([quantised[f].astype(np.int32) for f in families],
                                axis=0).astype(np.int16)
    return quantised


def song_name(rng: np.random.Generator, subset: str, index: int, song: compose.Song) -> str:
    word_a = _WORDS_A[int(rng.integers(len(_WORDS_A)))]
    word_b = _WORDS_B[int(rng.integers(len(_WORDS_B)))]
    return (f"BSRNN Sampled {subset.capitalize()} {index:03d} - {word_a} {word_b} "
            f"({song.key_name}, {int(song.tempo)} bpm)")


def render_song(seed: int, subset: str, index: int, seconds: float, soundfonts: list,
                sample_rate: int = 44100, instrument_stems: bool = False,
                silent_prob: float = 0.25, midi_dir: str | None = None, recipe=None) -> tuple:
    """Composes and renders one song.

    ``soundfonts`` are resolved paths; one is drawn per song. Returns
    ``(track name, {stem: (samples, 2) int16}, info dict)``. Writes the MIDI
    files of the parts to ``midi_dir`` if given. ``recipe``: a
    :class:`~bsrnn_tf.datasets.produced.Recipe` whose kits and voices are
    set (:func:`~bsrnn_tf.datasets.produced.for_subset`), or None (the plain
    sampled song). Deterministic in ``(seed, subset, index, soundfonts,
    recipe)``.
    """
    key = [seed, _SUBSET_IDS.get(subset, 0), index]
    rng = np.random.default_rng(key)
    soundfont = soundfonts[int(rng.integers(len(soundfonts)))]
    presets = instruments.soundfont_presets(soundfont)
    song = compose.compose_song(np.random.default_rng(rng.integers(2 ** 63)), seconds,
                                silent_prob)
    name = song_name(rng, subset, index, song)
    levers = None
    if recipe is not None and recipe.active:
        from bsrnn_tf.datasets.produced import SongLevers
        levers = SongLevers(recipe, key, song)
    programs = _assign_programs(song, rng, presets, bool(recipe and recipe.more_timbres))
    num_samples = int(round(seconds * sample_rate))
    with tempfile.TemporaryDirectory(prefix="bsrnn-sampled-") as work:
        parts = _render_parts(song, programs, soundfont, rng, num_samples, sample_rate,
                              work, midi_dir, levers, tuple(soundfonts))
    stems = _quantise(_level(parts, rng, sample_rate), instrument_stems)
    info = {"subset": subset, "name": name, "soundfont": os.path.basename(soundfont),
            "key": song.key_name, "tempo": song.tempo, "groove": song.groove,
            "sections": [[int(a), int(b)] for a, b in song.sections],
            "active": {s: [bool(x) for x in song.active[s]] for s in SOURCES},
            "instruments": {s: [{"family": f, "bank": b, "program": p,
                                 "preset": presets.get((b, p), "")}
                                for f, (b, p) in programs[s]] for s in SOURCES}}
    if levers:
        info["levers"] = levers.info()
    return name, stems, info
