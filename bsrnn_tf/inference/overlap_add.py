"""One inference path: chunked overlap-add over any ``chunk -> {target: estimate}``.

A Keras model, a SavedModel signature and a TFLite interpreter all go through
:func:`overlap_add`, so they share the chunking, the crossfade and the
normalisation by the summed window.

Memory stays bounded: :func:`overlap_add_blocks` reads the input as chunks
need it (``chunks_per_call`` at a time) and gives out each stretch of the
output as soon as no later chunk reaches it, divided by the summed
crossfade weights; it keeps only the samples that later chunks still add
to, so nothing it holds grows with the song (``bsrnn-tf separate`` streams
a file through it). :func:`overlap_add` is the same over whole arrays.
"""

from __future__ import annotations

from typing import Callable, Dict, Iterator, Optional, Tuple

import numpy as np

ChunkFn = Callable[[np.ndarray], Dict[str, np.ndarray]]


def crossfade_window(segment: int, kind: str = "triangular") -> np.ndarray:
    """Strictly positive weights ``(segment,)`` float64 for overlap-add.

    ``triangular`` rises linearly to the middle and falls back; ``hann`` is a
    raised cosine; both are offset by half a step so no sample gets weight 0.
    ``rectangular`` is all ones.
    """
    if segment < 1:
        raise ValueError(f"segment must be positive, got {segment}")
    position = (np.arange(segment) + 0.5) / segment  # in (0, 1)
    if kind == "triangular":
        return 1.0 - np.abs(2.0 * position - 1.0)
    if kind == "hann":
        return 0.5 - 0.5 * np.cos(2.0 * np.pi * position)
    if kind == "rectangular":
        return np.ones(segment)
    raise ValueError(f"unknown window {kind!r}: use triangular, hann or rectangular")


def chunk_starts(num_samples: int, segment: int, hop: int) -> np.ndarray:
    """Start of every chunk so that chunks cover ``[0, num_samples)``."""
    if num_samples <= segment:
        return np.zeros(1, dtype=np.int64)
    count = 1 + int(np.ceil((num_samples - segment) / hop))
    return np.arange(count, dtype=np.int64) * hop


def overlap_add(audio: np.ndarray, fn: ChunkFn, segment: int, overlap: float = 0.25,
                window: str = "triangular", chunks_per_call: int = 1,
                progress: Optional[Callable[[float, float], None]] = None,
                sample_rate: float = 44100.0) -> Dict[str, np.ndarray]:
    """Separates ``audio`` chunk by chunk.

    Args:
      audio: ``(samples, channels)`` float32, any length >= 1.
      fn: maps a batch ``(n, segment, channels)`` float32 to
        ``{target: (n, segment, channels)}`` (numpy or tensors).
      segment: chunk length in samples (the model's segment).
      overlap: fraction of a chunk shared with the next, in [0, 1).
      window: crossfade weights, see :func:`crossfade_window`.
      chunks_per_call: chunks given to ``fn`` at once (the last call may get
        fewer; a TFLite model with batch 1 needs 1).
      progress: called with ``(seconds done, total seconds)`` after each call.
    Returns:
      ``{target: (samples, channels)}`` float32: every output sample is the
      window-weighted mean of the chunk estimates covering it.
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim != 2 or audio.shape[0] < 1:
        raise ValueError(f"audio must be (samples, channels) with samples >= 1, got {audio.shape}")
    outputs: Dict[str, np.ndarray] = {}
    for lo, finished in overlap_add_blocks(lambda a, b: audio[a:b], audio.shape[0],
                                           audio.shape[1], fn, segment, overlap, window,
                                           chunks_per_call, progress, sample_rate):
        for target, value in finished.items():
            out = outputs.setdefault(target, np.empty(audio.shape, np.float32))
            out[lo:lo + len(value)] = value
    return outputs


def overlap_add_blocks(read: Callable[[int, int], np.ndarray], num_samples: int,
                       channels: int, fn: ChunkFn, segment: int, overlap: float = 0.25,
                       window: str = "triangular", chunks_per_call: int = 1,
                       progress: Optional[Callable[[float, float], None]] = None,
                       sample_rate: float = 44100.0
                       ) -> Iterator[Tuple[int, Dict[str, np.ndarray]]]:
    """:func:`overlap_add` as a stream: the input is read and the output
    given out a stretch at a time, so memory does not grow with the song.

    Args:
      read: ``read(start, stop)`` returns input samples ``[start, stop)``
        (fewer at the end) as ``(n, channels)`` float32; ``start`` never
        decreases from one call to the next.
      num_samples, channels: the input's shape.
      (the others as in :func:`overlap_add`)
    Yields:
      ``(start, {target: (n, channels) float32})``: finished output samples
      ``[start, start + n)``, in order, together covering ``[0, num_samples)``.
    """
    if num_samples < 1:
        raise ValueError(f"audio must have samples >= 1, got {num_samples}")
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    if chunks_per_call < 1:
        raise ValueError(f"chunks_per_call must be positive, got {chunks_per_call}")
    hop = max(1, int(round(segment * (1.0 - overlap))))
    weights = crossfade_window(segment, window).astype(np.float32)
    starts = chunk_starts(num_samples, segment, hop)
    pending: Dict[str, np.ndarray] = {}  # sums of weighted estimates from sample `final` on
    final = 0  # samples before `final` are given out
    for first in range(0, len(starts), chunks_per_call):
        batch_starts = starts[first:first + chunks_per_call]
        batch = np.zeros((len(batch_starts), segment, channels), np.float32)
        for row, start in enumerate(batch_starts):
            piece = read(int(start), int(start) + segment)
            batch[row, :len(piece)] = piece
        reach = min(int(batch_starts[-1]) + segment, num_samples)
        for target, value in fn(batch).items():
            value = np.asarray(value, dtype=np.float32)
            if value.shape != batch.shape:
                raise ValueError(f"fn returned {value.shape} for {target!r}, expected "
                                 f"{batch.shape}")
            out = pending.get(target, np.zeros((0, channels), np.float32))
            if len(out) < reach - final:
                out = np.concatenate([out, np.zeros((reach - final - len(out), channels),
                                                    np.float32)])
            for row, start in enumerate(batch_starts):
                stop = min(start + segment, num_samples)
                out[start - final:stop - final] += (value[row, :stop - start]
                                                    * weights[:stop - start, None])
            pending[target] = out
        # Samples before the next chunk's start get no more estimates.
        following = first + chunks_per_call
        done = int(starts[following]) if following < len(starts) else num_samples
        if done > final:
            total = summed_weights(starts, weights, final, done, num_samples)
            yield final, {t: v[:done - final] / total[:, None] for t, v in pending.items()}
            pending = {t: v[done - final:] for t, v in pending.items()}
            final = done
        if progress is not None:
            progress(reach / sample_rate, num_samples / sample_rate)


def summed_weights(starts: np.ndarray, weights: np.ndarray, lo: int, hi: int,
                   num_samples: int) -> np.ndarray:
    """Sum of the crossfade weights of every chunk over samples ``[lo, hi)``
    (chunks start at ``starts``, sorted, and are cut at ``num_samples``)."""
    segment = len(weights)
    total = np.zeros(hi - lo, np.float32)
    first = int(np.searchsorted(starts, lo - segment, side="right"))
    last = int(np.searchsorted(starts, hi, side="left"))
    for start in starts[first:last]:
        a, b = max(lo, int(start)), min(hi, int(start) + segment, num_samples)
        total[a - lo:b - lo] += weights[a - start:b - start]
    if not np.all(total > 0):
        raise AssertionError("every sample must be covered by a chunk")
    return total
