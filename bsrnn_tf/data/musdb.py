"""Finding MUSDB18 (``.stem.mp4``) and MUSDB18-HQ (WAV folders) tracks.

Tracks are indexed through ``musdb.DB``; their audio is read lazily by
:class:`~bsrnn_tf.data.track.Track` (:mod:`bsrnn_tf.data.track`, whose names
this module re-exports). Layouts::

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
import warnings
from typing import Iterable, Optional, Sequence

from bsrnn_tf.data.track import (SOURCES, STEM_IDS, DataError, DataWarning, Track, source_set,
                                 check_stem_track, check_wav_track)

__all__ = ["SOURCES", "STEM_IDS", "SUBSETS", "VALID_FRACTION", "BUILTIN_DATASETS", "DataError",
           "DataWarning", "Track", "builtin_root", "check_root", "check_stem_track",
           "check_wav_track", "detect_is_wav", "load_tracks", "resolve_root", "source_set",
           "split_names"]

SUBSETS = ("train", "test")
VALID_FRACTION = 0.14  # musdb: 14 of 100 tracks
_LAYOUT_HELP = ("expected ROOT/train|test/<track>/{mixture,drums,bass,other,vocals}.wav "
                "(MUSDB18-HQ) or ROOT/train|test/<track>.stem.mp4 (MUSDB18)")


# ------------------------------------------------------------------- roots


BUILTIN_DATASETS = {
    "sampled": "songs rendered from General MIDI soundfonts by FluidSynth "
               "(train: FluidR3_GM, test: TimGM6mb)",
    "synth": "synthesized songs",
    "produced": "songs rendered from several GM soundfonts, recorded Hydrogen drum kits and "
                "sung vocals, produced with effect chains (test: held-out font, kits, voices)",
    "produced-test": "the held-out produced split alone: TimGM6mb, held-out recorded drum kits "
                     "and voices, every song produced",
}


def builtin_root(kind: str = "sampled") -> str:
    """Root of a built-in dataset (``sampled`` or ``synth``), made on first use."""
    if kind == "sampled":
        from bsrnn_tf.datasets.sampled import sampled_dataset_root
        return sampled_dataset_root()
    if kind == "synth":
        from bsrnn_tf.datasets.synth import builtin_dataset_root
        return builtin_dataset_root()
    if kind in ("produced", "produced-test"):
        from bsrnn_tf.datasets.sampled import produced_dataset_root
        return produced_dataset_root(test_only=kind == "produced-test")
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
        training needs all four (the mixture is their sum). Other names are
        instrument stems (:func:`~bsrnn_tf.data.track.source_set`: optional
        ``<name>.wav`` files, taken out of ``other``); with one, the tracks
        hold the four stems too, and at least one track must have each.
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
    extras = source_set(targets)[len(SOURCES):]
    if extras:
        targets = source_set(targets)
    root = os.path.abspath(os.path.expanduser(root))
    check_root(root, [subset])
    if is_wav is None:
        is_wav = detect_is_wav(root, subset)
    names, infos, bad = _index_with_musdb(root, subset, is_wav)
    valid_list = _musdb_validation_names()
    names = split_names(names, split, valid_list)
    tracks, mono = _check_tracks(root, subset, names, is_wav, infos, bad, targets, strict)
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
    absent = [e for e in extras if tracks and not any(t.has_stem(e) for t in tracks)]
    if absent:
        raise DataError(f"no track in {where} has the instrument stem "
                        f"{absent[0]}.wav (a target other than {', '.join(SOURCES)} is read "
                        f"from <track>/<target>.wav)")
    return tracks


def _check_tracks(root: str, subset: str, names: Sequence[str], is_wav: bool, infos: dict,
                  bad: dict, targets: Sequence[str], strict: bool) -> tuple:
    """``(tracks, mono)``: the :class:`Track` of each good name and a note per
    track with mono stems; a bad track's :class:`DataError` goes into ``bad``
    (raised instead when ``strict``)."""
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
    return tracks, mono


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
