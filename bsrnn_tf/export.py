"""Export a separator for TF Serving, for devices (TFLite) and as a frozen
backbone.

Layout of an export directory ``OUT`` (:func:`export_model`)::

    OUT/serving/<name>/<version>/   SavedModel for TF Serving (base path OUT/serving/<name>);
                                    versions 1, 2, ... are never overwritten
    OUT/tflite/<name>-<variant>-<float32|float16|dynamic-int8>.tflite
    OUT/backbone/                   backbone.keras, heads.keras, backbone_savedmodel/,
                                    heads_savedmodel/: spectrum -> band features -> masks

Each directory (each SavedModel version) also holds the model's
``config.json`` and an ``export.json``: what was exported, from which model,
the quantization, the segment, the parity figures measured against the Keras
model and the file sizes.

Every artifact is built from a CPU copy of the model with ``use_cudnn=False``
(a cuDNN-traced LSTM neither loads on CPU nor converts to TFLite) and float32
weights. Signatures:

- SavedModel ``serving_default``: ``waveform (batch, segment, channels)``
  float32 -> ``{target: (batch, segment, channels)}``; ``masks``:
  packed spectrum ``(batch, frames, bins, channels * 2)`` ->
  ``{target: packed complex mask}`` (same shape).
- TFLite ``waveform`` variant: the same as ``serving_default`` with batch 1
  (STFT and iSTFT both on the builtin RFFT2D, see :func:`builtin_istft`).
  ``spectrum`` variant: the same as ``masks`` with batch 1 and
  ``frames = 1 + segment // hop``; the app does the STFT and iSTFT
  (reference: :func:`bsrnn_tf.backends.numpy_stft`). The LSTMs are unrolled
  over their static steps (:func:`tflite_masks`): no WHILE loops, and faster
  than Keras on CPU. Builtin ops only (checked); quantization ``none``
  (float32), ``float16`` (weights) or ``dynamic-int8`` (int8 weights, float
  activations). Full-integer int8 is not offered: the converter crashes on
  Keras 3 LSTMs.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import tempfile
import time
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

from bsrnn_tf.backends import (CONFIG_FILE, EXPORT_FILE, TFLITE_METADATA_NAME, Backend,
                               KerasBackend, ModelInfo, SavedModelBackend, TFLiteBackend)
from bsrnn_tf.fileio import atomic_save, atomic_write_bytes, atomic_write_text

FORMATS = ("savedmodel", "tflite", "backbone")
VARIANTS = ("waveform", "spectrum")
QUANTIZATIONS = ("none", "float16", "dynamic-int8")
QUANTIZATION_LABELS = {"none": "float32", "float16": "float16", "dynamic-int8": "dynamic-int8"}


class ExportError(ValueError):
    """An export cannot be made; the message names the path or the option."""


# -- the model to export ----------------------------------------------------------------

def load_for_export(path: str):
    """Loads a separator (``.keras`` file or run directory) for export.

    Returns:
      ``(cpu_model, config)``: a CPU copy (see :func:`cpu_copy`) and the
      config to ship with it (the run's ``config.json``, else
      ``{"model": model_config}``).
    """
    from bsrnn_tf.models.io import ModelLoadError, load_separator

    try:
        model = load_separator(path)
    except ModelLoadError as e:
        raise ExportError(str(e)) from e
    return cpu_copy(model), _shipped_config(path, model)


def _shipped_config(path: str, model) -> dict:
    directory = path if os.path.isdir(path) else os.path.dirname(os.path.abspath(path))
    file = os.path.join(directory, CONFIG_FILE)
    is_run = os.path.isdir(path) or os.path.basename(path) == "model.keras"
    if is_run and os.path.exists(file):
        try:
            with open(file) as f:
                return json.load(f)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise ExportError(f"{file}: not a readable config JSON ({e}); it would be shipped "
                              f"with every export: fix or remove it") from None
    return {"model": model.model_config}


def cpu_copy(model, use_cudnn=False):
    """A float32 copy of a :class:`Separator` built on CPU with the given
    ``use_cudnn``."""
    import tensorflow as tf

    from bsrnn_tf.models.separator import Separator

    config = dict(model.get_config(), use_cudnn=use_cudnn, dtype="float32")
    with tf.device("/CPU:0"):
        copy = Separator.from_config(config)
        copy.build()
        _copy_weights(model, copy)
    return copy


def _copy_weights(source, target) -> None:
    """Copies weights in creation order (variable paths carry auto-numbered
    LSTM names, so they differ between two builds); shapes must match."""
    pairs = list(zip(source.weights, target.weights))
    if len(source.weights) != len(target.weights) or any(
            tuple(a.shape) != tuple(b.shape) for a, b in pairs):
        raise ExportError(f"cannot copy weights: {type(source).__name__} structures differ")
    for a, b in pairs:
        b.assign(np.asarray(a.numpy(), np.float32))


def default_name(model_path: str) -> str:
    """A TF Serving model name from a model path: the run directory's name
    or the ``.keras`` file's stem, reduced to ``[A-Za-z0-9_.-]``."""
    path = os.path.abspath(model_path)
    stem = os.path.splitext(os.path.basename(path))[0]
    if os.path.isfile(path) and stem == "model":
        stem = os.path.basename(os.path.dirname(path))
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-.") or "bsrnn"


