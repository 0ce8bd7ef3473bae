"""One calling convention for every kind of separator artifact.

:func:`load_backend` opens a ``.keras`` file or run directory, an exported
SavedModel (a TF Serving model directory ``<name>/`` with numbered versions,
the highest is taken, or one version directory) or an exported ``.tflite``
file, and returns a :class:`Backend`::

    backend = load_backend("saved_models/export/tflite/bsrnn-waveform-float32.tflite")
    stems = backend(chunks)   # (n, segment_samples, channels) float32 -> {target: same shape}

so :func:`bsrnn_tf.inference.overlap_add.overlap_add` drives all of them the same way.
Metadata (sample rate, segment, targets, STFT) comes from the artifact: the
model itself for Keras, ``export.json`` beside a SavedModel, the JSON
embedded in a ``.tflite`` file (with ``export.json`` beside it as fallback).

The spectrum variant of TFLite takes a packed spectrum and returns packed
masks; its backend does the STFT, the complex product and the iSTFT in
numpy (:mod:`bsrnn_tf.spectral`, the reference for an app that runs that
variant).
"""

from __future__ import annotations

import dataclasses
import json
import os
import struct
from typing import Dict, List, Optional, Sequence

import numpy as np

from bsrnn_tf.fileio import EXPORT_FILE, MODEL_FILE, JsonFileError, read_json
from bsrnn_tf.spectral import apply_packed_mask, num_bins, num_frames, numpy_istft, numpy_stft

TFLITE_METADATA_NAME = "bsrnn_tf"


class BackendError(ValueError):
    """An artifact cannot be opened or called; the message names its path."""


@dataclasses.dataclass
class ModelInfo:
    """What a caller needs to feed an artifact.

    Attributes:
      sample_rate: Hz.
      segment_samples: samples per chunk (fixed for exported artifacts).
      channels: audio channels (2: stereo).
      targets: stem names, in output order.
      n_fft, hop_length: STFT size and hop (samples).
    """

    sample_rate: int
    segment_samples: int
    channels: int
    targets: list
    n_fft: int
    hop_length: int

    @property
    def frames(self) -> int:
        """STFT frames of one segment (centred transform)."""
        return num_frames(self.segment_samples, self.n_fft, self.hop_length)

    @property
    def bins(self) -> int:
        return num_bins(self.n_fft)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict, where: str) -> "ModelInfo":
        if not isinstance(data, dict):
            raise BackendError(f"{where}: metadata is a {type(data).__name__}, not an object")
        names = [f.name for f in dataclasses.fields(cls)]
        missing = [n for n in names if n not in data]
        if missing:
            raise BackendError(f"{where}: metadata lacks {missing}")
        wrong = [f"{n} {data[n]!r}" for n in names if n != "targets" and not (
            isinstance(data[n], int) and not isinstance(data[n], bool) and data[n] > 0)]
        targets = data["targets"]
        if not (isinstance(targets, list) and targets and all(isinstance(t, str)
                                                              for t in targets)):
            wrong.append(f"targets {targets!r}")
        if wrong:
            raise BackendError(f"{where}: metadata has {', '.join(wrong)}; expected positive "
                               f"integers and a list of target names")
        return cls(**{n: data[n] for n in names})


# -- backends ------------------------------------------------------------------------

