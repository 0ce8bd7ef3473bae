"""Reading MUSDB18 (``.stem.mp4``) and MUSDB18-HQ (WAV folders) tracks.

Tracks are indexed through ``musdb.DB``; their audio is read lazily, with
``soundfile`` for WAV (whole files or windows of them) and with ``stempeg``
(ffmpeg) for stems. Layouts::

    ROOT/{train,test}/<track>/{mixture,drums,bass,other,vocals}.wav   MUSDB18-HQ
    ROOT/{train,test}/<track>.stem.mp4                                MUSDB18

Bad data is reported with the track and the problem (:class:`DataError`):
a bad track is skipped and all skipped tracks are named in one
:class:`DataWarning`, unless ``strict=True``; a root that is missing or not in
one of these layouts is an error before any track is read.

Mono stems are duplicated to stereo (with a :class:`DataWarning` naming
them); more than two channels is an error. A missing ``mixture.wav`` is
allowed: the mixture is then the sum of the sources.

Splits: musdb's ``split='train'|'valid'`` keeps or drops a hard-coded list of
14 MUSDB track names. When no track of a dataset is in that list (the
built-in generated dataset, any custom dataset) musdb would give an empty
validation split, so :func:`split_names` instead puts a deterministic ~14 %
of the tracks, chosen by a hash of their names, in ``valid``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import threading
import warnings
from typing import Iterable, Optional, Sequence

import numpy as np
import soundfile as sf

from bsrnn_tf.audio import riff_truncated

SOURCES = ("drums", "bass", "other", "vocals")
STEM_IDS = {"mixture": 0, "drums": 1, "bass": 2, "other": 3, "vocals": 4}
SUBSETS = ("train", "test")
VALID_FRACTION = 0.14  # musdb: 14 of 100 tracks
_LAYOUT_HELP = ("expected ROOT/train|test/<track>/{mixture,drums,bass,other,vocals}.wav "
                "(MUSDB18-HQ) or ROOT/train|test/<track>.stem.mp4 (MUSDB18)")


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
            elif set(SOURCES) <= set(self.source_names):
                self._mixture = np.sum([self.sources[s] for s in SOURCES], axis=0)
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
        elif self.is_wav:
            audio = self._read_wav(self.paths[source], start, start + length)
        else:
            audio = self._read_stems([STEM_IDS[source]], start, length)[0]
        if audio.shape[0] < length:
            audio = np.pad(audio, ((0, length - audio.shape[0]), (0, 0)))
        return np.ascontiguousarray(audio, dtype=np.float32)

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
            audio = {s: self._read_wav(self.paths[s]) for s in self.source_names}
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


# ------------------------------------------------------------------- roots


BUILTIN_DATASETS = {
    "sampled": "songs rendered from General MIDI soundfonts by FluidSynth "
               "(train: FluidR3_GM, test: TimGM6mb)",
    "synth": "synthesized songs",
}


def builtin_root(kind: str = "sampled") -> str:
    """Root of a built-in dataset (``sampled`` or ``synth``), made on first use."""
    if kind == "sampled":
        from bsrnn_tf.datasets.sampled import sampled_dataset_root
        return sampled_dataset_root()
    if kind == "synth":
        from bsrnn_tf.datasets.synth import builtin_dataset_root
        return builtin_dataset_root()
    raise DataError(f"unknown built-in dataset {kind!r}; choose one of {sorted(BUILTIN_DATASETS)}")


def resolve_root(musdb_root: Optional[str] = None, builtin: str = "sampled") -> tuple:
    """``(root, is_builtin)``: ``musdb_root``, else ``$MUSDB_PATH``, else the
    built-in dataset ``builtin`` (made on first use, announced with one
    printed line). A given root is checked with :func:`check_root`."""
    root = musdb_root or os.environ.get("MUSDB_PATH")
    if root:
        root = os.path.abspath(os.path.expanduser(root))
        check_root(root)
        return root, False
    root = builtin_root(builtin)
    print(f"No --musdb-root or MUSDB_PATH given: using the built-in {builtin} dataset "
          f"({BUILTIN_DATASETS[builtin]}) at {root}")
    return root, True


def check_root(root: str, subsets: Sequence[str] = ()) -> None:
    """Raises :class:`DataError` unless ``root`` is a MUSDB18 or MUSDB18-HQ
    folder with the given subsets (by default: at least one of train, test)."""
    if not os.path.exists(root):
        raise DataError(f"dataset root {root} does not exist")
    if not os.path.isdir(root):
        raise DataError(f"dataset root {root} is not a folder")
    present = [s for s in SUBSETS if os.path.isdir(os.path.join(root, s))]
    missing = [s for s in subsets if s not in present]
    if not present or missing:
        what = f"no {'/'.join(missing or SUBSETS)} subfolder"
        raise DataError(f"{root} is not a MUSDB18 dataset folder ({what}); {_LAYOUT_HELP}")
    for subset in subsets or present:
        detect_is_wav(root, subset)


def detect_is_wav(root: str, subset: str) -> bool:
    """True for MUSDB18-HQ (track folders of WAVs), False for MUSDB18
    (``.stem.mp4`` files) in ``root/subset``; :class:`DataError` for neither."""
    folder = os.path.join(root, subset)
    if not os.path.isdir(folder):
        raise DataError(f"{root} is not a MUSDB18 dataset folder (no {subset} subfolder); "
                        f"{_LAYOUT_HELP}")
    entries = [e for e in os.listdir(folder) if not e.startswith(".")]
    if not entries:
        raise DataError(f"{folder} is empty: no tracks; {_LAYOUT_HELP}")
    stems = [e for e in entries if e.endswith(".stem.mp4")]
    wav_dirs = [e for e in entries if os.path.isdir(os.path.join(folder, e)) and any(
        f.lower().endswith(".wav") for f in os.listdir(os.path.join(folder, e)))]
    if wav_dirs:
        return True
    if stems:
        return False
    raise DataError(f"{folder} has no track folders with WAV files and no .stem.mp4 files: "
                    f"not a MUSDB18 layout; {_LAYOUT_HELP}")


# ------------------------------------------------------------------ splits


def split_names(names: Sequence[str], split: Optional[str],
                musdb_valid: Iterable[str]) -> list:
    """Track names of ``split`` (None: all) among ``names`` of the train subset.

    musdb's own validation list when any name is in it; otherwise the
    ``round(14 %)`` (at least one, when there are two or more tracks) names
    with the smallest SHA-1 of the name form ``valid``.
    """
    names = list(names)
    if split is None:
        return names
    if split not in ("train", "valid"):
        raise ValueError(f"split must be None, 'train' or 'valid', got {split!r}")
    valid = set(musdb_valid) & set(names)
    if not valid and len(names) >= 2:
        count = max(1, int(round(VALID_FRACTION * len(names))))
        by_hash = sorted(names, key=lambda n: hashlib.sha1(n.encode()).hexdigest())
        valid = set(by_hash[:count])
    return [n for n in names if (n in valid) == (split == "valid")]


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
    :class:`Track` or raises :class:`DataError`."""
    paths = {s: os.path.join(folder, f"{s}.wav") for s in source_names}
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