def segment_samples_for(model, seconds: Optional[float]) -> int:
    """Chunk length in samples: ``seconds`` at the model's sample rate, else
    the model's own segment; at least ``n_fft``."""
    if seconds is not None and not 0 < seconds < math.inf:
        raise ExportError(f"segment must be a finite number of seconds > 0, got {seconds}")
    samples = model.segment_samples if seconds is None else int(round(seconds * model.sample_rate))
    if samples < model.n_fft:
        raise ExportError(f"segment of {samples} samples is shorter than n_fft ({model.n_fft})")
    return samples


def model_info(model, segment_samples: int) -> ModelInfo:
    return ModelInfo(model.sample_rate, segment_samples, model.audio_channels, model.targets,
                     model.n_fft, model.hop_length)


def _model_section(model, segment_samples: int) -> dict:
    """``export.json["model"]``: :class:`ModelInfo` plus architecture figures."""
    return {**model_info(model, segment_samples).to_dict(),
            "segment_seconds": segment_samples / model.sample_rate,
            "frames": 1 + segment_samples // model.hop_length, "bins": model.n_fft // 2 + 1,
            "num_bands": model.backbone.num_bands, "feature_dim": model.feature_dim,
            "num_layers": model.num_layers, "mlp_ratio": model.mlp_ratio,
            "model_segment_samples": model.segment_samples}


# -- files and directories -------------------------------------------------------------

def ensure_writable(directory: str) -> None:
    """Creates ``directory`` and checks that a file can be written in it."""
    try:
        os.makedirs(directory, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".probe-"):
            pass
    except OSError as e:
        raise ExportError(f"{directory}: output is not writable ({e.strerror or e})") from e


def _write_json(path: str, data: dict) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def directory_size(path: str) -> int:
    """Bytes of all files under ``path``."""
    return sum(os.path.getsize(os.path.join(root, f))
               for root, _, files in os.walk(path) for f in files)


def _provenance(what: str, source: Optional[str]) -> dict:
    import bsrnn_tf
    return {"format": what, "source": os.path.abspath(source) if source else None,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "bsrnn_tf_version": bsrnn_tf.__version__}


def next_version(base_dir: str) -> int:
    """1 + the highest numbered subdirectory of ``base_dir`` (1 if none)."""
    if not os.path.isdir(base_dir):
        return 1
    return 1 + max([int(d) for d in os.listdir(base_dir) if d.isdigit()], default=0)


def _publish_version(tmp_dir: str, base_dir: str, export: dict) -> str:
    """Renames a finished SavedModel into the next free version directory."""
    for _ in range(100):
        version = next_version(base_dir)
        target = os.path.join(base_dir, str(version))
        export["version"] = version
        _write_json(os.path.join(tmp_dir, EXPORT_FILE), export)
        if not os.path.exists(target):
            try:
                os.rename(tmp_dir, target)
                return target
            except OSError:
                continue  # another exporter took this version
    raise ExportError(f"{base_dir}: could not claim a new version directory")


# -- parity -----------------------------------------------------------------------------

def error_figures(reference: Dict[str, np.ndarray], estimate: Dict[str, np.ndarray]) -> dict:
    """Max absolute error over all targets and samples, and that error
    relative to the peak absolute reference value."""
    max_abs = max(float(np.max(np.abs(estimate[t] - reference[t]))) for t in reference)
    peak = max(float(np.max(np.abs(reference[t]))) for t in reference)
    return {"max_abs_error": max_abs, "max_rel_error": max_abs / max(peak, 1e-12)}


def sdr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    """``10 log10(sum ref^2 / sum (ref - est)^2)`` over all samples and
    channels, in dB (eps 1e-12)."""
    signal = float(np.sum(np.square(reference, dtype=np.float64)))
    noise = float(np.sum(np.square(reference - estimate, dtype=np.float64)))
    return 10.0 * np.log10((signal + 1e-12) / (noise + 1e-12))


def music_chunks(sample_rate: int, segment: int, channels: int, count: int,
                 seed: int = 0) -> tuple:
    """``count`` consecutive chunks ``(count, segment, channels)`` float32 of
    a generated song (:func:`bsrnn_tf.datasets.synth.render_song`), or of a
    synthetic chord-and-noise signal where that module is missing.

    Returns:
      ``(name, chunks)``.
    """
    seconds = count * segment / sample_rate + 0.05
    try:
        from bsrnn_tf.datasets.synth import mix_stems, render_song
        name, stems = render_song(seed, "test", 0, seconds, sample_rate)
        audio = mix_stems(stems).astype(np.float32) / 32768.0
    except ImportError:
        name, audio = "synthetic chords and noise bursts", _synthetic_music(seconds, sample_rate,
                                                                            seed)
    audio = audio[:count * segment]
    audio = audio[:, :channels] if channels <= audio.shape[1] else np.repeat(
        audio[:, :1], channels, axis=1)
    return name, audio.reshape(count, segment, channels).astype(np.float32)


