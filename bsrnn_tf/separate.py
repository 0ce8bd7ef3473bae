"""Separating songs: the :func:`separate` API and ``bsrnn-tf separate``.

The pipeline for one waveform ``(samples, channels)`` at any rate::

    channels -> the model's (mono duplicated to stereo)
    -> resampled to the model's rate
    -> RMS then peak normalisation of the whole waveform (refined BSRNN, II.A)
    -> chunked overlap-add through the model (bsrnn_tf.inference)
    -> normalisation undone -> back to the input's rate, length and channels

``model`` is anything :func:`bsrnn_tf.backends.load_backend` opens (a
``.keras`` file, a run directory, a SavedModel, a ``.tflite`` file), an
opened :class:`~bsrnn_tf.backends.Backend`, or a
:class:`~bsrnn_tf.models.Separator`. The command line follows Demucs and
Spleeter::

    bsrnn-tf separate song.mp3 album/ -m saved_models/small-mtl-v7 -o separated
    bsrnn-tf separate song.wav -m model.keras --two-stems vocals --format flac
"""

from __future__ import annotations

import argparse
import math
import os
import string
import sys
import types
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from bsrnn_tf.audio import (AUDIO_EXTENSIONS, AudioError, ensure_output_folder,
                            list_audio_files, load_audio, resample,
                            save_audio, to_stereo)
from bsrnn_tf.config import check_number

DEFAULT_FILENAME = "{track}/{target}.{ext}"
FILENAME_FIELDS = ("track", "trackext", "target", "stem", "ext")
OUTPUT_FORMATS = ("wav", "flac", "ogg", "mp3")
SUBTYPES = ("int16", "int24", "float32")
CLIP_MODES = ("rescale", "clamp", "none")
COMPLEMENT_PREFIX = "no_"

Progress = Callable[[float, float], None]


class SeparationError(ValueError):
    """Arguments that cannot work with this model (unknown target, bad
    segment, ...); the message says which and why."""


# ------------------------------------------------------------------- model

def open_model(model, segment: Optional[float] = None, max_batch: int = 4,
               jit_compile: bool = False, threads: Optional[int] = 1):
    """A :class:`~bsrnn_tf.backends.Backend` for ``model``.

    Args:
      model: a path (see :func:`bsrnn_tf.backends.load_backend`), a Backend
        or a :class:`~bsrnn_tf.models.Separator`.
      segment: chunk length in seconds; None keeps the model's. Exported
        models (SavedModel, TFLite) have a fixed segment.
      max_batch: chunks per model call (Keras and SavedModel).
      jit_compile: compile a Keras model with XLA (faster on long inputs,
        after a compilation that takes seconds to a minute).
      threads: TFLite interpreter threads (None: the runtime's default).
    Raises:
      bsrnn_tf.backends.BackendError: the path holds no separator.
      SeparationError: a segment the model cannot take.
    """
    from bsrnn_tf.backends import Backend, KerasBackend, load_backend

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
    from bsrnn_tf.backends import KerasBackend

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
    return backend


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
      bsrnn_tf.backends.BackendError: bad model path.
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


def separate_waveform(audio: np.ndarray, rate: int, backend, targets: Sequence[str],
                      overlap: float = 0.25, window: str = "triangular",
                      progress: Optional[Progress] = None) -> Dict[str, np.ndarray]:
    """The pipeline of the module docstring for an opened ``backend``.

    Args:
      audio: ``(samples, channels)`` float32 at ``rate`` Hz.
      targets: a subset of ``backend.targets``.
    Returns:
      ``{target: (samples, out_channels) float32}`` at ``rate`` Hz;
      ``out_channels`` is ``channels`` (2 when ``channels`` > 2).
    """
    from bsrnn_tf.inference import overlap_add
    from bsrnn_tf.preprocess import song_scale

    length, channels = audio.shape
    model_input = resample(_to_model_channels(audio, backend.channels), rate, backend.sample_rate)
    # The loudness normalisation is a scale, applied to each batch of chunks
    # and undone on its estimates: no normalised copy of the song.
    scale = np.float32(song_scale(model_input))
    wanted = set(targets)

    def fn(batch: np.ndarray) -> Dict[str, np.ndarray]:
        return {t: np.asarray(v, np.float32) / scale
                for t, v in backend(batch * scale).items() if t in wanted}

    estimates = overlap_add(model_input, fn, backend.segment_samples, overlap, window,
                            chunks_per_call=backend.max_batch, progress=progress,
                            sample_rate=backend.sample_rate)
    del model_input
    for target in targets:  # one target at a time: at most one extra copy alive
        estimate = _fit_length(resample(estimates.pop(target), backend.sample_rate, rate), length)
        estimates[target] = _from_model_channels(estimate, channels)
    return estimates


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