# ------------------------------------------------------------- load_tracks


def load_tracks(root: str, subset: str = "train", split: Optional[str] = None,
                is_wav: Optional[bool] = None, targets: Sequence[str] = SOURCES,
                strict: bool = False) -> list:
    """Tracks of ``root`` (MUSDB18 or MUSDB18-HQ) as :class:`Track` objects.

    Args:
      subset: ``train`` or ``test``.
      split: for ``train``: None (all), ``train`` or ``valid`` (see
        :func:`split_names`).
      is_wav: True for MUSDB18-HQ WAV folders, False for ``.stem.mp4``,
        None to detect.
      targets: the stems every track must have and ``Track.sources`` holds;
        training needs all four (the mixture is their sum).
      strict: raise on the first bad track instead of skipping it.

    Raises :class:`DataError` for a root that is not MUSDB layout or when no
    usable track remains (an empty ``valid`` split of a dataset with a single
    train track gives ``[]``); bad tracks are skipped with one
    :class:`DataWarning`.
    """
    if subset not in SUBSETS:
        raise ValueError(f"subset must be 'train' or 'test', got {subset!r}")
    if split is not None and subset != "train":
        raise ValueError("split applies to the train subset only")
    unknown = [t for t in targets if t not in SOURCES]
    if unknown:
        raise ValueError(f"unknown stems {unknown}; MUSDB stems are {list(SOURCES)}")
    root = os.path.abspath(os.path.expanduser(root))
    check_root(root, [subset])
    if is_wav is None:
        is_wav = detect_is_wav(root, subset)
    names, infos, bad = _index_with_musdb(root, subset, is_wav)
    valid_list = _musdb_validation_names()
    names = split_names(names, split, valid_list)
    tracks, mono = [], []
    for name in names:
        try:
            if name in bad:
                raise bad[name]
            track = _check_track(root, subset, name, is_wav, infos.get(name), targets)
        except DataError as e:
            if strict:
                raise
            bad[name] = e
            continue
        tracks.append(track)
        if track.mono:
            mono.append(f"{name} ({', '.join(sorted(track.mono))})")
    skipped = [f"  {e}" for n, e in bad.items() if n in names]
    where = f"{root} [{subset}{'' if split is None else ', split ' + split}]"
    if skipped:
        warnings.warn(f"skipped {len(skipped)} of {len(names)} tracks with bad data in {where}:\n"
                      + "\n".join(skipped), DataWarning, stacklevel=2)
    if mono:
        warnings.warn(f"{len(mono)} track(s) have mono stems, duplicated to stereo: "
                      + "; ".join(mono), DataWarning, stacklevel=2)
    if not tracks and (names or split != "valid"):
        raise DataError(f"no usable tracks in {where}"
                        + (f" ({len(skipped)} skipped, see the warning)" if skipped else ""))
    return tracks