def _synthetic_music(seconds: float, sample_rate: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    chord = sum(np.sin(2 * np.pi * f * k * t) / k for f in (220.0, 277.2, 329.6)
                for k in range(1, 6))
    beats = (np.sin(2 * np.pi * 2 * t) > 0.95) * rng.standard_normal(t.size)
    left, right = 0.1 * chord + 0.2 * beats, 0.08 * chord + 0.25 * beats
    return np.stack([left, right], axis=1).astype(np.float32)


class ParityProbe:
    """Fixed inputs (random chunks, chunks of a generated song) and the Keras
    outputs on them; :meth:`measure` scores any backend against those.

    Args:
      reference: the Keras model as a :class:`Backend`.
      random_chunks, song_chunks: how many chunks of each kind.
    """

    def __init__(self, reference: Backend, random_chunks: int = 2, song_chunks: int = 2,
                 seed: int = 0):
        info = reference.info
        rng = np.random.default_rng(seed)
        shape = (random_chunks, info.segment_samples, info.channels)
        self.random = (0.1 * rng.standard_normal(shape)).astype(np.float32)
        self.song_name, self.song = music_chunks(info.sample_rate, info.segment_samples,
                                                 info.channels, song_chunks, seed)
        self.random_reference = reference(self.random)
        self.song_reference = reference(self.song)

    def measure(self, backend: Backend) -> dict:
        """Error figures on the random chunks and SDR (dB) on the song."""
        random_out = backend(self.random)
        song_out = backend(self.song)
        sdr = {t: round(sdr_db(self.song_reference[t], song_out[t]), 2)
               for t in self.song_reference}
        return {"random_chunks": {"count": len(self.random), "std": 0.1,
                                  **error_figures(self.random_reference, random_out)},
                "song": {"track": self.song_name, "chunks": len(self.song),
                         "sdr_db": sdr, "min_sdr_db": min(sdr.values()),
                         **error_figures(self.song_reference, song_out)}}


# -- graphs -------------------------------------------------------------------------------

def _separate_fn(model) -> Callable:
    """Waveform -> stems through the Keras layers. The BLSTMs trace as
    TensorFlow's ``BlockLSTM`` op where :func:`bsrnn_tf.layers.fused_lstm.use_fused`
    picks it (CPU-only machines) and as while loops otherwise; both are core
    TensorFlow ops with CPU and GPU kernels, so the SavedModel is portable
    either way."""
    def separate(waveform):
        return model(waveform, training=False)
    return separate


def _masks_fn(model) -> Callable:
    def masks(spectrum):
        return model.masks(spectrum, training=False)
    return masks


def _tflite_separate_fn(model, segment: int) -> Callable:
    """Waveform -> stems for TFLite: STFT (builtin RFFT2D), masks with
    unrolled LSTMs (:func:`tflite_masks`), iSTFT with RFFT2D
    (:func:`builtin_istft`)."""
    from bsrnn_tf.layers.mask_head import apply_mask

    def waveform(waveform):
        spectrum = model.spectrum(waveform)
        return {t: builtin_istft(apply_mask(m, spectrum), model.n_fft, model.hop_length, segment)
                for t, m in tflite_masks(model, spectrum).items()}
    return waveform


def _tflite_masks_fn(model) -> Callable:
    def spectrum(spectrum):
        return tflite_masks(model, spectrum)
    return spectrum


def tflite_masks(model, spectrum) -> dict:
    """``Separator.masks`` with every BLSTM unrolled over its static steps.

    TFLite runs a Keras 3 LSTM as a WHILE loop, several times slower than
    TF; unrolled, each step is a few builtin ops that XNNPACK runs inside one
    delegated graph. Mirrors ``Backbone.call`` and ``BandSequence.call``; the
    parity figures of every export (and the tests) guard that.

    Args:
      spectrum: packed ``(batch, frames, bins, channels * 2)``, static shape.
    Returns:
      ``{target: packed mask}`` like ``spectrum``.
    """
    x = model.backbone.band_split(spectrum)
    for block in model.backbone.blocks:
        x = _unrolled_band_sequence(block, x)
    return {t: model.heads[t](x) for t in model.targets}


def _unrolled_band_sequence(block, x):
    """``BandSequence.call`` with unrolled BLSTMs; ``x`` static
    ``(batch, frames, bands, N)``."""
    import tensorflow as tf

    batch, frames, bands, n = (int(d) for d in x.shape)
    y = tf.reshape(tf.transpose(block.normalize_time(x), [0, 2, 1, 3]), [batch * bands, frames, n])
    y = block.time_fc(_unrolled_bidirectional(block.time_rnn, y))
    x = x + tf.transpose(tf.reshape(y, [batch, bands, frames, n]), [0, 2, 1, 3])
    y = tf.reshape(block.normalize_band(x), [batch * frames, bands, n])
    y = block.band_fc(_unrolled_bidirectional(block.band_rnn, y))
    return x + tf.reshape(y, [batch, frames, bands, n])


def _unrolled_bidirectional(layer, x):
    """``keras.layers.Bidirectional(LSTM, merge_mode="concat")`` on
    ``(batch, steps, features)``."""
    import tensorflow as tf

    if layer.merge_mode != "concat":
        raise ExportError(f"{layer.name}: merge_mode {layer.merge_mode!r} is not supported")
    forward = _unrolled_lstm(layer.forward_layer, x, reverse=False)
    backward = _unrolled_lstm(layer.backward_layer, x, reverse=True)
    return tf.concat([forward, backward], axis=-1)


def _unrolled_lstm(lstm, x, reverse: bool):
    """A Keras LSTM (tanh, sigmoid gates, bias, zero initial state) over the
    static steps of ``x (batch, steps, features)``.

    Returns all outputs ``(batch, steps, units)`` in input order; ``reverse``
    runs from the last step (``go_backwards`` then re-reversed, as in
    ``Bidirectional``).
    """
    import tensorflow as tf

    cell = lstm.cell
    gates = (cell.activation.__name__, cell.recurrent_activation.__name__)
    if gates != ("tanh", "sigmoid") or not cell.use_bias:
        raise ExportError(f"{lstm.name}: only tanh/sigmoid LSTMs with a bias are supported")
    kernel, recurrent, bias = (tf.convert_to_tensor(v)
                               for v in (cell.kernel, cell.recurrent_kernel, cell.bias))
    batch, steps, features = (int(d) for d in x.shape)
    units = cell.units
    # The input part of every step in one matmul, then one UNPACK: per-step
    # strided slices of a batch-major tensor cost more than the step itself.
    z = tf.matmul(tf.reshape(x, [batch * steps, features]), kernel) + bias
    z = tf.unstack(tf.transpose(tf.reshape(z, [batch, steps, 4 * units]), [1, 0, 2]))
    h = c = tf.zeros([batch, units])
    outputs = [None] * steps
    for t in (range(steps - 1, -1, -1) if reverse else range(steps)):
        i, f, g, o = tf.split(z[t] + tf.matmul(h, recurrent), 4, axis=-1)
        c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
        h = tf.sigmoid(o) * tf.tanh(c)
        outputs[t] = h
    return tf.transpose(tf.stack(outputs), [1, 0, 2])


def builtin_istft(spectrum, n_fft: int, hop_length: int, length: int):
    """Inverse of :func:`bsrnn_tf.layers.stft.stft` with TFLite builtin ops
    (RFFT2D) for a power-of-two ``n_fft``; otherwise the matrix-product
    inverse DFT of ``istft(use_matmul=True)``.

    The inverse real DFT is a forward real FFT (Hartley identity): with
    ``C = Re X - Im X`` over the Hermitian extension of the one-sided
    spectrum ``X``, ``x[n] = (Re F[n] - Im F[n]) / N`` where ``F = FFT(C)``.
    Unlike the ``(2 * bins, n_fft)`` DFT matrix (16.8 MB at n_fft 2048) it
    adds no weights, so int8 weight quantization cannot degrade it. As with
    ``irfft``, the imaginary parts of the DC and Nyquist bins are ignored.

    Args:
      spectrum: packed ``(batch, frames, bins, channels * 2)``, static shape.
      length: output samples.
    Returns:
      ``(batch, length, channels)`` float32.
    """
    import tensorflow as tf

    from bsrnn_tf.layers.stft import hann_window, istft, window_envelope

    if n_fft & (n_fft - 1):
        return istft(spectrum, n_fft, hop_length, length, use_matmul=True)
    batch, frames, bins, packed = (int(d) for d in spectrum.shape)
    channels, half = packed // 2, n_fft // 2
    x = tf.reshape(spectrum, [batch, frames, bins, channels, 2])
    x = tf.transpose(x, [0, 3, 1, 4, 2])  # (batch, channels, frames, 2, bins)
    real, imag = x[..., 0, :], x[..., 1, :]
    inner = real[..., 1:half] - imag[..., 1:half]
    mirrored = tf.reverse(real[..., 1:half] + imag[..., 1:half], axis=[-1])
    c = tf.concat([real[..., :1], inner, real[..., half:], mirrored], axis=-1)  # (..., n_fft)
    f = tf.signal.rfft(c)  # (..., half + 1)
    re, im = tf.math.real(f), tf.math.imag(f)
    signal = tf.concat([re - im, tf.reverse((re + im)[..., 1:half], axis=[-1])], axis=-1)
    signal = signal * tf.constant((hann_window(n_fft) / n_fft).astype(np.float32))
    audio = tf.signal.overlap_and_add(signal, hop_length)  # (batch, channels, total)
    envelope = window_envelope(frames, n_fft, hop_length)[half:half + length]
    audio = audio[:, :, half:half + length] * tf.constant((1.0 / envelope).astype(np.float32))
    return tf.transpose(audio, [0, 2, 1])


def separator_archive(model, segment: int, endpoints: Dict[str, str],
                      for_tflite: bool = False):
    """An ``ExportArchive`` of ``model`` with the given endpoints.

    Args:
      segment: samples of the ``waveform`` input.
      endpoints: ``{endpoint name: "waveform" | "spectrum"}``.
      for_tflite: batch 1 and static frames, with the TFLite graphs
        (unrolled LSTMs, RFFT iSTFT); else a dynamic batch (and dynamic
        frames for ``spectrum``) through the Keras layers.
    """
    import keras
    import tensorflow as tf

    archive = keras.export.ExportArchive()
    archive.track(model)
    channels, bins = model.audio_channels, model.n_fft // 2 + 1
    batch, frames = (1, 1 + segment // model.hop_length) if for_tflite else (None, None)
    for name, kind in endpoints.items():
        if kind == "waveform":
            spec = tf.TensorSpec((batch, segment, channels), tf.float32, name="waveform")
            fn = _tflite_separate_fn(model, segment) if for_tflite else _separate_fn(model)
        else:
            spec = tf.TensorSpec((batch, frames, bins, 2 * channels), tf.float32,
                                 name="spectrum")
            fn = _tflite_masks_fn(model) if for_tflite else _masks_fn(model)
        archive.add_endpoint(name, fn, [spec])
    return archive


# -- SavedModel ------------------------------------------------------------------------

def export_savedmodel(model, base_dir: str, segment_samples: Optional[int] = None, *,
                      source: Optional[str] = None, config: Optional[dict] = None,
                      probe: Optional[ParityProbe] = None) -> str:
    """Writes the next version of a TF Serving model directory.

    Args:
      model: a CPU :class:`Separator` (:func:`cpu_copy`).
      base_dir: ``<...>/<name>``; the SavedModel goes to ``base_dir/<version>``.
      segment_samples: fixed chunk length (default: the model's).
      probe: measures parity against Keras, recorded in ``export.json``.
    Returns:
      the version directory.
    """
    segment = segment_samples or model.segment_samples
    ensure_writable(base_dir)
    tmp = tempfile.mkdtemp(prefix=".tmp-export-", dir=base_dir)
    try:
        archive = separator_archive(model, segment,
                                    {"serving_default": "waveform", "masks": "spectrum"})
        archive.write_out(tmp, verbose=False)
        _write_json(os.path.join(tmp, CONFIG_FILE), config or {"model": model.model_config})
        export = {**_provenance("savedmodel", source), "quantization": "none",
                  "model": _model_section(model, segment),
                  "signatures": _savedmodel_signatures(model, segment)}
        if probe is not None:
            backend = SavedModelBackend(tmp, model_info(model, segment))
            export["parity_vs_keras"] = probe.measure(backend)
            del backend
        export["files"] = {f: _path_size(os.path.join(tmp, f)) for f in sorted(os.listdir(tmp))}
        export["size_bytes"] = directory_size(tmp)
        return _publish_version(tmp, base_dir, export)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _savedmodel_signatures(model, segment: int) -> dict:
    c, bins, frames = model.audio_channels, model.n_fft // 2 + 1, 1 + segment // model.hop_length
    stems = {t: [-1, segment, c] for t in model.targets}
    masks = {t: [-1, frames, bins, 2 * c] for t in model.targets}
    return {"serving_default": {"inputs": {"waveform": [-1, segment, c]}, "outputs": stems},
            "masks": {"inputs": {"spectrum": [-1, -1, bins, 2 * c]}, "outputs": masks}}


# -- TFLite ------------------------------------------------------------------------------

def convert_tflite(saved_model_dir: str, signature_key: str, quantize: str = "none") -> bytes:
    """Converts one signature of a fixed-shape SavedModel, builtin ops only."""
    import tensorflow as tf

    if quantize not in QUANTIZATIONS:
        raise ExportError(f"unknown quantization {quantize!r}; choose one of {QUANTIZATIONS} "
                          f"(full-integer int8 is not supported: the converter crashes on "
                          f"Keras 3 LSTMs)")
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir,
                                                         signature_keys=[signature_key])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "float16":
        converter.target_spec.supported_types = [tf.float16]
    try:
        return converter.convert()
    except Exception as e:  # noqa: BLE001  (the converter raises many kinds)
        raise ExportError(f"TFLite conversion of {signature_key!r} ({quantize}) failed: "
                          f"{type(e).__name__}: {str(e)[:2000]}") from e


def tflite_op_names(content: bytes) -> set:
    """Names of the operators used in all subgraphs of a ``.tflite``
    flatbuffer; custom ops (Flex included) as ``CUSTOM:<name>``."""
    from ai_edge_litert import schema_py_generated as schema

    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    model = schema.Model.GetRootAs(content, 0)
    ops = set()
    for j in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(j)
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == schema.BuiltinOperator.CUSTOM:
            ops.add(f"CUSTOM:{(code.CustomCode() or b'').decode()}")
        else:
            ops.add(names.get(builtin, f"BUILTIN_{builtin}"))
    return ops


def embed_tflite_metadata(content: bytes, metadata: dict) -> bytes:
    """Adds ``metadata`` as JSON under the model metadata name ``bsrnn_tf``."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(content), 0)
    buffer = schema.BufferT()
    buffer.data = np.frombuffer(json.dumps(metadata, sort_keys=True).encode(), np.uint8).copy()
    model.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = TFLITE_METADATA_NAME
    entry.buffer = len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or [])
                      if m.name not in (TFLITE_METADATA_NAME, TFLITE_METADATA_NAME.encode())]
    model.metadata.append(entry)
    builder = flatbuffers.Builder(len(content) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _refuse_overwrite(out_dir: str, formats, name: str, variants, quantizations) -> None:
    """Raises :class:`ExportError` naming the outputs of an earlier export
    that this one would replace."""
    planned = []
    if "tflite" in formats:
        planned += [os.path.join(out_dir, "tflite", tflite_file_name(name, v, q))
                    for v in variants for q in quantizations]
    if "backbone" in formats:
        planned.append(os.path.join(out_dir, "backbone"))
    existing = [p for p in planned if os.path.exists(p)]
    if existing:
        more = f" and {len(existing) - 2} more" if len(existing) > 2 else ""
        raise ExportError(f"{', '.join(existing[:2])}{more} already exist from an earlier "
                          f"export; use --overwrite to replace them, or another -o")


def tflite_file_name(name: str, variant: str, quantize: str) -> str:
    return f"{name}-{variant}-{QUANTIZATION_LABELS[quantize]}.tflite"


def export_tflite(model, out_dir: str, name: str = "bsrnn",
                  variants: Sequence[str] = VARIANTS,
                  quantizations: Sequence[str] = QUANTIZATIONS,
                  segment_samples: Optional[int] = None, *, source: Optional[str] = None,
                  config: Optional[dict] = None, probe: Optional[ParityProbe] = None,
                  num_threads: Optional[int] = 1,
                  log: Callable[[str], None] = lambda _: None) -> List[str]:
    """Writes one ``.tflite`` per variant and quantization into ``out_dir``.

    Each file has batch 1, a fixed segment, builtin ops only (checked) and its
    :class:`ModelInfo` embedded as metadata. ``export.json`` in ``out_dir``
    gets one entry per file (entries for other files already there are kept).

    Returns:
      the paths written.
    """
    _check_choices(variants, VARIANTS, "variant")
    _check_choices(quantizations, QUANTIZATIONS, "quantization")
    segment = segment_samples or model.segment_samples
    ensure_writable(out_dir)
    info = model_info(model, segment)
    artifacts, paths = {}, []
    with tempfile.TemporaryDirectory(prefix=".tmp-tflite-", dir=out_dir) as tmp:
        archive = separator_archive(model, segment, {v: v for v in variants}, for_tflite=True)
        archive.write_out(tmp, verbose=False)
        for variant in variants:
            for quantize in quantizations:
                path = os.path.join(out_dir, tflite_file_name(name, variant, quantize))
                log(f"converting {os.path.basename(path)}")
                entry = _write_tflite(convert_tflite(tmp, variant, quantize), path, info,
                                      variant, quantize)
                if probe is not None:
                    entry["parity_vs_keras"] = probe.measure(TFLiteBackend(path, num_threads))
                artifacts[os.path.basename(path)] = entry
                paths.append(path)
    _write_json(os.path.join(out_dir, CONFIG_FILE), config or {"model": model.model_config})
    section = _model_section(model, segment)
    export = {**_provenance("tflite", source), "model": section,
              "artifacts": {**_kept_artifacts(out_dir, section), **artifacts}}
    _write_json(os.path.join(out_dir, EXPORT_FILE), export)
    return paths


def _write_tflite(content: bytes, path: str, info: ModelInfo, variant: str,
                  quantize: str) -> dict:
    ops = tflite_op_names(content)
    custom = sorted(op for op in ops if op.startswith("CUSTOM:"))
    if custom:
        raise ExportError(f"{path}: converted model needs non-builtin ops {custom}")
    shapes = _tflite_io(info, variant)
    metadata = {**info.to_dict(), "variant": variant, "quantization": quantize,
                "signature": variant, **shapes}
    atomic_write_bytes(path, embed_tflite_metadata(content, metadata))
    return {"variant": variant, "quantization": quantize, "signature": variant, **shapes,
            "size_bytes": os.path.getsize(path), "ops": sorted(ops)}


def _tflite_io(info: ModelInfo, variant: str) -> dict:
    c = info.channels
    if variant == "waveform":
        shape = [1, info.segment_samples, c]
        return {"inputs": {"waveform": shape}, "outputs": {t: shape for t in info.targets}}
    shape = [1, info.frames, info.bins, 2 * c]
    return {"inputs": {"spectrum": shape}, "outputs": {t: shape for t in info.targets}}


def _kept_artifacts(out_dir: str, section: dict) -> dict:
    """Entries of an existing ``export.json`` made from the same model
    description (``section``) whose files are still there."""
    try:
        with open(os.path.join(out_dir, EXPORT_FILE)) as f:
            old = json.load(f)
    except (OSError, json.JSONDecodeError):
        return {}
    if old.get("model") != section:
        return {}
    return {k: v for k, v in old.get("artifacts", {}).items()
            if os.path.exists(os.path.join(out_dir, k))}


def _check_choices(values: Sequence[str], choices: Sequence[str], what: str) -> None:
    unknown = [v for v in values if v not in choices]
    if unknown or not values:
        raise ExportError(f"unknown {what}(s) {unknown or values}; choose from {list(choices)}")


# -- frozen backbone -----------------------------------------------------------------------

def heads_model(model):
    """A functional Keras model ``features (batch, frames, K, N) ->
    {target: packed mask}`` sharing ``model``'s heads."""
    import keras

    features = keras.Input((None, model.backbone.num_bands, model.feature_dim), name="features")
    return keras.Model(features, {t: model.heads[t](features) for t in model.targets},
                       name="heads")


def export_backbone(model, out_dir: str, *, source: Optional[str] = None,
                    config: Optional[dict] = None, probe: Optional[ParityProbe] = None,
                    use_cudnn="auto") -> str:
    """Writes the backbone and the heads separately.

    Files: ``backbone.keras`` (a :class:`Backbone`; ``use_cudnn`` as given,
    for training on top of it), ``heads.keras``, ``backbone_savedmodel/``
    (``serving_default``: ``spectrum (batch, frames, bins, C*2)`` ->
    ``{"features": (batch, frames, K, N)}``) and ``heads_savedmodel/``
    (``serving_default``: ``features`` -> ``{target: mask}``).

    Returns:
      ``out_dir``.
    """
    import tensorflow as tf

    from bsrnn_tf.models.backbone import Backbone

    ensure_writable(out_dir)
    trainable = Backbone.from_config(dict(model.backbone.get_config(), use_cudnn=use_cudnn))
    trainable.build()
    _copy_weights(model.backbone, trainable)
    atomic_save(os.path.join(out_dir, "backbone.keras"), trainable.save)
    heads = heads_model(model)
    atomic_save(os.path.join(out_dir, "heads.keras"), heads.save)
    bins, c = model.n_fft // 2 + 1, model.audio_channels
    k, n = model.backbone.num_bands, model.feature_dim
    spectrum_spec = tf.TensorSpec((None, None, bins, 2 * c), tf.float32, name="spectrum")
    features_spec = tf.TensorSpec((None, None, k, n), tf.float32, name="features")
    _write_archive(model.backbone, lambda spectrum: {"features": model.backbone(
        spectrum, training=False)}, spectrum_spec, os.path.join(out_dir, "backbone_savedmodel"))
    _write_archive(heads, lambda features: heads(features), features_spec,
                   os.path.join(out_dir, "heads_savedmodel"))
    _write_json(os.path.join(out_dir, CONFIG_FILE), config or {"model": model.model_config})
    export = {**_provenance("backbone", source),
              "model": _model_section(model, model.segment_samples),
              "band_ranges": [list(r) for r in model.band_ranges],
              "signatures": {"backbone_savedmodel": {"inputs": {"spectrum": [-1, -1, bins, 2 * c]},
                                                     "outputs": {"features": [-1, -1, k, n]}},
                             "heads_savedmodel": {"inputs": {"features": [-1, -1, k, n]},
                                                  "outputs": {t: [-1, -1, bins, 2 * c]
                                                              for t in model.targets}}},
              "files": {f: _path_size(os.path.join(out_dir, f)) for f in
                        ("backbone.keras", "heads.keras", "backbone_savedmodel",
                         "heads_savedmodel")}}
    if probe is not None:
        export["parity_vs_keras"] = _backbone_parity(model, out_dir, probe)
    _write_json(os.path.join(out_dir, EXPORT_FILE), export)
    return out_dir


def _write_archive(tracked, fn: Callable, spec, path: str) -> None:
    import keras

    if os.path.exists(path):
        shutil.rmtree(path)
    archive = keras.export.ExportArchive()
    archive.track(tracked)
    archive.add_endpoint("serving_default", fn, [spec])
    archive.write_out(path, verbose=False)


def _path_size(path: str) -> int:
    return directory_size(path) if os.path.isdir(path) else os.path.getsize(path)


def _backbone_parity(model, out_dir: str, probe: ParityProbe) -> dict:
    """Features and masks of the exported pieces against the Keras model on
    the probe's random chunks."""
    import tensorflow as tf

    spectrum = model.spectrum(probe.random)
    features = model.backbone(spectrum, training=False)
    masks = model.masks(spectrum, training=False)
    loaded = tf.saved_model.load(os.path.join(out_dir, "backbone_savedmodel"))
    got_features = loaded.signatures["serving_default"](spectrum=spectrum)["features"]
    heads = tf.saved_model.load(os.path.join(out_dir, "heads_savedmodel"))
    got_masks = heads.signatures["serving_default"](features=features)
    return {"backbone_savedmodel": error_figures({"features": features.numpy()},
                                                 {"features": got_features.numpy()}),
            "heads_savedmodel": error_figures({t: v.numpy() for t, v in masks.items()},
                                              {t: got_masks[t].numpy() for t in masks})}


def separator_from_backbone(path: str, targets: Sequence[str], freeze: bool = True):
    """A new :class:`Separator` on an exported backbone, for training heads.

    Args:
      path: a backbone export directory (or its ``backbone.keras``).
      targets: the new heads (untrained).
      freeze: make the backbone non-trainable.
    """
    import keras

    import bsrnn_tf.layers  # noqa: F401  (registers the custom objects)
    from bsrnn_tf.models.backbone import Backbone
    from bsrnn_tf.models.separator import Separator

    directory = os.path.dirname(os.path.abspath(path)) if path.endswith(".keras") else path
    keras_file = os.path.join(directory, "backbone.keras")
    export_file = os.path.join(directory, EXPORT_FILE)
    if not (os.path.exists(keras_file) and os.path.exists(export_file)):
        raise ExportError(f"{path}: not a backbone export (needs backbone.keras and export.json)")
    backbone = keras.saving.load_model(keras_file, safe_mode=True)
    if not isinstance(backbone, Backbone):
        raise ExportError(f"{keras_file}: holds a {type(backbone).__name__}, not a Backbone")
    with open(export_file) as f:
        info = json.load(f)["model"]
    model_config = dict(_read_optional_json(os.path.join(directory, CONFIG_FILE))
                        .get("model") or {})
    if model_config:
        model_config["targets"] = list(targets)
    model = Separator(backbone.band_ranges, targets, feature_dim=backbone.feature_dim,
                      num_layers=backbone.num_layers, mlp_ratio=info["mlp_ratio"],
                      audio_channels=backbone.audio_channels, sample_rate=info["sample_rate"],
                      n_fft=info["n_fft"], hop_length=info["hop_length"],
                      segment_samples=info["model_segment_samples"],
                      standardize=backbone.standardize, use_cudnn=backbone.use_cudnn,
                      norm=backbone.norm, model_config=model_config)
    model.build()
    _copy_weights(backbone, model.backbone)
    model.freeze_backbone(freeze)
    return model


def _read_optional_json(path: str) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError):
        return {}