# ---------------------------------------------------------------- CLI

def register_cli(subparsers) -> argparse.ArgumentParser:
    """Adds ``separate FILE_OR_DIR... -m MODEL -o OUT`` to argparse subparsers."""
    p = subparsers.add_parser(
        "separate", help="separate audio files into stems",
        description="Separate audio files (or every audio file under folders) into stems. "
                    "Any sample rate and channel count; outputs have the input's rate and "
                    "length, and its channels up to two (mono stays mono; with more than two "
                    "channels the model hears the first two and the stems are stereo).")
    p.add_argument("inputs", nargs="+", metavar="FILE_OR_DIR",
                   help="audio files, or folders searched recursively for "
                        f"{', '.join(AUDIO_EXTENSIONS)} files")
    p.add_argument("-m", "--model",
                   help=".keras file, run directory, SavedModel directory or .tflite file "
                        "(default: $BSRNN_TF_MODEL or the pretrained model shipped in "
                        "saved_models/bsrnn-cpu-mtl: trained on soundfont renders, not MUSDB18)")
    p.add_argument("-o", "--out", default="separated", help="output folder (default separated)")
    p.add_argument("--targets", nargs="+", metavar="TARGET",
                   help="stems to write (default: all of the model's)")
    p.add_argument("--two-stems", metavar="TARGET",
                   help="write TARGET and no_TARGET (the input minus TARGET)")
    p.add_argument("--segment", type=float, metavar="SECONDS",
                   help="chunk length (default: the model's)")
    p.add_argument("--overlap", type=float, default=0.25,
                   help="fraction of a chunk shared with the next (default 0.25)")
    p.add_argument("--offset", type=float, default=0.0, metavar="SECONDS",
                   help="start this far into every input")
    p.add_argument("--duration", type=float, metavar="SECONDS",
                   help="separate at most this much of every input")
    p.add_argument("--filename", default=DEFAULT_FILENAME,
                   help="output path under OUT; fields {track} (input name without extension, "
                        "relative to a folder given; a file named mixture.* is named after "
                        "its folder, as in MUSDB), {trackext}, {target} (alias {stem}), "
                        "{ext} (default %(default)s)")
    p.add_argument("--format", default="wav", choices=OUTPUT_FORMATS,
                   help="output format (mp3 where libsndfile has it; default wav)")
    p.add_argument("--wav-subtype", default="int16", choices=SUBTYPES,
                   help="sample format of wav (and flac: int16/int24) outputs (default int16)")
    p.add_argument("--clip-mode", default="rescale", choices=CLIP_MODES,
                   help="stems above full scale: rescale (divide by the peak), clamp, or none "
                        "(float32 wav only keeps them) (default rescale)")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.add_argument("--batch-size", type=int, default=4, help="chunks per model call")
    p.add_argument("--xla", action="store_true",
                   help="compile a Keras model with XLA: faster on long songs, after a "
                        "one-off compilation (seconds to a minute)")
    p.add_argument("--threads", type=int, default=1,
                   help="TFLite interpreter threads (default 1; which is faster depends on "
                        "the CPU: see benchmarks/README.md)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cli_separate)
    return p


def _cli_separate(args: argparse.Namespace) -> int:
    job = SeparateJob(args)
    try:
        job.check_options()
        job.open_model()
    except (SeparationError, AudioError) as e:
        job.error(str(e))
        return 2
    except ValueError as e:  # BackendError and ModelLoadError are ValueErrors
        job.error(str(e))
        return 2
    inputs = job.expand_inputs()
    try:
        for path, track in inputs:
            job.run_one(path, track)
    except KeyboardInterrupt:
        job.error(f"interrupted: {job.done} of {len(inputs)} inputs separated into "
                  f"{job.args.out}{f' (last: {job.last_done})' if job.last_done else ''}; "
                  f"the one in progress was not written (rerun to do the rest: finished "
                  f"outputs are skipped)")
        return 130
    return job.finish()


class SeparateJob:
    """``bsrnn-tf separate``: one model, many inputs; one stderr line per
    problem, the other inputs still processed."""

    name = "bsrnn-tf separate"

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.backend = None
        self.targets: List[str] = []
        self.failed = 0
        self.skipped = 0
        self.done = 0
        self.last_done: Optional[str] = None
        self.written: Dict[str, str] = {}  # output path -> input that produced it

    # -- set-up --------------------------------------------------------------------
    def error(self, message: str) -> None:
        print(f"{self.name}: error: {message}", file=sys.stderr)

    def check_options(self) -> None:
        a = self.args
        check_filename_template(a.filename)
        if a.format == "mp3":
            import soundfile as sf
            if "MP3" not in sf.available_formats():
                raise SeparationError(f"this libsndfile ({sf.__libsndfile_version__}) cannot "
                                      f"write mp3; use --format wav, flac or ogg")
        if a.format == "flac" and a.wav_subtype == "float32":
            raise SeparationError("flac cannot hold float32 samples; use --wav-subtype int16 "
                                  "or int24")
        if not 0.0 <= a.overlap < 1.0:
            raise SeparationError(f"--overlap must be in [0, 1), got {a.overlap}")
        for flag, value, minimum, inclusive in [("--segment", a.segment, 0, False),
                                                ("--offset", a.offset, 0, True),
                                                ("--duration", a.duration, 0, False)]:
            if value is not None:
                check_number(flag, value, minimum, min_inclusive=inclusive)
        if a.batch_size < 1:
            raise SeparationError(f"--batch-size must be positive, got {a.batch_size}")
        if a.threads < 1:
            raise SeparationError(f"--threads must be positive, got {a.threads}")
        if a.targets and a.two_stems:
            raise SeparationError("give either --targets or --two-stems, not both")

    def open_model(self) -> None:
        if self.args.model is None:
            from bsrnn_tf.pretrained import default_model
            try:
                self.args.model = default_model()
            except FileNotFoundError as e:
                raise SeparationError(str(e)) from None
        self.backend = open_model(self.args.model, self.args.segment, self.args.batch_size,
                                  self.args.xla, self.args.threads)
        self.targets = select_targets(self.backend.targets, self.args.targets,
                                      self.args.two_stems)

    def output_names(self) -> List[str]:
        two = self.args.two_stems
        return [two, COMPLEMENT_PREFIX + two] if two else list(self.targets)

    def expand_inputs(self) -> List[Tuple[str, str]]:
        """``[(path, track name)]``: files as given (named by their base name),
        folders walked (named by their path relative to the folder)."""
        found = []
        for given in self.args.inputs:
            if not os.path.isdir(given):
                found.append((given, _track_name(given, _strip_ext(os.path.basename(given)))))
                continue
            files = list_audio_files(given)
            if not files:
                self.error(f"{given}: folder holds no audio files ({', '.join(AUDIO_EXTENSIONS)})")
                self.failed += 1
            found.extend((f, _track_name(f, _strip_ext(os.path.relpath(f, given))))
                         for f in files)
        return found

    # -- one input -----------------------------------------------------------------
    def run_one(self, path: str, track: str) -> None:
        outputs = self.plan_outputs(path, track)
        if outputs is None:
            return
        try:
            audio, rate = load_audio(path, self.args.offset, self.args.duration)
            if audio.shape[1] > 2:
                print(f"{self.name}: warning: {path} has {audio.shape[1]} channels; the model "
                      f"separates the first two and its stems are stereo", file=sys.stderr)
            for out_path in outputs.values():  # fail before separating, not after
                ensure_output_folder(os.path.dirname(os.path.abspath(out_path)), out_path)
            stems = self.separate(audio, rate, track)
            for target, out_path in outputs.items():
                save_audio(out_path, stems[target], rate, format=self.args.format,
                           subtype=self.subtype(), clip_mode=self.args.clip_mode,
                           overwrite=self.args.overwrite)
        except (AudioError, SeparationError) as e:
            self.error(str(e))
            self.failed += 1
            return
        self.written.update({p: path for p in outputs.values()})
        self.done += 1
        self.last_done = path

    def plan_outputs(self, path: str, track: str) -> Optional[Dict[str, str]]:
        """``{output name: path}`` still to write for one input; None when
        there is nothing to do (all exist, or a clash reported)."""
        ext = os.path.splitext(path)[1].lstrip(".")
        planned = {name: os.path.join(self.args.out, self.args.filename.format(
            track=track, trackext=ext, target=name, stem=name, ext=self.args.format))
            for name in self.output_names()}
        for out_path in planned.values():
            if out_path in self.written:
                self.error(f"{path}: output {out_path} was already written for "
                           f"{self.written[out_path]}; use a --filename with {{track}} that "
                           f"tells them apart")
                self.failed += 1
                return None
        if self.args.overwrite:
            return planned
        todo = {}
        for name, out_path in planned.items():
            if os.path.exists(out_path):
                print(f"{self.name}: skipped {out_path}: already exists (use --overwrite to "
                      f"replace it)", file=sys.stderr)
            else:
                todo[name] = out_path
        if not todo:
            self.skipped += 1
            return None
        return todo

    def separate(self, audio: np.ndarray, rate: int, track: str) -> Dict[str, np.ndarray]:
        from tqdm import tqdm

        total = audio.shape[0] / rate
        with tqdm(total=round(total, 2), desc=track, unit="s", disable=True if
                  self.args.quiet else None, leave=False,
                  bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.1f}/{total:.1f} s "
                             "[{elapsed}<{remaining}]") as bar:
            def progress(done: float, _total: float) -> None:
                bar.update(round(min(done * total / _total, total), 2) - bar.n)

            stems = separate_waveform(audio, rate, self.backend, self.targets,
                                      self.args.overlap, progress=progress)
        if self.args.two_stems:
            stems[COMPLEMENT_PREFIX + self.args.two_stems] = _complement(
                audio, stems[self.args.two_stems])
        return stems

    def subtype(self) -> Optional[str]:
        return self.args.wav_subtype if self.args.format in ("wav", "flac") else None

    def finish(self) -> int:
        print(f"{self.done} separated into {self.args.out}, {self.skipped} skipped (outputs "
              f"exist), {self.failed} failed")
        return 1 if self.failed else 0


