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

Every part is rendered by its own FluidSynth process with its own reverb and
chorus settings (room size, damping, level, width drawn per part), then cut to
the song length, widened/narrowed and panned in numpy, and levelled per
source (``synth._LEVELS_DB``-like targets with +-5 dB).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import warnings
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import soundfile as sf

from bsrnn_tf.datasets.synth import GenerationError, mix_stems, quantise_stems
from bsrnn_tf.datasets import compose, instruments

SOURCES = compose.SOURCES
DATASET_VERSION = 1
MARKER_FILE = "bsrnn_tf_sampled.json"
SOUNDFONT_DIR = "/usr/share/sounds/sf2"
TRAIN_SOUNDFONTS = ("FluidR3_GM.sf2",)
TEST_SOUNDFONTS = ("TimGM6mb.sf2",)
SOUNDFONT_PACKAGES = {"FluidR3_GM.sf2": "fluid-soundfont-gm",
                      "TimGM6mb.sf2": "timgm6mb-soundfont",
                      "FluidR3_GS.sf2": "fluid-soundfont-gs"}
DEFAULT_TRACKS_TRAIN = 60
DEFAULT_TRACKS_TEST = 8
DEFAULT_SECONDS = 30.0
DEFAULT_SEED = 0
FLUIDSYNTH = "fluidsynth"
LEVELS_DB = {"drums": -16.0, "bass": -19.0, "other": -21.0, "vocals": -17.0}

_SUBSET_IDS = {"train": 1, "test": 2}
_WORDS_A = ("Ashen", "Brass", "Cobalt", "Drifting", "Ember", "Faded", "Glass", "Hidden",
            "Ivory", "Jade", "Paper", "Scarlet", "Sunken", "Wooden")
_WORDS_B = ("Avenue", "Bridge", "Canyon", "Ferry", "Harvest", "Island", "Kitchen",
            "Lighthouse", "Mirror", "Parade", "Quarry", "Rooftop", "Tunnel", "Winter")


# ------------------------------------------------------------------ tools


def find_fluidsynth() -> str:
    """Path of the FluidSynth executable; :class:`GenerationError` if absent."""
    path = shutil.which(FLUIDSYNTH)
    if path is None:
        raise GenerationError("fluidsynth not found: install the Debian package `fluidsynth` "
                              "(scripts/install.sh does)")
    return path


def resolve_soundfont(name: str) -> str:
    """Absolute path of a soundfont given a path or a file name in
    ``/usr/share/sounds/sf2``; :class:`GenerationError` naming the Debian
    package if it is missing."""
    path = name if os.sep in name else os.path.join(SOUNDFONT_DIR, name)
    if not os.path.isfile(path):
        package = SOUNDFONT_PACKAGES.get(os.path.basename(path))
        hint = f"install the Debian package `{package}`" if package else "check the path"
        raise GenerationError(f"soundfont {path} not found: {hint} (scripts/install.sh does)")
    return os.path.abspath(path)


# -------------------------------------------------------------- instruments


def _assign_programs(song: compose.Song, rng: np.random.Generator, presets: dict) -> dict:
    """Per source a list of ``(family, (bank, program))``, one per part."""
    voice = instruments.choose_voice(rng, presets)
    chosen = {"drums": [("drums", instruments.choose_kit(rng, presets))],
              "bass": [("bass", instruments.choose_bass(rng, presets))],
              "vocals": [("vocals", voice if i == 0 else instruments.choose_voice(rng, presets))
                         for i in range(len(song.parts["vocals"]))]}
    used, other = set(), []
    for part in song.parts["other"]:
        family, program = instruments.choose_other(rng, part.role, presets, used)
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


