"""Multitrack songs rendered from recorded instrument samples (soundfonts).

Songs composed by :mod:`bsrnn_tf.datasets.compose` are written as MIDI and
rendered by FluidSynth from General MIDI soundfonts, in the MUSDB18-HQ
layout of :mod:`bsrnn_tf.datasets.synth`::

    OUT/train/<track>/{mixture,drums,bass,other,vocals}.wav
    OUT/test/<track>/...
    OUT/bsrnn_tf_sampled.json      parameters, soundfonts and instruments per
                                   track; written last, marks a complete dataset

44.1 kHz stereo 16-bit PCM; ``mixture`` is the exact integer sum of the
quantised stems. A song depends only on ``(seed, subset, index)`` and the
soundfont list of its subset.

Held-out timbres: ``train`` songs are rendered with FluidR3_GM and ``test``
songs with TimGM6mb only, a soundfont training never hears, so the test set
measures generalisation to unseen recordings of the instruments (the
compositions come from the same generator). FluidR3_GS (Debian
``fluid-soundfont-gs``) is not used: it holds only 33 sound-effect presets.

Instruments: drums use the font's kits (Standard, Room, Power, Electronic,
TR-808, Jazz, Brush, Orchestra and their variants); bass GM 32-39, 43 and the
font's synth-bass variations; ``other`` two or three parts of different
families (piano, mallets, organ, guitar, strings, brass, winds, synth,
plucked; see :mod:`bsrnn_tf.datasets.instruments`).

Vocals: only the fonts' voice presets (GM 52 Choir Aahs, 53 Voice Oohs,
54 Synth Voice, 85 Lead 6 voice), played as a monophonic lead plus an
occasional backing voice a third above. The formant-synthesis lead of
``synth.render_vocals`` is deliberately not mixed in: it sounds the same
in train and test, so it would make the test vocals partly a seen timbre and
blur what the soundfont split measures.

Levers (``recipe``, :mod:`bsrnn_tf.datasets.produced`): production effect
chains, recorded Hydrogen drum kits, sung vocals with words and more
soundfonts, each with its own probability; the test songs then use
held-out kits and voices. :func:`produced_dataset_root` makes the built-in
held-out produced split (and the all-levers candidate). Every source and
effect: ``bsrnn_tf/datasets/README.md``.

This module writes the dataset, makes the built-in copies and adds the sampled
options of ``make-dataset``. One song (each part rendered by its own
FluidSynth process with its own reverb and chorus, then placed in stereo and
levelled per source) is :mod:`bsrnn_tf.datasets.sampled_song`; FluidSynth and
the soundfont files are :mod:`bsrnn_tf.datasets.fluidsynth`. Their public
names are re-exported here.
"""

from __future__ import annotations

import json
import os
import warnings
from concurrent.futures import ProcessPoolExecutor

import soundfile as sf

from bsrnn_tf.datasets.fluidsynth import (FLUIDSYNTH, SOUNDFONT_DIR, SOUNDFONT_PACKAGES,
                                          find_fluidsynth, render_midi, resolve_soundfont)
from bsrnn_tf.datasets.sampled_song import (LEVELS_DB, SOURCES, active_rms, place_stereo,
                                            render_song, song_name)
from bsrnn_tf.datasets.cache import GenerationError, cached_dataset
from bsrnn_tf.fileio import atomic_save, atomic_write_text
from bsrnn_tf.datasets.synth import mix_stems

__all__ = ["SOURCES", "DATASET_VERSION", "MARKER_FILE", "SOUNDFONT_DIR", "TRAIN_SOUNDFONTS",
           "TEST_SOUNDFONTS", "SOUNDFONT_PACKAGES", "DEFAULT_TRACKS_TRAIN", "DEFAULT_TRACKS_TEST",
           "DEFAULT_SECONDS", "DEFAULT_SEED", "FLUIDSYNTH", "LEVELS_DB", "active_rms",
           "add_cli_arguments", "find_fluidsynth", "make_sampled_dataset", "place_stereo",
           "produced_dataset_root", "recipes_from_args", "render_midi", "render_song",
           "resolve_soundfont", "sampled_dataset_root", "song_name"]

