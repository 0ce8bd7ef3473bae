"""One MUSDB track: the :class:`Track` that reads its audio, and the checks
that make one from a folder or a stem file.

A :class:`Track` reads its stems lazily, with ``soundfile`` for MUSDB18-HQ
WAVs (whole files or windows of them) and with ``stempeg`` (ffmpeg) for
MUSDB18 ``.stem.mp4`` files; mono stems are duplicated to stereo.
:func:`check_wav_track` and :func:`check_stem_track` check a track from its
headers or ffprobe metadata, without decoding it, and raise
:class:`DataError` naming the track and the problem. Finding the tracks of a
dataset root is :mod:`bsrnn_tf.data.musdb`.
"""

from __future__ import annotations

import os
import re
import threading
from typing import Iterable, Optional, Sequence

import numpy as np
import soundfile as sf

from bsrnn_tf.audio import riff_truncated

SOURCES = ("drums", "bass", "other", "vocals")
STEM_IDS = {"mixture": 0, "drums": 1, "bass": 2, "other": 3, "vocals": 4}
_STEM_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def source_set(targets: Sequence[str] = ()) -> tuple:
    """The sources that sum to the mixture when a model separates ``targets``:
    the four MUSDB stems, plus every other target as an **instrument stem**
    carved out of ``other`` (e.g. ``("drums", "bass", "other", "vocals",
    "piano")``, where ``other`` then means other without piano).

    An instrument stem ``<name>.wav`` lies beside the four stems in a
    MUSDB18-HQ track folder and is part of ``other.wav`` (as the built-in
    generator's ``--instrument-stems`` writes them); a track without the file
    has none of that instrument. Raises ``ValueError`` for a name that cannot
    be a stem file (``mixture``, upper case, paths)."""
    extras = []
    for t in targets:
        if t in SOURCES or t in extras:
            continue
        if t == "mixture" or not _STEM_NAME.match(t):
            raise ValueError(f"{t!r} cannot be a target: a target is one of {list(SOURCES)} or "
                             f"the name of an instrument stem file (<name>.wav: lower case "
                             f"letters, digits, _)")
        extras.append(t)
    return SOURCES + tuple(extras)


class DataError(ValueError):
    """Unusable audio data; the message names the track or folder and the problem."""


class DataWarning(UserWarning):
    """Tracks were skipped or repaired (e.g. mono duplicated to stereo)."""