# -- everything at once ----------------------------------------------------------------------

def export_model(model_path: str, out_dir: str, formats: Sequence[str] = FORMATS,
                 variants: Sequence[str] = VARIANTS,
                 quantizations: Sequence[str] = QUANTIZATIONS,
                 segment_seconds: Optional[float] = None, name: Optional[str] = None,
                 parity: bool = True, num_threads: Optional[int] = 1,
                 log: Callable[[str], None] = lambda _: None,
                 overwrite: bool = False) -> dict:
    """Exports a trained model in the requested formats (layout: module
    docstring). Nothing is created when the model cannot be loaded.

    Args:
      model_path: ``.keras`` file or run directory.
      out_dir: export root.
      formats: any of :data:`FORMATS`.
      variants, quantizations: TFLite variants and quantizations.
      segment_seconds: fixed chunk length (default: the model's segment).
      name: TF Serving model name (default :func:`default_name`).
      parity: measure and record parity against the Keras model.
      overwrite: replace TFLite files and ``backbone/`` of an earlier export
        (else an :class:`ExportError` names them; SavedModels get a new
        version either way).
    Returns:
      ``{"savedmodel": version dir, "tflite": [files], "backbone": dir}``
      for the formats exported.
    """
    _check_choices(formats, FORMATS, "format")
    _check_choices(variants, VARIANTS, "variant")
    _check_choices(quantizations, QUANTIZATIONS, "quantization")
    model, config = load_for_export(model_path)
    segment = segment_samples_for(model, segment_seconds)
    name = name or default_name(model_path)
    if not overwrite:
        _refuse_overwrite(out_dir, formats, name, variants, quantizations)
    ensure_writable(out_dir)
    probe = None
    if parity:
        log("computing Keras reference outputs")
        probe = ParityProbe(KerasBackend(model_path, model=model, segment_samples=segment))
    common = {"source": model_path, "config": config, "probe": probe}
    results = {}
    if "savedmodel" in formats:
        log("writing SavedModel")
        results["savedmodel"] = export_savedmodel(
            model, os.path.join(out_dir, "serving", name), segment, **common)
    if "tflite" in formats:
        results["tflite"] = export_tflite(model, os.path.join(out_dir, "tflite"), name, variants,
                                          quantizations, segment, num_threads=num_threads,
                                          log=log, **common)
    if "backbone" in formats:
        log("writing backbone and heads")
        original = (config.get("model") or {}).get("use_cudnn", "auto")
        results["backbone"] = export_backbone(model, os.path.join(out_dir, "backbone"),
                                              use_cudnn=original, **common)
    return results