def _check_track(root: str, subset: str, name: str, is_wav: bool, info,
                 targets: Sequence[str]) -> Track:
    if is_wav:
        return check_wav_track(os.path.join(root, subset, name), name, subset, targets)
    return check_stem_track(os.path.join(root, subset, name + ".stem.mp4"), name, subset,
                            info, targets)


def _musdb_validation_names() -> list:
    import yaml
    import musdb
    with open(os.path.join(musdb.__path__[0], "configs", "mus.yaml")) as f:
        return list(yaml.safe_load(f)["validation_tracks"])


def _index_with_musdb(root: str, subset: str, is_wav: bool) -> tuple:
    """Track names (sorted, as musdb lists them), ``{name: stempeg.Info}``
    for stems, and ``{name: DataError}`` for tracks musdb could not open.

    ``musdb.DB`` probes every track with ffprobe and fails as a whole on one
    unreadable file; then the bad tracks are found one by one and musdb
    indexes a temporary view of the good ones (symbolic links)."""
    import musdb
    try:
        db = musdb.DB(root=root, is_wav=is_wav, subsets=[subset])
        bad = {}
    except Exception:
        bad = _find_unreadable(root, subset, is_wav)
        view = tempfile.mkdtemp(prefix="bsrnn_tf_musdb_view_")
        try:
            os.makedirs(os.path.join(view, subset))
            for entry in os.listdir(os.path.join(root, subset)):
                name = entry[:-len(".stem.mp4")] if entry.endswith(".stem.mp4") else entry
                if name not in bad:
                    os.symlink(os.path.join(root, subset, entry), os.path.join(view, subset, entry))
            try:
                db = musdb.DB(root=view, is_wav=is_wav, subsets=[subset])
            except Exception as e:
                raise DataError(f"musdb cannot index {root}/{subset}: {type(e).__name__}: {e}") \
                    from None
        finally:
            shutil.rmtree(view, ignore_errors=True)
    names = sorted({t.name for t in db.tracks if not t.name.startswith(".")} | set(bad))
    infos = {} if is_wav else {t.name: t.info for t in db.tracks}
    return names, infos, bad


def _find_unreadable(root: str, subset: str, is_wav: bool) -> dict:
    """``{name: DataError}`` for the tracks of ``root/subset`` that fail our checks."""
    folder = os.path.join(root, subset)
    bad = {}
    for entry in sorted(os.listdir(folder)):
        path = os.path.join(folder, entry)
        if entry.startswith("."):
            continue
        try:
            if is_wav and os.path.isdir(path):
                check_wav_track(path, entry, subset)
            elif not is_wav and entry.endswith(".stem.mp4"):
                check_stem_track(path, entry[:-len(".stem.mp4")], subset)
        except DataError as e:
            bad[entry[:-len(".stem.mp4")] if not is_wav else entry] = e
    return bad