def check_filename_template(template: str) -> None:
    """Raises :class:`SeparationError` for unknown fields or a template that
    does not name every target apart."""
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
        template.format(**{f: "x" for f in FILENAME_FIELDS})
    except (ValueError, KeyError, IndexError) as e:
        raise SeparationError(f"--filename {template!r}: bad template ({e}); fields are "
                              f"{', '.join('{' + f + '}' for f in FILENAME_FIELDS)}") from None
    if not fields & {"target", "stem"}:
        raise SeparationError(f"--filename {template!r} must contain {{target}} (or {{stem}}), "
                              f"else every stem goes to the same file")
    if not template.strip() or template.endswith(("/", os.sep)):
        raise SeparationError(f"--filename {template!r} must name a file")


def _strip_ext(name: str) -> str:
    return os.path.splitext(name)[0]


def _track_name(path: str, track: str) -> str:
    """``track``, except that a file named ``mixture.*`` (the MUSDB layout,
    one folder per song) is named after its folder."""
    if os.path.basename(track) != "mixture":
        return track
    parent = os.path.dirname(track)
    return parent or os.path.basename(os.path.dirname(os.path.abspath(path))) or track


class _CallableModule(types.ModuleType):
    """``bsrnn_tf.separate`` is both this module and, called, :func:`separate`:
    the package exposes ``bsrnn_tf.separate(path, model)`` without a function
    shadowing the module (which would break ``import bsrnn_tf.separate``)."""

    def __call__(self, *args, **kwargs) -> Dict[str, np.ndarray]:
        return separate(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