DATASET_VERSION = 1
MARKER_FILE = "bsrnn_tf_sampled.json"
TRAIN_SOUNDFONTS = ("FluidR3_GM.sf2",)
TEST_SOUNDFONTS = ("TimGM6mb.sf2",)
DEFAULT_TRACKS_TRAIN = 60
DEFAULT_TRACKS_TEST = 8
DEFAULT_SECONDS = 30.0
DEFAULT_SEED = 0


# ------------------------------------------------------------------ dataset


def _write_song(folder: str, stems: dict, sample_rate: int) -> None:
    os.makedirs(folder, exist_ok=True)
    mixture = mix_stems({s: stems[s] for s in SOURCES})
    for name, audio in {**stems, "mixture": mixture}.items():
        atomic_save(os.path.join(folder, f"{name}.wav"),
                    lambda tmp, a=audio: sf.write(tmp, a, sample_rate, subtype="PCM_16"))


def _render_and_write(job: tuple) -> dict:
    (out_dir, seed, subset, index, seconds, fonts, sample_rate, instrument_stems, silent,
     recipe) = job
    name, stems, info = render_song(seed, subset, index, seconds, fonts, sample_rate,
                                    instrument_stems, silent, recipe=recipe)
    _write_song(os.path.join(out_dir, subset, name), stems, sample_rate)
    info["stems"] = sorted(stems)
    return info


def _run_jobs(jobs: list, workers: int, progress: bool) -> list:
    from tqdm import tqdm

    bar = tqdm(total=len(jobs), desc="sampled songs", unit="song", disable=not progress)
    results = []
    try:
        if workers > 1 and len(jobs) > 1:
            import multiprocessing
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=context) as pool:
                for info in pool.map(_render_and_write, jobs):
                    results.append(info)
                    bar.update()
        else:
            for job in jobs:
                results.append(_render_and_write(job))
                bar.update()
    finally:
        bar.close()
    return results


