"""The built-in generated multitrack dataset.

Synthesized songs in the MUSDB18-HQ layout, so that every command runs
offline::

    OUT/train/<track>/{mixture,drums,bass,other,vocals}.wav
    OUT/test/<track>/...
    OUT/bsrnn_tf_generated.json        parameters; marks a complete dataset

Files are 44.1 kHz stereo 16-bit PCM. The stems are quantised first and the
mixture is written as the exact integer sum of the quantised stems (the gains
leave headroom so nothing clips), so ``mixture == sum(stems)`` holds sample
for sample.

Each song has a key and a chord progression, a tempo, drum patterns (kick,
snare, hats and an open hat made of pitched transients and shaped noise), a
bass line on the chord roots, chords and arpeggios for ``other`` in several
timbres, and a vocal-like lead (a harmonic source with vibrato and glides,
shaped by vowel formants, sung in phrases with rests). Every part has its own
stereo placement. A song depends only on ``(seed, subset, index)``, so the
dataset and its track names are deterministic for a seed.

This module levels, quantises, mixes and writes the songs, and makes the
built-in copy (the ``make-dataset`` command is :mod:`bsrnn_tf.datasets.cli`); the music (plan and the four
renderers) is :mod:`bsrnn_tf.datasets.synth_parts`, its signal building
blocks :mod:`bsrnn_tf.datasets.synth_dsp`. Both are re-exported here.

musdb splits ``train`` into train/valid with a hard-coded list of MUSDB track
names; these names are not in it, so ``bsrnn_tf.data.musdb.load_tracks``
applies its own deterministic split to them.
"""

from __future__ import annotations

import json
import os
from typing import Callable, Optional
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import soundfile as sf

from bsrnn_tf.datasets.synth_parts import (SongPlan, plan_song, render_bass, render_drums,
                                           render_other, render_vocals)
from bsrnn_tf.datasets.cache import GenerationError, cached_dataset
from bsrnn_tf.datasets.synth_dsp import midi_to_hz
from bsrnn_tf.data.track import SOURCES

DATASET_VERSION = 1
MARKER_FILE = "bsrnn_tf_generated.json"
DEFAULT_TRACKS_TRAIN = 12
DEFAULT_TRACKS_TEST = 4
DEFAULT_SECONDS = 20.0
DEFAULT_SEED = 0

_SUBSET_IDS = {"train": 1, "test": 2}

__all__ = ["SOURCES", "DATASET_VERSION", "MARKER_FILE", "DEFAULT_TRACKS_TRAIN",
           "DEFAULT_TRACKS_TEST", "DEFAULT_SECONDS", "DEFAULT_SEED", "GenerationError",
           "SongPlan", "builtin_dataset_root", "make_dataset", "midi_to_hz", "mix_stems",
           "plan_song", "quantise_stems", "render_bass", "render_drums",
           "render_other", "render_song", "render_vocals"]


# ----------------------------------------------------------------- mixing


_RENDERERS = {"drums": render_drums, "bass": render_bass, "other": render_other,
              "vocals": render_vocals}
_LEVELS_DB = {"drums": -16.0, "bass": -19.0, "other": -21.0, "vocals": -17.0}


def render_song(seed: int, subset: str, index: int, seconds: float,
                sample_rate: int = 44100) -> tuple[str, dict[str, np.ndarray]]:
    """Renders one song to quantised stems.

    Returns ``(track name, {source: (samples, 2) int16})``; the mixture is
    their sum (see :func:`mix_stems`). Deterministic in ``(seed, subset,
    index)``.
    """
    rng = np.random.default_rng([seed, _SUBSET_IDS.get(subset, 0), index])
    plan = plan_song(rng, subset, index, seconds, sample_rate)
    stems = {}
    for name in SOURCES:
        part = _RENDERERS[name](plan, np.random.default_rng(rng.integers(2 ** 63)))
        rms = np.sqrt(np.mean(part.astype(np.float64) ** 2)) + 1e-12
        level = _LEVELS_DB[name] + rng.uniform(-3.0, 3.0)
        stems[name] = part * np.float32(10 ** (level / 20) / rms)
    return plan.name, quantise_stems(stems)


