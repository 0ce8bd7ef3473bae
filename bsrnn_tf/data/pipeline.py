"""tf.data pipelines of training and validation examples.

An element is ``(mixture, {target: source})``, each float32 ``(batch,
segment_samples, 2)``; the mixture is the sum of all the tracks' sources
after augmentation: drums, bass, other, vocals, and any instrument stems
carved out of other (:func:`bsrnn_tf.data.track.source_set`, e.g. ``piano``
as a target: then ``other`` is other without piano, drawn on its own).

Training (:func:`train_dataset`), per example:

1. Draw: with ``remix`` each source comes from its own stream, which picks a
   random track and a random position (stateless TF ops on a per-element
   seed from ``Dataset.random(..., rerandomize_each_iteration=True)``, so
   positions change every epoch and still follow ``seed``); without
   ``remix`` one stream reads all four sources of one track at one position.
   The audio window is read in numpy (``tf.numpy_function``) from memory or,
   over the cache budget, from disk.
2. Source-activity detection (``source_activity``): a chunk is kept only if
   the target is active in it (:func:`bsrnn_tf.data.augment.source_activity`).
   Policy for several targets: each target must be active. With ``remix``
   every target stream is filtered on its own, so no other source is read in
   vain; without it, a chunk is kept when all its targets are active. A
   stream that rejects ``MAX_REJECTIONS`` chunks in a row stops with an
   error naming the source (a target silent in every track would otherwise
   loop forever).
3. Augmentation (gain, channel swap, target silencing), the mixture sum,
   and the loudness normalisation of :mod:`bsrnn_tf.preprocess` (the
   mixture's RMS to -20 dBFS, peak at most 0.99; sources scaled alike).
4. ``take(examples_per_epoch)``, ``batch(drop_remainder=True)``, prefetch.

Everything is stateless apart from tf.data's own seed generators, so the
dataset can be handed to ``strategy.experimental_distribute_dataset`` with
the global batch size.

Validation (:func:`valid_dataset`): fixed chunks of
``data.valid_segment_seconds`` (default: the training length), tracks in
round robin, positions from ``valid_seed``, all sources of one track, no augmentation,
no activity detection, the same loudness normalisation; read once and
cached in memory by tf.data.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
import tensorflow as tf

from bsrnn_tf.data import augment
from bsrnn_tf.data.track import SOURCES, DataError, Track
from bsrnn_tf.preprocess import normalize_example

AUTOTUNE = tf.data.AUTOTUNE
MAX_REJECTIONS = 2000


def segment_samples(data_cfg, sample_rate: int) -> int:
    """Training chunk length in samples."""
    return int(round(data_cfg.segment_seconds * sample_rate))


def valid_segment_seconds(data_cfg) -> float:
    """Validation chunk length in seconds: ``data_cfg.valid_segment_seconds``,
    or the training length when that is None."""
    seconds = data_cfg.valid_segment_seconds
    return data_cfg.segment_seconds if seconds is None else seconds


def valid_segment_samples(data_cfg, sample_rate: int) -> int:
    """Validation chunk length in samples (:func:`valid_segment_seconds`)."""
    return int(round(valid_segment_seconds(data_cfg) * sample_rate))


def _stream_seed(seed: int, *keys: int) -> int:
    """A distinct, deterministic 63-bit seed per (seed, keys)."""
    return int(np.random.SeedSequence([seed, *keys]).generate_state(1, np.uint64)[0] >> 1)


class ChunkReader:
    """The numpy side of the pipeline: windows of track audio.

    ``in_memory``: tracks are decoded once on first use and kept; otherwise
    each window is read from disk.
    """

    def __init__(self, tracks: Sequence[Track], segment: int, in_memory: bool):
        self.tracks = list(tracks)
        self.segment = segment
        self.in_memory = in_memory
        self.sources = self.tracks[0].source_names if self.tracks else SOURCES

    def _window(self, track: Track, source: str, start: int) -> np.ndarray:
        if self.in_memory:
            track.load()
        return track.read(source, start, self.segment)

    def source_chunk(self, track_index, source_index, start) -> tuple:
        """``((segment, 2) float32, track RMS of the source in dB float32)``."""
        track = self.tracks[int(track_index)]
        source = self.sources[int(source_index)]
        return (self._window(track, source, int(start)),
                np.float32(track.rms_db(source)))

    def track_chunk(self, track_index, start) -> np.ndarray:
        """All sources of a track at one position, ``(sources, segment, 2)`` float32."""
        track = self.tracks[int(track_index)]
        return np.stack([self._window(track, s, int(start)) for s in self.sources])

    def track_chunk_and_rms(self, track_index, start) -> tuple:
        """``(track_chunk, (sources,) float32 track RMS of each source in dB)``."""
        track = self.tracks[int(track_index)]
        rms = np.array([track.rms_db(s) for s in self.sources], dtype=np.float32)
        return self.track_chunk(track_index, start), rms


# ------------------------------------------------------------------ checks


def _check_inputs(tracks: Sequence[Track], targets: Sequence[str], sample_rate: int,
                  batch_size: int) -> list:
    targets = list(targets)
    if not targets:
        raise ValueError("targets must name at least one of " + ", ".join(SOURCES))
    if not tracks:
        raise DataError("no tracks to draw examples from")
    sources = tracks[0].source_names
    unknown = [t for t in targets if t not in sources]
    if unknown:
        raise ValueError(f"unknown targets {unknown}; the tracks provide {list(sources)} (load "
                         f"them with load_tracks(..., targets=source_set(targets)))")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    for track in tracks:
        missing = [s for s in SOURCES if s not in track.source_names]
        if missing:
            raise DataError(f"track {track.name!r} lacks {missing}: the mixture is the sum of "
                            f"all of {list(SOURCES)} (load tracks with the default targets)")
        if track.source_names != sources:
            raise DataError(f"track {track.name!r} holds the sources {list(track.source_names)}, "
                            f"track {tracks[0].name!r} {list(sources)}: load all with the same "
                            f"targets")
        if track.sample_rate != sample_rate:
            raise DataError(f"track {track.name!r} is at {track.sample_rate} Hz, the pipeline "
                            f"runs at {sample_rate} Hz; resample the dataset")
    return targets


def fits_in_memory(tracks: Sequence[Track], cache_budget_mb: float) -> bool:
    """Whether the decoded sources of all tracks fit the budget (MiB)."""
    return sum(t.decoded_bytes for t in tracks) <= cache_budget_mb * 2 ** 20


# ---------------------------------------------------------------- training


def _draw_position(seed: tf.Tensor, max_starts: tf.Tensor) -> tuple:
    """A random track index and start sample from an int64 seed."""
    key = tf.stack([seed, tf.constant(0, tf.int64)])
    keys = tf.random.experimental.stateless_split(key, 2)
    track = tf.random.stateless_uniform([], keys[0], 0, tf.size(max_starts, tf.int64), tf.int64)
    start = tf.random.stateless_uniform([], keys[1], 0, max_starts[track] + 1, tf.int64)
    return track, start


def _guard_rejections(ds: tf.data.Dataset, what: str) -> tf.data.Dataset:
    """Passes ``(chunk, active)`` through, failing after ``MAX_REJECTIONS``
    inactive chunks in a row."""
    message = (f"source-activity detection rejected {MAX_REJECTIONS} chunks of {what} in a "
               f"row: is it silent in these tracks? Lower data.activity_relative_db / "
               f"activity_floor_db or set data.source_activity = false")

    def step(count, element):
        chunk, active = element
        count = tf.where(active, tf.constant(0, tf.int64), count + 1)
        check = tf.debugging.assert_less(count, tf.constant(MAX_REJECTIONS, tf.int64),
                                         message=message)
        with tf.control_dependencies([check]):
            count = tf.identity(count)
        return count, (chunk, active)

    return ds.scan(tf.constant(0, tf.int64), step)


def _activity_fn(data_cfg):
    """``(chunk, track RMS dB) -> bool`` with the thresholds of ``data_cfg``."""
    def active(chunk, rms_db):
        return augment.source_activity(
            chunk, rms_db, data_cfg.activity_subchunks, data_cfg.activity_relative_db,
            data_cfg.activity_floor_db, data_cfg.activity_min_active)
    return active


def _filter_active(ds: tf.data.Dataset, active_fn, what: str) -> tf.data.Dataset:
    """Keeps the ``(chunk, rms_db, seed)`` elements whose ``active_fn(chunk,
    rms_db)`` holds; yields ``(chunk, seed)``."""
    def flag(chunk, rms_db, element_seed):
        return (chunk, element_seed), active_fn(chunk, rms_db)

    def is_active(_, active):
        return active

    def drop_flag(element, _):
        return element

    ds = ds.map(flag, num_parallel_calls=AUTOTUNE)
    return _guard_rejections(ds, what).filter(is_active).map(drop_flag)


def _augmentation_key(element_seed: tf.Tensor) -> tf.Tensor:
    """The stateless-random key of an element's augmentation: its seed and
    the stream number 1 (drawing its track and position uses stream 0)."""
    return tf.stack([element_seed, tf.constant(1, tf.int64)])


def _source_stream(reader: ChunkReader, max_starts: tf.Tensor, source_index: int,
                   is_target: bool, data_cfg, seed: int) -> tf.data.Dataset:
    """Infinite stream of augmented ``(segment, 2)`` chunks of one source,
    each from a random track and position (the remix)."""
    shape = (reader.segment, 2)

    def read(element_seed):
        track, start = _draw_position(element_seed, max_starts)
        chunk, rms = tf.numpy_function(reader.source_chunk, [track, source_index, start],
                                       [tf.float32, tf.float32], name="read_source_chunk")
        return tf.ensure_shape(chunk, shape), tf.ensure_shape(rms, []), element_seed

    ds = tf.data.Dataset.random(seed=_stream_seed(seed, source_index),
                                rerandomize_each_iteration=True)
    ds = ds.map(read, num_parallel_calls=AUTOTUNE)
    if is_target and data_cfg.source_activity:
        ds = _filter_active(ds, _activity_fn(data_cfg), reader.sources[source_index])
    else:
        ds = ds.map(lambda c, r, s: (c, s))
    return ds.map(lambda c, s: augment.augment(c, _augmentation_key(s), data_cfg, is_target),
                  num_parallel_calls=AUTOTUNE)


def _track_stream(reader: ChunkReader, max_starts: tf.Tensor, is_target: list,
                  data_cfg, seed: int) -> tf.data.Dataset:
    """Infinite stream of augmented ``(sources, segment, 2)``: all sources of
    one track at one position (no remix)."""
    shape = (len(reader.sources), reader.segment, 2)
    active = _activity_fn(data_cfg)

    def read(element_seed):
        track, start = _draw_position(element_seed, max_starts)
        chunks, rms = tf.numpy_function(reader.track_chunk_and_rms, [track, start],
                                        [tf.float32, tf.float32], name="read_track_chunk")
        return (tf.ensure_shape(chunks, shape), tf.ensure_shape(rms, [len(reader.sources)]),
                element_seed)

    def all_active(chunks, rms):
        rows = [i for i, t in enumerate(is_target) if t]
        return tf.reduce_all(tf.stack([active(chunks[i], rms[i]) for i in rows]))

    ds = tf.data.Dataset.random(seed=_stream_seed(seed, 99), rerandomize_each_iteration=True)
    ds = ds.map(read, num_parallel_calls=AUTOTUNE)
    if data_cfg.source_activity:
        names = " + ".join(s for s, t in zip(reader.sources, is_target) if t)
        ds = _filter_active(ds, all_active, names)
    else:
        ds = ds.map(lambda c, r, s: (c, s))
    return ds.map(lambda c, s: augment.augment(c, _augmentation_key(s), data_cfg, is_target),
                  num_parallel_calls=AUTOTUNE)


def _to_example(sources: Sequence[tf.Tensor], names: Sequence[str],
                targets: Sequence[str]) -> tuple:
    """Sources in the order of ``names`` -> ``(mixture, {target: source})``,
    loudness-normalised by the mixture (:mod:`bsrnn_tf.preprocess`)."""
    return normalize_example(tf.add_n(list(sources)),
                             {t: sources[list(names).index(t)] for t in targets})


def train_dataset(tracks: Sequence[Track], targets: Sequence[str], data_cfg, batch_size: int,
                  sample_rate: int = 44100, seed: int = 0) -> tf.data.Dataset:
    """Training batches ``(mixture, {target: source})``, float32
    ``(batch_size, segment_samples, 2)``; one pass is
    ``data_cfg.examples_per_epoch // batch_size`` batches (drop_remainder),
    with new random chunks on every pass. ``batch_size`` is the global
    batch under a ``tf.distribute`` strategy.

    ``data_cfg`` is a ``DataConfig``; tracks are decoded into memory on first
    use when they fit ``cache_budget_mb``, else read from disk per chunk.
    """
    targets = _check_inputs(tracks, targets, sample_rate, batch_size)
    if data_cfg.examples_per_epoch < batch_size:
        raise ValueError(f"data.examples_per_epoch ({data_cfg.examples_per_epoch}) is smaller "
                         f"than the batch size ({batch_size})")
    segment = segment_samples(data_cfg, sample_rate)
    in_memory = fits_in_memory(tracks, data_cfg.cache_budget_mb)
    if not in_memory and not all(t.is_wav for t in tracks):
        warnings.warn("MUSDB18 .stem.mp4 tracks over data.cache_budget_mb are decoded with ffmpeg "
                      "per chunk, which is slow; raise the budget or convert the dataset to WAV "
                      "(musdb's `musdbconvert`)", RuntimeWarning, stacklevel=2)
    reader = ChunkReader(tracks, segment, in_memory)
    max_starts = tf.constant([max(0, t.num_samples - segment) for t in tracks], tf.int64)
    names = reader.sources
    is_target = [s in targets for s in names]
    if data_cfg.remix:
        streams = tuple(_source_stream(reader, max_starts, i, is_target[i], data_cfg, seed)
                        for i in range(len(names)))
        ds = tf.data.Dataset.zip(streams)
    else:
        ds = _track_stream(reader, max_starts, is_target, data_cfg, seed)
        ds = ds.map(tf.unstack)
    ds = ds.take(data_cfg.examples_per_epoch)
    ds = ds.map(lambda *sources: _to_example(sources, names, targets),
                num_parallel_calls=AUTOTUNE)
    return ds.batch(batch_size, drop_remainder=True).prefetch(AUTOTUNE)


# -------------------------------------------------------------- validation


def valid_positions(tracks: Sequence[Track], count: int, segment: int, seed: int) -> tuple:
    """Fixed validation chunks: ``(track indices (count,), starts (count,))``
    int64, tracks in round robin, starts uniform from ``seed``."""
    rng = np.random.default_rng(seed)
    index = np.arange(count) % len(tracks)
    max_starts = np.array([max(0, t.num_samples - segment) for t in tracks])[index]
    starts = rng.integers(0, max_starts + 1)
    return index.astype(np.int64), starts.astype(np.int64)


def valid_dataset(tracks: Sequence[Track], targets: Sequence[str], data_cfg, batch_size: int,
                  sample_rate: int = 44100) -> tf.data.Dataset:
    """Deterministic validation batches ``(mixture, {target: source})``,
    float32 ``(batch_size, valid_segment_samples, 2)``: the same chunks in the same
    order on every pass and every run. ``data_cfg.valid_examples`` is rounded
    up to a multiple of ``batch_size`` (static batch shape, nothing dropped).
    """
    targets = _check_inputs(tracks, targets, sample_rate, batch_size)
    segment = valid_segment_samples(data_cfg, sample_rate)
    count = -(-max(1, data_cfg.valid_examples) // batch_size) * batch_size
    index, starts = valid_positions(tracks, count, segment, data_cfg.valid_seed)
    reader = ChunkReader(tracks, segment, in_memory=False)
    shape = (len(reader.sources), segment, 2)

    def read(track, start):
        chunks = tf.numpy_function(reader.track_chunk, [track, start], tf.float32,
                                   name="read_valid_chunk")
        return _to_example(tf.unstack(tf.ensure_shape(chunks, shape)), reader.sources, targets)

    ds = tf.data.Dataset.from_tensor_slices((index, starts))
    ds = ds.map(read, num_parallel_calls=AUTOTUNE).cache()
    return ds.batch(batch_size, drop_remainder=True).prefetch(AUTOTUNE)