class Backend:
    """A separator behind one call: ``(n, segment, channels)`` float32 ->
    ``{target: (n, segment, channels)}`` float32.

    ``max_batch`` is the most chunks one model invocation takes (1 for
    TFLite); ``__call__`` accepts any ``n`` and splits it.
    """

    kind = "abstract"

    def __init__(self, path: str, info: ModelInfo, max_batch: int):
        self.path = path
        self.info = info
        self.max_batch = int(max_batch)

    sample_rate = property(lambda self: self.info.sample_rate)
    segment_samples = property(lambda self: self.info.segment_samples)
    channels = property(lambda self: self.info.channels)
    targets = property(lambda self: list(self.info.targets))

    def __call__(self, batch: np.ndarray) -> Dict[str, np.ndarray]:
        batch = np.asarray(batch, dtype=np.float32)
        expected = (self.segment_samples, self.channels)
        if batch.ndim != 3 or batch.shape[1:] != expected:
            raise BackendError(f"{self.path}: expected chunks (n, {expected[0]}, {expected[1]}), "
                               f"got {batch.shape}")
        pieces = [self._run(batch[i:i + self.max_batch])
                  for i in range(0, len(batch), self.max_batch)]
        return {t: np.concatenate([p[t] for p in pieces], axis=0) for t in self.targets}

    def _run(self, batch: np.ndarray) -> Dict[str, np.ndarray]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return (f"{type(self).__name__}({self.path!r}, targets={self.targets}, "
                f"segment={self.segment_samples}, sample_rate={self.sample_rate})")


class KerasBackend(Backend):
    """A :class:`~bsrnn_tf.models.Separator` (``.keras`` or run directory)
    called through a ``tf.function``.

    ``jit_compile=True`` compiles it with XLA (``benchmarks/model.py``: 1.2x
    to 1.4x faster forward passes on CPU, after a compilation of several
    seconds to a minute); every call is then padded to ``max_batch`` chunks so
    that one compiled shape serves a whole song.
    """

    kind = "keras"

    def __init__(self, path: str, model=None, segment_samples: Optional[int] = None,
                 max_batch: int = 4, jit_compile: bool = False):
        import tensorflow as tf

        if model is None:
            from bsrnn_tf.models.io import ModelLoadError, load_separator
            try:
                model = load_separator(path)
            except ModelLoadError as e:
                raise BackendError(str(e)) from e
        info = ModelInfo(model.sample_rate, int(segment_samples or model.segment_samples),
                         model.audio_channels, model.targets, model.n_fft, model.hop_length)
        super().__init__(path, info, max_batch)
        self.model = model
        self.jit_compile = bool(jit_compile)
        spec = tf.TensorSpec((None, info.segment_samples, info.channels), tf.float32)
        self._fn = tf.function(lambda x: model(x, training=False), input_signature=[spec],
                               jit_compile=self.jit_compile)

    def _run(self, batch):
        n = len(batch)
        if self.jit_compile and n < self.max_batch:
            batch = np.concatenate([batch, np.zeros((self.max_batch - n,) + batch.shape[1:],
                                                    np.float32)])
        return {t: v.numpy()[:n] for t, v in self._fn(batch).items()}


class SavedModelBackend(Backend):
    """An exported SavedModel's ``serving_default`` signature."""

    kind = "savedmodel"

    def __init__(self, path: str, info: ModelInfo, max_batch: int = 4):
        import tensorflow as tf

        super().__init__(path, info, max_batch)
        try:
            self._loaded = tf.saved_model.load(path)
        except Exception as e:  # noqa: BLE001  (TF raises many kinds)
            raise BackendError(f"{path}: cannot load SavedModel ({type(e).__name__}: {e})") from e
        signature = self._loaded.signatures.get("serving_default")
        inputs = {} if signature is None else signature.structured_input_signature[1]
        if "waveform" not in inputs:
            raise BackendError(f"{path}: SavedModel has no serving_default(waveform) signature; "
                               f"not a bsrnn_tf separator export")
        self._signature = signature

    def _run(self, batch):
        out = self._signature(waveform=batch)
        return {t: out[t].numpy() for t in self.targets}