def render_midi(midi_path: str, soundfont: str, settings: list, num_samples: int,
                sample_rate: int, work_dir: str, gain: float = 0.5) -> np.ndarray:
    """Renders a MIDI file with FluidSynth; ``(num_samples, 2)`` float32,
    cut (release and reverb tails past the song end) or zero-padded."""
    out = os.path.join(work_dir, os.path.basename(midi_path) + ".wav")
    cmd = [find_fluidsynth(), "-ni", "-q", "-g", f"{gain}", "-r", str(sample_rate),
           "-O", "float", "-T", "wav", "-F", out, "-o", "synth.cpu-cores=1"]
    for setting in settings:
        cmd += ["-o", setting]
    cmd += [soundfont, midi_path]
    done = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0 or not os.path.isfile(out):
        raise GenerationError(f"fluidsynth failed on {midi_path} (exit {done.returncode}): "
                              f"{done.stdout.strip()[-500:]}")
    audio, rate = sf.read(out, dtype="float32", always_2d=True)
    if rate != sample_rate or audio.shape[1] != 2:
        raise GenerationError(f"fluidsynth wrote {audio.shape[1]} channels at {rate} Hz")
    fitted = np.zeros((num_samples, 2), dtype=np.float32)
    fitted[: min(num_samples, len(audio))] = audio[:num_samples]
    return fitted


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
                  midi_dir: str | None = None) -> dict:
    """Per source the list of ``(family, (n, 2) float32)`` of its parts;
    the MIDI file of each part goes to ``midi_dir`` (default ``work_dir``) as
    ``<source>_<part>.mid``."""
    rendered = {}
    for source in SOURCES:
        low_w, high_w, max_pan = _PLACEMENT[source]
        rendered[source] = []
        for i, (part, (family, program)) in enumerate(zip(song.parts[source], programs[source])):
            if not part.notes:
                continue
            midi = os.path.join(midi_dir or work_dir, f"{source}_{i}.mid")
            compose.write_midi(midi, song.tempo, [part], [program], [_controls(rng, source)])
            audio = render_midi(midi, soundfont, _synth_settings(rng), num_samples,
                                sample_rate, work_dir)
            audio = place_stereo(audio, rng.uniform(low_w, high_w),
                                 rng.uniform(-max_pan, max_pan))
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
                silent_prob: float = 0.25, midi_dir: str | None = None) -> tuple:
    """Composes and renders one song.

    ``soundfonts`` are resolved paths; one is drawn per song. Returns
    ``(track name, {stem: (samples, 2) int16}, info dict)``. Writes the MIDI
    files of the parts to ``midi_dir`` if given. Deterministic in
    ``(seed, subset, index, soundfonts)``.
    """
    rng = np.random.default_rng([seed, _SUBSET_IDS.get(subset, 0), index])
    soundfont = soundfonts[int(rng.integers(len(soundfonts)))]
    presets = instruments.soundfont_presets(soundfont)
    song = compose.compose_song(np.random.default_rng(rng.integers(2 ** 63)), seconds,
                                silent_prob)
    name = song_name(rng, subset, index, song)
    programs = _assign_programs(song, rng, presets)
    num_samples = int(round(seconds * sample_rate))
    with tempfile.TemporaryDirectory(prefix="bsrnn-sampled-") as work:
        parts = _render_parts(song, programs, soundfont, rng, num_samples, sample_rate,
                              work, midi_dir)
    stems = _quantise(_level(parts, rng, sample_rate), instrument_stems)
    info = {"subset": subset, "name": name, "soundfont": os.path.basename(soundfont),
            "key": song.key_name, "tempo": song.tempo, "groove": song.groove,
            "sections": [[int(a), int(b)] for a, b in song.sections],
            "active": {s: [bool(x) for x in song.active[s]] for s in SOURCES},
            "instruments": {s: [{"family": f, "bank": b, "program": p,
                                 "preset": presets.get((b, p), "")}
                                for f, (b, p) in programs[s]] for s in SOURCES}}
    return name, stems, info


# ------------------------------------------------------------------ dataset