def make_sampled_dataset(out_dir: str, tracks_train: int = DEFAULT_TRACKS_TRAIN,
                         tracks_test: int = DEFAULT_TRACKS_TEST,
                         seconds: float = DEFAULT_SECONDS, seed: int = DEFAULT_SEED,
                         workers: int = 1, train_soundfonts=TRAIN_SOUNDFONTS,
                         test_soundfonts=TEST_SOUNDFONTS, sample_rate: int = 44100,
                         instrument_stems: bool = False, silent_prob: float = 0.25,
                         progress: bool = True, recipe=None, test_recipe=None) -> str:
    """Writes a sampled dataset in the MUSDB18-HQ layout to ``out_dir``.

    ``seconds`` is the length of every track; soundfonts are file names in
    ``/usr/share/sounds/sf2`` or paths (one drawn per song from its subset's
    list). ``instrument_stems`` adds per-family stems of ``other`` (e.g.
    ``piano.wav``, present only where the song has that family).
    ``silent_prob`` is the chance that a source rests in a section (each
    still plays in at least half of them; 0 keeps every source playing).
    ``recipe``: a :class:`~bsrnn_tf.datasets.produced.Recipe` (production,
    recorded kits, sung vocals, more timbres; its kits and voices default to
    the subset's, test ones held out), or None for the plain dataset;
    ``test_recipe`` replaces it for the test songs.
    ``workers``
    processes render songs; the output does not depend on it. The marker
    file ``bsrnn_tf_sampled.json`` is written last. Returns ``out_dir``.
    """
    if tracks_train < 0 or tracks_test < 0 or tracks_train + tracks_test == 0:
        raise GenerationError("need at least one track (tracks_train + tracks_test >= 1)")
    if seconds <= 0:
        raise GenerationError(f"seconds must be positive, got {seconds}")
    if not 0.0 <= silent_prob < 1.0:
        raise GenerationError(f"silent_prob must be in [0, 1), got {silent_prob}")
    find_fluidsynth()
    fonts = {"train": [resolve_soundfont(f) for f in train_soundfonts] if tracks_train else [],
             "test": [resolve_soundfont(f) for f in test_soundfonts] if tracks_test else []}
    for subset, count in (("train", tracks_train), ("test", tracks_test)):
        if count and not fonts[subset]:
            raise GenerationError(f"no soundfont given for the {subset} subset")
    shared = set(fonts["train"]) & set(fonts["test"])
    if shared:
        warnings.warn(f"train and test share soundfonts {sorted(shared)}: the test set then "
                      f"holds timbres seen in training", stacklevel=2)
    recipes = {}
    from bsrnn_tf.datasets.produced import check_available, for_subset
    for subset, count, r in (("train", tracks_train, recipe),
                             ("test", tracks_test, test_recipe or recipe)):
        if count and r is not None and r.active:
            recipes[subset] = for_subset(r, subset)
            check_available(recipes[subset])
    jobs = [(out_dir, seed, subset, i, seconds, fonts[subset], sample_rate, instrument_stems,
             silent_prob, recipes.get(subset))
            for subset, count in (("train", tracks_train), ("test", tracks_test))
            for i in range(count)]
    os.makedirs(out_dir, exist_ok=True)
    infos = _run_jobs(jobs, workers, progress)
    meta = {"version": DATASET_VERSION, "kind": "sampled", "seed": seed, "seconds": seconds,
            "sample_rate": sample_rate, "tracks_train": tracks_train,
            "tracks_test": tracks_test, "instrument_stems": instrument_stems,
            "silent_prob": silent_prob,
            "soundfonts": {s: [os.path.basename(f) for f in v] for s, v in fonts.items()},
            "recipe": {s: r.to_json() for s, r in recipes.items()} or None,
            "tracks": infos}
    atomic_write_text(os.path.join(out_dir, MARKER_FILE), json.dumps(meta, indent=2))
    return out_dir


def sampled_dataset_root() -> str:
    """Directory of the built-in sampled dataset, rendered on first use:
    ``$BSRNN_TF_SAMPLED_DATA`` if set, else ``~/.cache/bsrnn_tf/sampled-v1``
    (see :func:`bsrnn_tf.datasets.cache.cached_dataset`)."""

    def make(out_dir: str) -> None:
        make_sampled_dataset(out_dir, workers=min(4, os.cpu_count() or 1))

    return cached_dataset("BSRNN_TF_SAMPLED_DATA", "~/.cache/bsrnn_tf/sampled-v1", MARKER_FILE,
                          make, "built-in sampled dataset", GenerationError)


def produced_dataset_root(test_only: bool = True) -> str:
    """The built-in produced dataset, rendered on first use.

    ``test_only`` (``produced-test``, ``$BSRNN_TF_PRODUCED_TEST_DATA`` or
    ``~/.cache/bsrnn_tf/produced-test-v1``): the held-out produced split
    alone, 8 test songs of the default seed (the compositions of the sampled
    test songs) rendered with TimGM6mb, the held-out Hydrogen kits on every
    song, sung vocals with held-out voices on half of them, every song
    produced. Otherwise (``produced``, ``$BSRNN_TF_PRODUCED_DATA`` or
    ``~/.cache/bsrnn_tf/produced-v1``): the same test songs plus 60 train
    songs with every lever (``PRODUCED_RECIPE``; a candidate next default,
    not the default).
    """
    from bsrnn_tf.datasets.produced import (MORE_TRAIN_SOUNDFONTS, PRODUCED_RECIPE,
                                            PRODUCED_TEST_RECIPE)

    def make(out_dir: str) -> None:
        make_sampled_dataset(out_dir, tracks_train=0 if test_only else DEFAULT_TRACKS_TRAIN,
                             train_soundfonts=MORE_TRAIN_SOUNDFONTS, recipe=PRODUCED_RECIPE,
                             test_recipe=PRODUCED_TEST_RECIPE,
                             workers=min(4, os.cpu_count() or 1))

    name = "produced-test" if test_only else "produced"
    env = "BSRNN_TF_PRODUCED_TEST_DATA" if test_only else "BSRNN_TF_PRODUCED_DATA"
    return cached_dataset(env, f"~/.cache/bsrnn_tf/{name}-v1", MARKER_FILE, make,
                          f"built-in {name} dataset", GenerationError)