class TFLiteBackend(Backend):
    """An exported ``.tflite`` file run by ``ai_edge_litert``; batch 1.

    Variant ``waveform`` maps a chunk to stems inside the model; variant
    ``spectrum`` maps a packed spectrum to packed masks, and this backend does
    the STFT and iSTFT around it in numpy. One interpreter thread is the
    default: on 2-core machines a second thread was slower in one
    ``benchmarks/export.py`` run and 1.3x-1.5x faster in another, on another
    CPU (``bsrnn-tf separate --threads``).
    """

    kind = "tflite"

    def __init__(self, path: str, num_threads: Optional[int] = 1):
        from bsrnn_tf.console import open_tflite_interpreter

        metadata = read_tflite_metadata(path)
        super().__init__(path, ModelInfo.from_dict(metadata, path), max_batch=1)
        self.variant = metadata.get("variant", "waveform")
        if self.variant == "stream":
            raise BackendError(f"{path}: a streaming graph (one hop and a state per call); "
                               f"run it with bsrnn-tf stream")
        self.quantization = metadata.get("quantization", "none")
        self.num_threads = num_threads
        try:
            self._interpreter = open_tflite_interpreter(path, num_threads)
            self._runner = self._interpreter.get_signature_runner(self.variant)
        except (ValueError, RuntimeError) as e:
            raise BackendError(f"{path}: cannot open TFLite model ({e})") from e

    def _run(self, batch):
        if self.variant == "waveform":
            out = self._runner(waveform=batch)
            return {t: out[t] for t in self.targets}
        info = self.info
        spectrum = numpy_stft(batch, info.n_fft, info.hop_length)
        masks = self._runner(spectrum=spectrum)
        return {t: numpy_istft(apply_packed_mask(masks[t], spectrum), info.n_fft,
                               info.hop_length, info.segment_samples) for t in self.targets}


# -- loading -------------------------------------------------------------------------

def load_backend(path: str, max_batch: int = 4, num_threads: Optional[int] = 1,
                 segment_samples: Optional[int] = None, jit_compile: bool = False) -> Backend:
    """Opens any separator artifact (see the module docstring).

    Args:
      path: ``.keras`` file, run directory, SavedModel model or version
        directory, or ``.tflite`` file.
      max_batch: chunks per call for Keras and SavedModel (TFLite: 1).
      num_threads: TFLite interpreter threads (None: the runtime's default).
      segment_samples: chunk length for a Keras model (exports fix their own).
      jit_compile: compile a Keras model with XLA (see :class:`KerasBackend`).
    Raises:
      BackendError: the path does not exist or holds no separator artifact.
    """
    if not os.path.exists(path):
        raise BackendError(f"{path}: no such file or directory")
    if os.path.isfile(path):
        if path.endswith(".tflite"):
            return TFLiteBackend(path, num_threads)
        if path.endswith(".keras"):
            return KerasBackend(path, segment_samples=segment_samples, max_batch=max_batch,
                                jit_compile=jit_compile)
        raise BackendError(f"{path}: not a separator artifact (expected .keras, .tflite, a run "
                           f"directory or a SavedModel directory)")
    if os.path.exists(os.path.join(path, MODEL_FILE)):
        return KerasBackend(path, segment_samples=segment_samples, max_batch=max_batch,
                            jit_compile=jit_compile)
    version_dir = resolve_savedmodel_dir(path)
    return SavedModelBackend(version_dir, read_export_info(version_dir), max_batch)


def artifact_files(path: str) -> List[str]:
    """The files that hold the model ``path`` opens (see :func:`load_backend`):
    the ``.keras`` or ``.tflite`` file, a run directory's ``model.keras``, or
    every file of a SavedModel version directory."""
    if os.path.isfile(path):
        return [path]
    if os.path.exists(os.path.join(path, MODEL_FILE)):
        return [os.path.join(path, MODEL_FILE)]
    version_dir = resolve_savedmodel_dir(path)
    return sorted(os.path.join(root, name) for root, _, names in os.walk(version_dir)
                  for name in names)


