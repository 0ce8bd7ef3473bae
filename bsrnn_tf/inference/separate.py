"""Separating songs: the :func:`separate` API.

The pipeline for one waveform ``(samples, channels)`` at any rate::

    channels -> the model's (mono duplicated to stereo)
    -> resampled to the model's rate
    -> RMS then peak normalisation of the whole waveform (refined BSRNN, II.A)
    -> chunked overlap-add through the model (bsrnn_tf.inference.overlap_add)
    -> normalisation undone -> back to the input's rate, length and channels

:func:`separate_stream` runs it a block at a time (a file is read twice:
for the loudness, then to separate), so the command line's memory does not
grow with the song; :func:`separate` and :func:`separate_waveform` run the
same stream over an array and return whole arrays.

``model`` is anything :func:`bsrnn_tf.inference.backends.load_backend` opens (a
``.keras`` file, a run directory, a SavedModel, a ``.tflite`` file), an
opened :class:`~bsrnn_tf.inference.backends.Backend`, or a
:class:`~bsrnn_tf.models.Separator`. The command line ``bsrnn-tf separate``
(after Demucs and Spleeter) is :mod:`bsrnn_tf.inference.separate_cli`.
"""

from __future__ import annotations

import math
import os
import sys
import types
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from bsrnn_tf.audio import load_audio, to_stereo

COMPLEMENT_PREFIX = "no_"

Progress = Callable[[float, float], None]


class SeparationError(ValueError):
    """Arguments that cannot work with this model (unknown target, bad
    segment, ...); the message says which and why."""


# ------------------------------------------------------------------- model

def open_model(model, segment: Optional[float] = None, max_batch: int = 4,
               jit_compile: bool = False, threads: Optional[int] = 1):
    """A :class:`~bsrnn_tf.inference.backends.Backend` for ``model``.

    Args:
      model: a path (see :func:`bsrnn_tf.inference.backends.load_backend`), a Backend
        or a :class:`~bsrnn_tf.models.Separator`.
      segment: chunk length in seconds; None keeps the model's. Exported
        models (SavedModel, TFLite) have a fixed segment.
      max_batch: chunks per model call (Keras and SavedModel).
      jit_compile: compile a Keras model with XLA (faster on long inputs,
        after a compilation that takes seconds to a minute).
      threads: TFLite interpreter threads (None: the runtime's default).
    Raises:
      bsrnn_tf.inference.backends.BackendError: the path holds no separator.
      SeparationError: a segment the model cannot take.
    """
    from bsrnn_tf.inference.backends import Backend, KerasBackend, load_backend

    if isinstance(model, (str, os.PathLike)):
        # A Keras model's rate is known once loaded; the segment is set after.
        model = load_backend(os.fspath(model), max_batch=max_batch, num_threads=threads,
                             jit_compile=jit_compile)
    elif not isinstance(model, Backend):
        if not hasattr(model, "heads") or not hasattr(model, "segment_samples"):
            raise SeparationError(f"model must be a path, a Backend or a Separator, got "
                                  f"{type(model).__name__}")
        model = KerasBackend("<in-memory Separator>", model=model, max_batch=max_batch,
                             jit_compile=jit_compile)
    return _with_segment(model, segment)


def _segment_samples(segment: float, sample_rate: int) -> int:
    if not 0 < segment < math.inf:
        raise SeparationError(f"segment must be a positive number of seconds, got {segment}")
    return int(round(segment * sample_rate))


def _with_segment(backend, segment: Optional[float]):
    """``backend`` with chunks of ``segment`` seconds (a new Keras backend
    around the same model when needed)."""
    from bsrnn_tf.inference.backends import KerasBackend

    if segment is not None:
        wanted = _segment_samples(segment, backend.sample_rate)
        if wanted != backend.segment_samples:
            if not isinstance(backend, KerasBackend):
                raise SeparationError(
                    f"{backend.path}: an exported model has a fixed segment of "
                    f"{backend.segment_samples / backend.sample_rate:g} s; drop --segment")
            backend = KerasBackend(backend.path, model=backend.model, segment_samples=wanted,
                                   max_batch=backend.max_batch,
                                   jit_compile=backend.jit_compile)
    if backend.segment_samples < backend.info.n_fft:
        raise SeparationError(f"segment of {backend.segment_samples} samples is shorter than the "
                              f"model's STFT window ({backend.info.n_fft} samples)")
    if isinstance(backend, KerasBackend):
        _check_call_memory(backend)
    return backend