def quantise_stems(stems: dict[str, np.ndarray], peak: float = 0.89) -> dict[str, np.ndarray]:
    """Scales float stems so that neither a stem nor their sum exceeds
    ``peak`` (full scale 1.0) and quantises them to int16."""
    total = sum(stems.values())
    loudest = max([np.max(np.abs(total))] + [np.max(np.abs(s)) for s in stems.values()])
    scale = min(1.0, peak / max(float(loudest), 1e-9)) * 32767.0
    return {k: np.round(v * scale).astype(np.int16) for k, v in stems.items()}


def mix_stems(stems: dict[str, np.ndarray]) -> np.ndarray:
    """Exact integer sum of int16 stems; raises if it would clip."""
    total = np.sum([s.astype(np.int32) for s in stems.values()], axis=0)
    if np.max(np.abs(total)) > 32767:
        raise GenerationError("mixture would clip; lower the stem levels")
    return total.astype(np.int16)


def _write_song(folder: str, stems: dict[str, np.ndarray], sample_rate: int) -> None:
    os.makedirs(folder, exist_ok=True)
    for name, audio in {**stems, "mixture": mix_stems(stems)}.items():
        sf.write(os.path.join(folder, f"{name}.wav"), audio, sample_rate, subtype="PCM_16")


def _render_and_write(job: tuple) -> str:
    out_dir, seed, subset, index, seconds, sample_rate = job
    name, stems = render_song(seed, subset, index, seconds, sample_rate)
    _write_song(os.path.join(out_dir, subset, name), stems, sample_rate)
    return name


def make_dataset(out_dir: str, tracks_train: int = DEFAULT_TRACKS_TRAIN,
                 tracks_test: int = DEFAULT_TRACKS_TEST, seconds: float = DEFAULT_SECONDS,
                 seed: int = DEFAULT_SEED, sample_rate: int = 44100,
                 workers: int = 1,
                 progress: Optional[Callable[[int, int, str], None]] = None) -> str:
    """Writes a generated dataset in the MUSDB18-HQ layout to ``out_dir``.

    ``seconds`` is the length of every track; ``workers > 1`` renders songs
    in that many processes (the output does not depend on it);
    ``progress(done, total, name)`` is called after each song. Writes the
    marker file ``bsrnn_tf_generated.json`` last. Returns ``out_dir``.
    """
    if tracks_train < 0 or tracks_test < 0 or tracks_train + tracks_test == 0:
        raise GenerationError("need at least one track (tracks_train + tracks_test >= 1)")
    if seconds <= 0:
        raise GenerationError(f"seconds must be positive, got {seconds}")
    jobs = [(out_dir, seed, subset, i, seconds, sample_rate)
            for subset, count in (("train", tracks_train), ("test", tracks_test))
            for i in range(count)]
    os.makedirs(out_dir, exist_ok=True)
    if workers > 1 and len(jobs) > 1:
        import multiprocessing
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=context) as pool:
            names = _reporting(pool.map(_render_and_write, jobs), len(jobs), progress)
    else:
        names = _reporting(map(_render_and_write, jobs), len(jobs), progress)
    meta = {"version": DATASET_VERSION, "seed": seed, "seconds": seconds,
            "sample_rate": sample_rate, "tracks_train": tracks_train,
            "tracks_test": tracks_test, "tracks": names}
    with open(os.path.join(out_dir, MARKER_FILE), "w") as f:
        json.dump(meta, f, indent=2)
    return out_dir


def _reporting(names, total: int, progress) -> list:
    done = []
    for name in names:
        done.append(name)
        if progress is not None:
            progress(len(done), total, name)
    return done


def _print_progress(done: int, total: int, name: str) -> None:
    print(f"  {done}/{total} {name}", flush=True)


# ------------------------------------------------------- built-in location


def builtin_dataset_root() -> str:
    """Directory of the built-in synth dataset, generated on first use:
    ``$BSRNN_TF_DATA`` if set, else ``~/.cache/bsrnn_tf/generated-v1`` (see
    :func:`bsrnn_tf.datasets.cache.cached_dataset`)."""

    def make(out_dir: str) -> None:
        make_dataset(out_dir, tracks_train=DEFAULT_TRACKS_TRAIN, tracks_test=DEFAULT_TRACKS_TEST,
                     seconds=DEFAULT_SECONDS, seed=DEFAULT_SEED,
                     workers=min(4, os.cpu_count() or 1), progress=_print_progress)

    return cached_dataset("BSRNN_TF_DATA", "~/.cache/bsrnn_tf/generated-v1", MARKER_FILE, make,
                          "built-in synth dataset", GenerationError)