def artifact_fingerprint(path: str) -> str:
    """SHA-256 (hex) of the model files of ``path`` (:func:`artifact_files`,
    names relative to their folder and contents): it changes whenever the
    model does, however the files were copied or touched."""
    import hashlib

    if not os.path.exists(path):
        raise BackendError(f"{path}: no such file or directory")
    files = artifact_files(path)
    base = os.path.dirname(files[0]) if len(files) == 1 else os.path.commonpath(files)
    digest = hashlib.sha256()
    for file in files:
        digest.update(os.path.relpath(file, base).encode() + b"\0")
        try:
            with open(file, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
        except OSError as e:
            raise BackendError(f"{file}: cannot read ({e})") from e
    return digest.hexdigest()


def resolve_savedmodel_dir(path: str) -> str:
    """A version directory itself, or the highest numbered version of a
    TF Serving model directory ``<name>/<version>/saved_model.pb``."""
    if os.path.exists(os.path.join(path, "saved_model.pb")):
        return path
    versions = [int(d) for d in os.listdir(path) if d.isdigit()
                and os.path.exists(os.path.join(path, d, "saved_model.pb"))]
    if not versions:
        raise BackendError(f"{path}: holds neither model.keras, saved_model.pb nor numbered "
                           f"SavedModel version directories")
    return os.path.join(path, str(max(versions)))


def read_export_info(directory: str) -> ModelInfo:
    """:class:`ModelInfo` from ``export.json`` in ``directory``."""
    file = os.path.join(directory, EXPORT_FILE)
    if not os.path.exists(file):
        raise BackendError(f"{directory}: no {EXPORT_FILE}; not a bsrnn_tf export "
                           f"(sample rate and targets unknown)")
    data = _read_json(file)
    if data.get("format") != "savedmodel":
        raise BackendError(f"{directory}: export.json describes a {data.get('format')!r} "
                           f"export, not a separator SavedModel")
    return ModelInfo.from_dict(data.get("model", {}), file)


def _read_json(file: str) -> dict:
    try:
        return read_json(file)
    except JsonFileError as e:
        raise BackendError(str(e)) from None


def read_tflite_metadata(path: str) -> dict:
    """The bsrnn_tf JSON embedded in a ``.tflite`` file's metadata, else the
    entry for this file in ``export.json`` beside it."""
    try:
        with open(path, "rb") as f:
            content = f.read()
    except OSError as e:
        raise BackendError(f"{path}: cannot read ({e})") from e
    embedded = tflite_metadata_from_bytes(content, path)
    if embedded is not None:
        return embedded
    file = os.path.join(os.path.dirname(os.path.abspath(path)), EXPORT_FILE)
    if os.path.exists(file):
        data = _read_json(file)
        entry = data.get("artifacts", {}).get(os.path.basename(path))
        if entry is not None:
            return {**data["model"], **entry}
    raise BackendError(f"{path}: no bsrnn_tf metadata embedded and no entry in {file}")


def tflite_metadata_from_bytes(content: bytes, where: str = "<bytes>") -> Optional[dict]:
    """Parses the flatbuffer for the metadata entry named ``bsrnn_tf``."""
    from ai_edge_litert import schema_py_generated as schema

    if len(content) < 8 or content[4:8] != b"TFL3":
        raise BackendError(f"{where}: not a TFLite flatbuffer")
    try:
        model = schema.Model.GetRootAs(content, 0)
        for j in range(model.MetadataLength()):
            entry = model.Metadata(j)
            if entry.Name() == TFLITE_METADATA_NAME.encode():
                data = model.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
                return json.loads(data.decode("utf-8"))
    except (struct.error, IndexError, AttributeError, TypeError, OverflowError, ValueError) as e:
        raise BackendError(f"{where}: truncated or corrupt TFLite file ({len(content)} bytes; "
                           f"its flatbuffer cannot be parsed: {type(e).__name__})") from None
    return None


__all__: Sequence[str] = [
    "Backend", "BackendError", "KerasBackend", "ModelInfo", "SavedModelBackend",
    "artifact_files", "artifact_fingerprint",
    "TFLiteBackend", "load_backend", "read_export_info", "read_tflite_metadata", "resolve_savedmodel_dir",
]