# Bytes per STFT frame and (bin x channel) of one chunk in a model call, for
# the spectrum, the features and, per target, a mask and an estimate: float32
# (real, imaginary) pairs, two working copies. A rough upper estimate: a
# four-target `cpu` model was seen past 12 GB on one chunk of 1000 s (issue
# 26), where this gives 28 GB.
BYTES_PER_BIN_FRAME = 4 * 2 * 2


def call_memory_bytes(info, chunks: int) -> int:
    """Estimated peak memory (bytes) of one model call on ``chunks`` chunks."""
    per_frame = BYTES_PER_BIN_FRAME * info.bins * info.channels * (2 + 2 * len(info.targets))
    return int(chunks * info.frames * per_frame)


def available_memory_bytes() -> int:
    """Memory the system can give (MemAvailable on Linux, else physical)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def _check_call_memory(backend) -> None:
    """Refuses a segment whose model calls would not fit in memory, naming
    the largest one that does."""
    info = backend.info
    needed = call_memory_bytes(info, backend.max_batch)
    available = available_memory_bytes()
    if needed <= available:
        return
    per_second = call_memory_bytes(info, backend.max_batch) / (info.segment_samples /
                                                                info.sample_rate)
    largest = math.floor(available / per_second * 0.8)
    advice = (f"use --segment {largest:g} or less, or a smaller --batch-size" if
              largest * info.sample_rate >= info.n_fft else "use a smaller --batch-size")
    raise SeparationError(
        f"a segment of {info.segment_samples / info.sample_rate:g} s needs about "
        f"{needed / 1e9:.1f} GB per model call ({backend.max_batch} chunks of "
        f"{info.frames} STFT frames) and {available / 1e9:.1f} GB of memory is available: "
        f"{advice}")


def select_targets(available: Sequence[str], targets: Optional[Sequence[str]] = None,
                   two_stems: Optional[str] = None) -> List[str]:
    """The model targets to compute, in the model's order.

    Raises:
      SeparationError: an unknown target, or both ``targets`` and ``two_stems``.
    """
    if two_stems is not None:
        if targets:
            raise SeparationError("give either targets or two_stems, not both")
        targets = [two_stems]
    if not targets:
        return list(available)
    unknown = [t for t in targets if t not in available]
    if unknown:
        raise SeparationError(f"the model has no target {', '.join(map(repr, unknown))}; its "
                              f"targets are {', '.join(available)}")
    return [t for t in available if t in targets]


# -------------------------------------------------------------- separation

def separate(audio_or_path: Union[str, os.PathLike, np.ndarray], model,
             targets: Optional[Sequence[str]] = None, two_stems: Optional[str] = None,
             segment: Optional[float] = None, overlap: float = 0.25, offset: float = 0.0,
             duration: Optional[float] = None, sample_rate: Optional[int] = None,
             window: str = "triangular", progress: Optional[Progress] = None
             ) -> Dict[str, np.ndarray]:
    """Separates one song.

    Args:
      audio_or_path: an audio file, or a waveform ``(samples, channels)``
        (or ``(samples,)``) float at ``sample_rate`` Hz.
      model: a model path, Backend or Separator (see :func:`open_model`);
        open it once with :func:`open_model` to separate many songs.
      targets: stems to return (default: all of the model's).
      two_stems: return only this target and ``no_<target>`` = the input
        minus the target's estimate.
      segment: chunk length in seconds (default: the model's).
      overlap: fraction of a chunk shared with the next, in [0, 1).
      offset, duration: seconds of the input to separate (default: all).
      sample_rate: Hz of an array input (default: the model's).
      window: overlap-add crossfade (triangular, hann, rectangular).
      progress: called with ``(seconds done, total seconds)`` of audio.
    Returns:
      ``{target: (samples, channels) float32}`` at the input's rate, with the
      input's length (after offset/duration) and channel count (inputs with
      more than two channels give stereo: the model sees the first two).
    Raises:
      AudioError: unreadable input file; SeparationError: bad arguments;
      bsrnn_tf.inference.backends.BackendError: bad model path.
    """
    backend = open_model(model, segment)
    needed = select_targets(backend.targets, targets, two_stems)
    audio, rate = read_input(audio_or_path, offset, duration,
                             sample_rate or backend.sample_rate)
    estimates = separate_waveform(audio, rate, backend, needed, overlap, window, progress)
    if two_stems is not None:
        estimates[COMPLEMENT_PREFIX + two_stems] = _complement(audio, estimates[two_stems])
    return estimates


def read_input(audio_or_path, offset: float = 0.0, duration: Optional[float] = None,
               sample_rate: int = 44100) -> Tuple[np.ndarray, int]:
    """``(audio (samples, channels) float32, rate)`` of a file or an array,
    cut to ``[offset, offset + duration)`` seconds."""
    if not 0 <= offset < math.inf or (duration is not None and not 0 < duration < math.inf):
        raise SeparationError(f"offset must be a finite number >= 0 and duration a finite "
                              f"number > 0, got {offset}, {duration}")
    if isinstance(audio_or_path, (str, os.PathLike)):
        return load_audio(os.fspath(audio_or_path), offset, duration)
    audio = np.asarray(audio_or_path, np.float32)
    if audio.ndim == 1:
        audio = audio[:, None]
    start = int(round(offset * sample_rate))
    stop = None if duration is None else start + int(round(duration * sample_rate))
    audio = audio[start:stop]
    if audio.ndim != 2 or audio.shape[0] == 0 or audio.shape[1] == 0:
        raise SeparationError(f"audio must be (samples, channels) with samples >= 1 after "
                              f"offset/duration, got {audio.shape}")
    if not np.all(np.isfinite(audio)):
        raise SeparationError("audio contains NaN or infinite samples")
    return audio, int(sample_rate)


READ_BLOCK = 1 << 16  # input samples read (and resampled) at a time


class ArraySource:
    """A waveform ``(samples, channels)`` at ``samplerate`` Hz behind the
    block-reading interface of :class:`bsrnn_tf.audio.AudioReader`."""

    def __init__(self, audio: np.ndarray, samplerate: int):
        self.audio = audio
        self.frames, self.channels = audio.shape
        self.samplerate = int(samplerate)

    def read(self, start: int, stop: int) -> np.ndarray:
        return self.audio[start:stop]


def separate_waveform(audio: np.ndarray, rate: int, backend, targets: Sequence[str],
                      overlap: float = 0.25, window: str = "triangular",
                      progress: Optional[Progress] = None) -> Dict[str, np.ndarray]:
    """The pipeline of the module docstring for an opened ``backend``
    (:func:`separate_stream` over a whole array).

    Args:
      audio: ``(samples, channels)`` float32 at ``rate`` Hz.
      targets: a subset of ``backend.targets``.
    Returns:
      ``{target: (samples, out_channels) float32}`` at ``rate`` Hz;
      ``out_channels`` is ``channels`` (2 when ``channels`` > 2).
    """
    estimates: Dict[str, np.ndarray] = {}
    for start, blocks in separate_stream(ArraySource(audio, rate), backend, targets, overlap,
                                         window, progress):
        for target, block in blocks.items():
            if target not in estimates:
                estimates[target] = np.empty((audio.shape[0], block.shape[1]), np.float32)
            estimates[target][start:start + len(block)] = block
    return estimates


def separate_stream(source, backend, targets: Sequence[str], overlap: float = 0.25,
                    window: str = "triangular", progress: Optional[Progress] = None,
                    complement: Optional[str] = None
                    ) -> Iterator[Tuple[int, Dict[str, np.ndarray]]]:
    """The pipeline of the module docstring, a block at a time: memory does
    not grow with the song (two passes over ``source``: the loudness scale
    of the whole song first, then the separation).

    Args:
      source: an :class:`~bsrnn_tf.audio.AudioReader` or :class:`ArraySource`
        (``frames``, ``samplerate``, ``channels``, ``read(start, stop)``).
      targets: a subset of ``backend.targets``.
      complement: also give ``no_<complement>``, the input minus that
        target's estimate.
    Yields:
      ``(start, {name: (n, out_channels) float32})``: samples ``[start,
      start + n)`` of every stem at the input's rate, in order, together
      covering the input; ``out_channels`` is the input's channel count
      (2 when it has more than two).
    """
    from bsrnn_tf.audio import StreamResampler
    from bsrnn_tf.inference.overlap_add import overlap_add_blocks
    from bsrnn_tf.preprocess import song_scale_of_blocks

    length, channels, rate = source.frames, source.channels, source.samplerate
    model_rate = backend.sample_rate
    scale = np.float32(song_scale_of_blocks(_model_input_blocks(source, backend)))
    model_input = _ModelInput(_model_input_blocks(source, backend),
                              StreamResampler(rate, model_rate, length).num_out)
    wanted = set(targets)

    def fn(batch: np.ndarray) -> Dict[str, np.ndarray]:
        # The loudness normalisation is a scale, applied to each batch of
        # chunks and undone on its estimates: no normalised copy of the song.
        return {t: np.asarray(v, np.float32) / scale
                for t, v in backend(batch * scale).items() if t in wanted}

    back = {t: StreamResampler(model_rate, rate, model_input.frames) for t in targets}
    given = 0  # output samples yielded so far
    for _, finished in overlap_add_blocks(
            model_input.read, model_input.frames, backend.channels, fn,
            backend.segment_samples, overlap, window, chunks_per_call=backend.max_batch,
            progress=progress, sample_rate=model_rate):
        stems = {t: back[t].push(finished[t]) for t in targets}
        if back[targets[0]].given == back[targets[0]].num_out:  # the last block
            stems = {t: _fit_length(v, length - given) for t, v in stems.items()}
        else:
            stems = {t: v[:length - given] for t, v in stems.items()}
        count = len(stems[targets[0]])
        if not count:
            continue
        stems = {t: _from_model_channels(v, channels) for t, v in stems.items()}
        if complement is not None:
            stems[COMPLEMENT_PREFIX + complement] = _complement(
                source.read(given, given + count), stems[complement])
        yield given, stems
        given += count


def _model_input_blocks(source, backend) -> Iterator[np.ndarray]:
    """The model's input (its channels, its rate) of ``source``, a block at a time."""
    from bsrnn_tf.audio import StreamResampler

    resampler = StreamResampler(source.samplerate, backend.sample_rate, source.frames)
    for start in range(0, source.frames, READ_BLOCK):
        block = _to_model_channels(source.read(start, start + READ_BLOCK), backend.channels)
        out = resampler.push(block)
        if len(out):
            yield out


class _ModelInput:
    """Random reads with a start that never decreases (what
    :func:`~bsrnn_tf.inference.overlap_add.overlap_add_blocks` does) over a stream of
    blocks; keeps only the samples from the last read's start on."""

    def __init__(self, blocks: Iterator[np.ndarray], frames: int):
        self.blocks, self.frames = blocks, frames
        self.buffer: Optional[np.ndarray] = None
        self.start = 0  # sample index of buffer[0]

    def read(self, start: int, stop: int) -> np.ndarray:
        stop = min(stop, self.frames)
        while self.buffer is None or self.start + len(self.buffer) < stop:
            block = next(self.blocks, None)
            if block is None:
                break
            self.buffer = block if self.buffer is None else np.concatenate([self.buffer, block])
        if start > self.start:
            self.buffer = self.buffer[start - self.start:]
            self.start = start
        return self.buffer[start - self.start:stop - self.start]


def _to_model_channels(audio: np.ndarray, model_channels: int) -> np.ndarray:
    if model_channels == 2:
        return to_stereo(audio)
    if model_channels == 1:
        return audio.mean(axis=1, keepdims=True, dtype=np.float32)
    raise SeparationError(f"models with {model_channels} audio channels are not supported")


def _from_model_channels(estimate: np.ndarray, channels: int) -> np.ndarray:
    """Mono input: the mean of the model's channels; stereo or more: as is
    (a mono model's output is duplicated)."""
    if channels == 1:
        return estimate.mean(axis=1, keepdims=True, dtype=np.float32)
    if estimate.shape[1] == 1:
        return np.repeat(estimate, min(channels, 2), axis=1)
    return estimate


def _fit_length(audio: np.ndarray, length: int) -> np.ndarray:
    """Trims or zero-pads ``(samples, channels)`` to ``length`` samples
    (resampling there and back can be a sample off)."""
    if audio.shape[0] >= length:
        return audio[:length]
    return np.pad(audio, ((0, length - audio.shape[0]), (0, 0)))


def _complement(mixture: np.ndarray, estimate: np.ndarray) -> np.ndarray:
    """``mixture - estimate`` over the estimate's channels."""
    return (mixture[:, :estimate.shape[1]] - estimate).astype(np.float32)


class _CallableModule(types.ModuleType):
    """``bsrnn_tf.inference.separate`` is both this module and, called, :func:`separate`:
    the package exposes ``bsrnn_tf.separate(path, model)`` without a function
    shadowing the module (which would break ``import bsrnn_tf.inference.separate``)."""

    def __call__(self, *args, **kwargs) -> Dict[str, np.ndarray]:
        return separate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