def _write_song(folder: str, stems: dict, sample_rate: int) -> None:
    os.makedirs(folder, exist_ok=True)
    mixture = mix_stems({s: stems[s] for s in SOURCES})
    for name, audio in {**stems, "mixture": mixture}.items():
        sf.write(os.path.join(folder, f"{name}.wav"), audio, sample_rate, subtype="PCM_16")


def _render_and_write(job: tuple) -> dict:
    out_dir, seed, subset, index, seconds, fonts, sample_rate, instrument_stems, silent = job
    name, stems, info = render_song(seed, subset, index, seconds, fonts, sample_rate,
                                    instrument_stems, silent)
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
                         progress: bool = True) -> str:
    """Writes a sampled dataset in the MUSDB18-HQ layout to ``out_dir``.

    ``seconds`` is the length of every track; soundfonts are file names in
    ``/usr/share/sounds/sf2`` or paths (one drawn per song from its subset's
    list). ``instrument_stems`` adds per-family stems of ``other`` (e.g.
    ``piano.wav``, present only where the song has that family).
    ``silent_prob`` is the chance that a source rests in a section (each
    still plays in at least half of them; 0 keeps every source playing).
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
    jobs = [(out_dir, seed, subset, i, seconds, fonts[subset], sample_rate, instrument_stems,
             silent_prob)
            for subset, count in (("train", tracks_train), ("test", tracks_test))
            for i in range(count)]
    os.makedirs(out_dir, exist_ok=True)
    infos = _run_jobs(jobs, workers, progress)
    meta = {"version": DATASET_VERSION, "kind": "sampled", "seed": seed, "seconds": seconds,
            "sample_rate": sample_rate, "tracks_train": tracks_train,
            "tracks_test": tracks_test, "instrument_stems": instrument_stems,
            "silent_prob": silent_prob,
            "soundfonts": {s: [os.path.basename(f) for f in v] for s, v in fonts.items()},
            "tracks": infos}
    with open(os.path.join(out_dir, MARKER_FILE), "w") as f:
        json.dump(meta, f, indent=2)
    return out_dir


def sampled_dataset_root() -> str:
    """Directory of the built-in sampled dataset, rendered on first use:
    ``$BSRNN_TF_SAMPLED_DATA`` if set, else ``~/.cache/bsrnn_tf/sampled-v1``
    (see :func:`bsrnn_tf.datasets.cache.cached_dataset`)."""
    from bsrnn_tf.datasets.cache import cached_dataset

    def make(out_dir: str) -> None:
        make_sampled_dataset(out_dir, workers=min(4, os.cpu_count() or 1))

    return cached_dataset("BSRNN_TF_SAMPLED_DATA", "~/.cache/bsrnn_tf/sampled-v1", MARKER_FILE,
                          make, "built-in sampled dataset", GenerationError)


# --------------------------------------------------------------------- CLI


def add_cli_arguments(parser) -> None:
    """Adds ``--kind {synth,sampled}`` and the sampled-only options to the
    ``make-dataset`` parser of :mod:`bsrnn_tf.datasets.synth`."""
    parser.add_argument("--kind", choices=("synth", "sampled"), default="synth",
                        help="synth: the synthesized dataset; sampled: songs rendered from "
                             "soundfonts by FluidSynth (train and test use different fonts)")
    parser.add_argument("--train-soundfonts", nargs="+", default=list(TRAIN_SOUNDFONTS),
                        metavar="SF2", help="--kind sampled: soundfonts of the train songs "
                                            "(names in /usr/share/sounds/sf2 or paths)")
    parser.add_argument("--test-soundfonts", nargs="+", default=list(TEST_SOUNDFONTS),
                        metavar="SF2", help="--kind sampled: soundfonts of the test songs")
    parser.add_argument("--instrument-stems", action="store_true",
                        help="--kind sampled: also write per-family stems of other "
                             "(piano.wav, guitar.wav, ...; other.wav is their exact sum)")