# --------------------------------------------------------------------- CLI


def add_cli_arguments(parser) -> None:
    """Adds ``--kind {synth,sampled}`` and the sampled-only options to the
    ``make-dataset`` parser of :mod:`bsrnn_tf.datasets.cli`."""
    parser.add_argument("--kind", choices=("synth", "sampled"), default="synth",
                        help="synth: the synthesized dataset; sampled: songs rendered from "
                             "soundfonts by FluidSynth (train and test use different fonts)")
    parser.add_argument("--train-soundfonts", nargs="+", metavar="SF2",
                        help="--kind sampled: soundfonts of the train songs (names in "
                             "/usr/share/sounds/sf2 or paths; default FluidR3_GM.sf2, with "
                             "--more-timbres every GM font but the test one)")
    parser.add_argument("--test-soundfonts", nargs="+", default=list(TEST_SOUNDFONTS),
                        metavar="SF2", help="--kind sampled: soundfonts of the test songs")
    parser.add_argument("--instrument-stems", action="store_true",
                        help="--kind sampled: also write per-family stems of other "
                             "(piano.wav, guitar.wav, ...; other.wav is their exact sum)")
    levers = parser.add_argument_group(
        "levers of --kind sampled (bsrnn_tf/datasets/produced.py; test songs use held-out "
        "kits and voices)")
    levers.add_argument("--production", type=float, default=0.0, metavar="P",
                        help="chance that a song's parts go through effect chains "
                             "(EQ, compression, saturation, echo, reverb, width)")
    levers.add_argument("--recorded-kits", type=float, default=0.0, metavar="P",
                        help="chance that the drums are a recorded Hydrogen kit")
    levers.add_argument("--sung-vocals", type=float, default=0.0, metavar="P",
                        help="chance that the vocals are sung words (espeak-ng + WORLD)")
    levers.add_argument("--more-timbres", action="store_true",
                        help="a soundfont per part among the train fonts, and any "
                             "instrument family in any role of other")
    levers.add_argument("--test-production", type=float, metavar="P",
                        help="--production of the test songs (default: the same)")
    levers.add_argument("--test-recorded-kits", type=float, metavar="P",
                        help="--recorded-kits of the test songs (default: the same)")
    levers.add_argument("--test-sung-vocals", type=float, metavar="P",
                        help="--sung-vocals of the test songs (default: the same)")


def recipes_from_args(args) -> tuple:
    """``(train recipe, test recipe, train soundfonts)`` of the parsed
    ``make-dataset`` options."""
    from bsrnn_tf.datasets.produced import MORE_TRAIN_SOUNDFONTS, Recipe

    train = Recipe(args.production, args.recorded_kits, args.sung_vocals, args.more_timbres)

    def pick(test_value, value):
        return value if test_value is None else test_value

    test = Recipe(pick(args.test_production, args.production),
                  pick(args.test_recorded_kits, args.recorded_kits),
                  pick(args.test_sung_vocals, args.sung_vocals), args.more_timbres)
    fonts = args.train_soundfonts or list(MORE_TRAIN_SOUNDFONTS if args.more_timbres
                                          else TRAIN_SOUNDFONTS)
    return train, test, fonts