class Track:
    """One multitrack song.

    Waveforms are float32 ``(samples, 2)`` in [-1, 1] at ``sample_rate`` Hz.
    ``sources`` and ``mixture`` are read on first access and kept; ``unload``
    frees them. ``read`` gives a window without loading the whole track.
    """

    def __init__(self, name: str, subset: str, sample_rate: int, num_samples: int,
                 source_names: Sequence[str], paths: Optional[dict] = None,
                 stem_path: Optional[str] = None, mono: Iterable[str] = ()):
        self.name = name
        self.subset = subset
        self.sample_rate = int(sample_rate)
        self.num_samples = int(num_samples)
        self.source_names = tuple(source_names)
        # Instrument stems (see source_set): read from their files (silence
        # where the track has none) and taken out of "other".
        self.extras = tuple(s for s in self.source_names if s not in SOURCES)
        self.paths = dict(paths or {})      # WAV: {source or 'mixture': path}
        self.stem_path = stem_path          # MUSDB18: the .stem.mp4 file
        self.mono = frozenset(mono)
        self._sources: Optional[dict] = None
        self._mixture: Optional[np.ndarray] = None
        self._rms_db: dict = {}
        self._lock = threading.Lock()  # tf.data reads tracks from several threads

    def __repr__(self) -> str:
        return (f"Track({self.name!r}, {self.subset}, {self.num_samples / self.sample_rate:.1f} s, "
                f"{'wav' if self.is_wav else 'stem.mp4'})")

    @property
    def is_wav(self) -> bool:
        return self.stem_path is None

    @property
    def is_loaded(self) -> bool:
        return self._sources is not None

    @property
    def decoded_bytes(self) -> int:
        """Memory that ``sources`` takes once loaded (float32 stereo)."""
        return self.num_samples * 2 * 4 * len(self.source_names)

    @property
    def sources(self) -> dict:
        """``{source: (samples, 2) float32}``, read on first access."""
        if self._sources is None:
            with self._lock:
                if self._sources is None:
                    self._sources = self._read_sources()
        return self._sources

    @property
    def mixture(self) -> np.ndarray:
        """``(samples, 2)`` float32: mixture.wav / stem 0, or the sum of the
        sources when the WAV folder has no mixture."""
        if self._mixture is None:
            if not self.is_wav:
                self._mixture = _fit_length(self._read_stems([STEM_IDS["mixture"]])[0],
                                            self.num_samples)
            elif "mixture" in self.paths:
                self._mixture = self._read_wav(self.paths["mixture"])
            elif set(SOURCES) <= set(self.source_names):  # with extras: a partition too
                self._mixture = np.sum([self.sources[s] for s in self.source_names], axis=0)
            else:
                raise DataError(f"track {self.name!r}: no mixture.wav, and the sum of the "
                                f"sources needs all of {list(SOURCES)} (loaded: "
                                f"{list(self.source_names)})")
        return self._mixture

    def load(self) -> "Track":
        """Reads all sources into memory now; returns ``self``."""
        _ = self.sources
        return self

    def unload(self) -> None:
        """Frees the decoded audio (it is read again on the next access)."""
        self._sources = None
        self._mixture = None

    def read(self, source: str, start: int, length: int) -> np.ndarray:
        """Window ``[start, start + length)`` of ``source`` (samples), zero
        padded past the end, ``(length, 2)`` float32. From memory when loaded,
        else from disk."""
        loaded = self._sources  # unload() may run in another thread
        if loaded is not None:
            audio = loaded[source][start:start + length]
        else:
            audio = self._derive(source, lambda s: self._read_file(s, start, length))
        if audio.shape[0] < length:
            audio = np.pad(audio, ((0, length - audio.shape[0]), (0, 0)))
        return np.ascontiguousarray(audio, dtype=np.float32)

    def has_stem(self, source: str) -> bool:
        """Whether ``source`` has a reference in this track: the four stems
        always; an instrument stem only where its file exists (a track
        without it reads it as silence, which is no reference to score)."""
        return source not in self.extras or source in self.paths

    def _derive(self, source: str, read) -> np.ndarray:
        """``source`` from the files, ``read(stem)`` reading one: ``other``
        less the instrument stems, an instrument stem the track lacks as
        silence."""
        if source in self.extras and source not in self.paths:
            return np.zeros_like(read("other"))
        audio = read(source)
        if source == "other":
            for extra in self.extras:
                if extra in self.paths:
                    part = read(extra)
                    n = min(len(audio), len(part))
                    audio = audio[:n] - part[:n]
        return audio

    def _read_file(self, source: str, start: int = 0, length: Optional[int] = None):
        if self.is_wav:
            return self._read_wav(self.paths[source], start,
                                  None if length is None else start + length)
        return self._read_stems([STEM_IDS[source]], start, length)[0]

    def rms_db(self, source: str) -> float:
        """RMS of the whole source over both channels, dB re full scale
        (-inf for digital silence). Computed once, blockwise when not loaded."""
        if source not in self._rms_db:
            if self._sources is not None:
                x = self._sources[source].astype(np.float64)
                power = float(np.mean(x * x))
            else:
                power = self._streamed_power(source)
            with np.errstate(divide="ignore"):
                self._rms_db[source] = float(10.0 * np.log10(power))
        return self._rms_db[source]

    # -------------------------------------------------------------- reading

    def _streamed_power(self, source: str, block: int = 1 << 20) -> float:
        total, count = 0.0, 0
        for start in range(0, self.num_samples, block):
            x = self.read(source, start, min(block, self.num_samples - start)).astype(np.float64)
            total += float(np.sum(x * x))
            count += x.size
        return total / max(count, 1)

    def _read_sources(self) -> dict:
        if self.is_wav:
            files = {}

            def read(stem):
                if stem not in files:
                    files[stem] = _fit_length(self._read_wav(self.paths[stem]),
                                              self.num_samples)
                return files[stem]

            audio = {s: self._derive(s, read) for s in self.source_names}
        else:
            stems = self._read_stems([STEM_IDS[s] for s in self.source_names])
            audio = dict(zip(self.source_names, stems))
        return {s: _fit_length(a, self.num_samples) for s, a in audio.items()}

    def _read_wav(self, path: str, start: int = 0, stop: Optional[int] = None) -> np.ndarray:
        try:
            audio, _ = sf.read(path, start=start, stop=stop, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as e:
            raise DataError(f"track {self.name!r}: cannot read {path}: {e}") from None
        return _to_stereo(audio)

    def _read_stems(self, stem_ids: list, start: int = 0,
                    length: Optional[int] = None) -> list:
        import stempeg  # imported here: it needs ffmpeg on PATH
        kwargs = {}
        if start or length is not None:
            kwargs = {"start": start / self.sample_rate,
                      "duration": None if length is None else length / self.sample_rate}
        if len(stem_ids) == 1:  # decode one stream only
            kwargs["stem_id"] = stem_ids[0]
        try:
            stems, _ = stempeg.read_stems(self.stem_path, dtype=np.float32, always_3d=True,
                                          ffmpeg_format="s16le", **kwargs)
        except Exception as e:  # ffmpeg errors come in several types
            raise DataError(f"track {self.name!r}: cannot decode {self.stem_path}: {e}") from None
        if len(stem_ids) == 1:
            return [_to_stereo(stems[0])]
        return [_to_stereo(stems[i]) for i in stem_ids]


def _to_stereo(audio: np.ndarray) -> np.ndarray:
    if audio.shape[1] == 1:
        return np.repeat(audio, 2, axis=1)
    return audio


def _fit_length(audio: np.ndarray, num_samples: int) -> np.ndarray:
    if audio.shape[0] >= num_samples:
        return audio[:num_samples]
    return np.pad(audio, ((0, num_samples - audio.shape[0]), (0, 0)))


# ----------------------------------------------------------- track checks


def _check_wav_file(track: str, label: str, path: str) -> sf._SoundFileInfo:
    if not os.path.isfile(path):
        raise DataError(f"track {track!r}: missing stem {label!r} ({os.path.basename(path)})")
    try:
        if riff_truncated(path):
            raise DataError(f"track {track!r}: {label} is truncated "
                            f"({os.path.basename(path)} ends before its declared data)")
        info = sf.info(path)
    except (sf.LibsndfileError, RuntimeError) as e:
        raise DataError(f"track {track!r}: {label} cannot be read as audio "
                        f"({os.path.basename(path)}: {e})") from None
    if info.frames == 0:
        raise DataError(f"track {track!r}: {label} has no samples ({os.path.basename(path)})")
    if info.channels not in (1, 2):
        raise DataError(f"track {track!r}: {label} has {info.channels} channels; "
                        f"expected mono or stereo")
    return info


def _check_consistent(track: str, rates: dict, lengths: dict) -> None:
    if len(set(rates.values())) > 1:
        listing = ", ".join(f"{k} {v} Hz" for k, v in rates.items())
        raise DataError(f"track {track!r}: stems have different sample rates ({listing})")
    if len(set(lengths.values())) > 1:
        listing = ", ".join(f"{k} {v}" for k, v in lengths.items())
        raise DataError(f"track {track!r}: stems have different lengths in samples ({listing})")


def check_wav_track(folder: str, name: str, subset: str,
                    source_names: Sequence[str] = SOURCES) -> Track:
    """Checks a MUSDB18-HQ track folder without decoding it; returns its
    :class:`Track` or raises :class:`DataError`. Instrument stems
    (:func:`source_set`) are optional files; the four stems are not."""
    paths = {s: os.path.join(folder, f"{s}.wav") for s in source_names}
    paths = {s: p for s, p in paths.items() if s in SOURCES or os.path.exists(p)}
    mixture = os.path.join(folder, "mixture.wav")
    if os.path.exists(mixture):
        paths["mixture"] = mixture
    infos = {label: _check_wav_file(name, label, path) for label, path in paths.items()}
    _check_consistent(name, {k: i.samplerate for k, i in infos.items()},
                      {k: i.frames for k, i in infos.items()})
    first = next(iter(infos.values()))
    mono = [k for k, i in infos.items() if i.channels == 1]
    return Track(name, subset, first.samplerate, first.frames, source_names, paths=paths,
                 mono=mono)


def check_stem_track(path: str, name: str, subset: str, info=None,
                     source_names: Sequence[str] = SOURCES) -> Track:
    """Checks a MUSDB18 ``.stem.mp4`` file from its ffprobe metadata;
    returns its :class:`Track` or raises :class:`DataError`."""
    if info is None:
        import stempeg
        try:
            info = stempeg.Info(path)
        except Exception as e:
            raise DataError(f"track {name!r}: {os.path.basename(path)} cannot be read "
                            f"as a stem file ({type(e).__name__})") from None
    extras = [s for s in source_names if s not in SOURCES]
    if extras:
        raise DataError(f"track {name!r}: instrument stems {extras} need MUSDB18-HQ WAV folders "
                        f"(<track>/{extras[0]}.wav); a .stem.mp4 file holds only the four stems")
    needed = [STEM_IDS[s] for s in source_names] + [0]
    if info.nb_audio_streams <= max(needed):
        raise DataError(f"track {name!r}: {info.nb_audio_streams} audio streams; a stem file "
                        f"needs mixture, drums, bass, other, vocals (5)")
    labels = {i: k for k, i in STEM_IDS.items()}
    rates = {labels[i]: info.sample_rate(i) for i in needed}
    channels = {labels[i]: info.channels(i) for i in needed}
    _check_consistent(name, rates, {})
    bad = [k for k, c in channels.items() if c not in (1, 2)]
    if bad:
        raise DataError(f"track {name!r}: stream {bad[0]} has {channels[bad[0]]} channels")
    mono = [k for k, c in channels.items() if c == 1]
    return Track(name, subset, rates["mixture"], info.samples(0), source_names,
                 stem_path=path, mono=mono)
