"""Real-time separation with a causal model, one hop at a time.

A causal :class:`~bsrnn_tf.models.Separator` (``model.causal``, preset
``cpu-stream``) is run as a stateful step: each call takes one hop of
``hop_length`` new samples (stereo) and the state, and returns that hop's
stems and the new state. The frames are those of the causal STFT framing
(:func:`bsrnn_tf.layers.stft.causal_padding`): the input buffer starts as
``n_fft - hop`` zeros, so call ``t`` completes frame ``t``; its inverse is
overlap-added onto the tail, and the first ``hop`` samples of the sum, which
no later frame touches, are divided by the steady-state window envelope and
returned. Fed a whole song hop by hop (then ``n_fft - hop`` samples of zeros
to flush), the stream equals the offline model on the song, delayed by
``n_fft - hop`` samples (:func:`stream_song` removes that delay).

**Latency.** Output sample ``n`` needs the hop that completes the last frame
covering it: at most ``n_fft`` samples of algorithmic latency (one hop of
buffering plus ``n_fft - hop`` of overlap; no lookahead beyond the window):
46.4 ms at n_fft 2048 and 23.2 ms at n_fft 1024, 44.1 kHz
(:func:`algorithmic_latency`), plus the compute time of one call.

**State layout** (:func:`state_layout`): the step's arguments after
``audio``, in this order (the SavedModel function's order; a TFLite caller
addresses the signature's tensors by these names, their indices are the
converter's); each output of the same name is the next call's input, and the
initial state is all zeros:

=============  ======================================  ==============================
name           shape                                   what
=============  ======================================  ==============================
audio          (1, hop, C)                             the new hop (input only)
stft_buffer    (1, n_fft - hop, C)                     the last n_fft - hop input samples
istft_tail     (1, T, n_fft - hop, C)                  overlap-add tail per target
lstm_h         (L, K, H)                               time-LSTM h per block and band
lstm_c         (L, K, H)                               time-LSTM c per block and band
norm_sum       (1, 1 + L + T, K)                       cumulative norms only: running sums
norm_sumsq     (1, 1 + L + T, K)                       cumulative norms only: running
                                                       sums of squares
norm_frames    (1,)                                    cumulative norms only: frames seen
stems          (1, T, hop, C)                          that hop's stems (output only)
=============  ======================================  ==============================

``C`` channels, ``T`` targets (in the model's order, also in the TFLite
metadata), ``L`` blocks, ``K`` bands, ``H`` time-LSTM units (3 x feature_dim).

The ``norm_*`` tensors exist only for a model with ``norm="cumulative"``
(:mod:`bsrnn_tf.layers.norm`); a ``norm="frame"`` model's layout is
:data:`STATE_NAMES` alone, as before the cumulative norm existed. They hold the running statistics of every norm that pools
over frames, one row each: row 0 the band split, rows ``1..L`` the time
norm of each block, rows ``L + 1..L + T`` the mask heads in target order;
per band, the sum and the sum of squares of every entry normalised so far
(float32). The entry count of a row and band is ``norm_frames`` times the
entries of one frame (the band's bins x 2C for the band split, N for the
others), so one frame counter serves all of them (exact in float32 up to
2**24 frames, about 54 hours at hop 512 and 44.1 kHz).
"""

from __future__ import annotations

import time
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple

import numpy as np

STATE_NAMES = ("stft_buffer", "istft_tail", "lstm_h", "lstm_c")
# The running statistics of a cumulative-norm model, after STATE_NAMES.
NORM_STATE_NAMES = ("norm_sum", "norm_sumsq", "norm_frames")
SIGNATURE = "stream"


class StreamError(ValueError):
    """A model or file cannot be streamed; the message says why."""


def check_streamable(model, where: str = "model") -> None:
    """Raises :class:`StreamError` unless ``model`` is a causal separator."""
    if not getattr(model, "causal", False):
        raise StreamError(f"{where} is not a causal (streaming) model: its time BLSTMs look "
                          f"at the whole chunk; train one with --preset cpu-stream "
                          f"(model.causal; --norm frame or cumulative)")


def algorithmic_latency(n_fft: int, hop_length: int, sample_rate: int) -> dict:
    """The stream's algorithmic latency (compute time excluded).

    Returns:
      ``{"samples": n_fft, "ms": ..., "hop_ms": ..., "output_delay_samples":
      n_fft - hop}``: the worst case from a sample's arrival to its
      separated sample's availability is one hop of buffering plus the
      ``n_fft - hop`` samples of overlap still to come.
    """
    return {"samples": n_fft, "ms": 1000.0 * n_fft / sample_rate,
            "hop_samples": hop_length, "hop_ms": 1000.0 * hop_length / sample_rate,
            "output_delay_samples": n_fft - hop_length}


def state_layout(model) -> List[Tuple[str, tuple]]:
    """``[(name, shape)]`` of the state: :data:`STATE_NAMES`, then for a
    cumulative-norm model :data:`NORM_STATE_NAMES` (module docstring)."""
    c, t = model.audio_channels, len(model.targets)
    overlap = model.n_fft - model.hop_length
    blocks = model.backbone.blocks
    units = blocks[0].time_units
    k = model.backbone.num_bands
    layout = [("stft_buffer", (1, overlap, c)), ("istft_tail", (1, t, overlap, c)),
              ("lstm_h", (len(blocks), k, units)), ("lstm_c", (len(blocks), k, units))]
    if model.norm == "cumulative":
        rows = 1 + len(blocks) + t  # band split, each block's time norm, each head
        layout += list(zip(NORM_STATE_NAMES, [(1, rows, k), (1, rows, k), (1,)]))
    return layout


def initial_state(layout) -> Dict[str, np.ndarray]:
    """Zeros for every entry of a :func:`state_layout`."""
    return {name: np.zeros(shape, np.float32) for name, shape in layout}


def state_names(layout) -> List[str]:
    """The names of a :func:`state_layout`, in call order."""
    return [name for name, _ in layout]


def step_function(model, istft_method: str = "irfft"):
    """The step as a TF function of ``(audio, *state)``, the state in
    :func:`state_layout` order (``stft_buffer, istft_tail, lstm_h, lstm_c``
    and for a cumulative-norm model ``norm_sum, norm_sumsq, norm_frames``),
    returning ``{"stems", *state}`` (module docstring); trace it with fixed
    shapes (:func:`input_signature`). ``istft_method``: ``"rfft"`` for
    TFLite (see :func:`bsrnn_tf.layers.stft.istft`)."""
    import tensorflow as tf

    from bsrnn_tf.layers.mask_head import apply_mask
    from bsrnn_tf.layers.stft import frames_spectrum, steady_envelope, windowed_frames

    check_streamable(model)
    n_fft, hop = model.n_fft, model.hop_length
    inverse_envelope = (1.0 / steady_envelope(n_fft, hop)).astype(np.float32)
    names = state_names(state_layout(model))
    cumulative = NORM_STATE_NAMES[0] in names
    blocks = len(model.backbone.blocks)

    def step(audio, *state):
        state = dict(zip(names, state))
        frame = tf.concat([state["stft_buffer"], audio], axis=1)  # (1, n_fft, C)
        spectrum = frames_spectrum(frame, n_fft, hop)  # (1, 1, bins, 2C)
        lstm = [(state["lstm_h"][i], state["lstm_c"][i]) for i in range(blocks)]
        norms = _norm_rows(state) if cumulative else [None] * (1 + blocks + len(model.targets))
        features, lstm, backbone_norms = model.backbone.step(spectrum, lstm, norms[:1 + blocks])
        head_norms, frames = [], []
        for t, norm_state in zip(model.targets, norms[1 + blocks:]):
            mask, norm_state = model.heads[t].step(features, norm_state)
            head_norms.append(norm_state)
            frames.append(windowed_frames(apply_mask(mask, spectrum), n_fft,
                                          istft_method)[:, :, 0])
        frames = tf.transpose(tf.stack(frames, axis=1), [0, 1, 3, 2])  # (1, T, n_fft, C)
        summed = frames + tf.pad(state["istft_tail"], [[0, 0], [0, 0], [0, hop], [0, 0]])
        stems = summed[:, :, :hop] * tf.constant(inverse_envelope)[:, None]
        out = {"stems": stems, "stft_buffer": frame[:, hop:], "istft_tail": summed[:, :, hop:],
               "lstm_h": tf.stack([h for h, _ in lstm]),
               "lstm_c": tf.stack([c for _, c in lstm])}
        if cumulative:
            rows = backbone_norms + head_norms
            out.update(zip(NORM_STATE_NAMES, (tf.stack([r[0] for r in rows], axis=1),
                                              tf.stack([r[1] for r in rows], axis=1),
                                              rows[0][2])))
        return out

    return step


def _norm_rows(state: dict) -> list:
    """The per-norm :data:`~bsrnn_tf.layers.norm.NormState` of the rows of
    ``norm_sum`` / ``norm_sumsq`` (module docstring), each sharing the frame
    counter."""
    total, total_sq, frames = (state[name] for name in NORM_STATE_NAMES)
    return [(total[:, r], total_sq[:, r], frames) for r in range(total.shape[1])]


def input_signature(model) -> list:
    """``tf.TensorSpec`` of ``audio`` and the state, in call order."""
    import tensorflow as tf

    specs = [tf.TensorSpec((1, model.hop_length, model.audio_channels), tf.float32, name="audio")]
    return specs + [tf.TensorSpec(shape, tf.float32, name=name)
                    for name, shape in state_layout(model)]


def stream_hops(step: Callable[[np.ndarray, dict], Tuple[np.ndarray, dict]],
                hops: Iterable[np.ndarray], hop_length: int, n_fft: int,
                state: dict) -> Iterator[np.ndarray]:
    """Feeds hops to a stream as they come and yields each call's stems.

    Args:
      step: ``(hop (1, hop, C), state) -> (stems (1, T, hop, C), new state)``.
      hops: arrays ``(<= hop, C)``; a short one (the last) is padded with zeros.
      state: the initial state (:func:`initial_state`).
    Yields:
      ``(T, hop, C)`` per call; after the last hop, zeros flush the
      ``n_fft - hop`` samples still in the tail. Output sample ``k`` is the
      separated input sample ``k - (n_fft - hop)``.
    """
    channels = None
    for hop in hops:
        channels = hop.shape[1]
        if len(hop) < hop_length:
            hop = np.concatenate([hop, np.zeros((hop_length - len(hop), channels), hop.dtype)])
        stems, state = step(np.asarray(hop, np.float32)[None], state)
        yield np.asarray(stems)[0]
    if channels is None:
        return
    silence = np.zeros((1, hop_length, channels), np.float32)
    for _ in range(-(-(n_fft - hop_length) // hop_length)):
        stems, state = step(silence, state)
        yield np.asarray(stems)[0]


def stream_song(step: Callable[[np.ndarray, dict], Tuple[np.ndarray, dict]],
                audio: np.ndarray, hop_length: int, n_fft: int, state: dict) -> np.ndarray:
    """Runs a whole song ``(samples, C)`` through a stream hop by hop
    (:func:`stream_hops`).

    Returns:
      ``(T, samples, C)``: the stems without the stream's ``n_fft - hop``
      samples of delay (aligned as the offline model aligns them).
    """
    hops = (audio[i:i + hop_length] for i in range(0, len(audio), hop_length))
    out = np.concatenate(list(stream_hops(step, hops, hop_length, n_fft, state)), axis=1)
    delay = n_fft - hop_length
    return out[:, delay:delay + len(audio)]


class KerasStream:
    """A causal Keras separator's step as a ``tf.function`` (the reference
    for the exported graphs): ``stream(hop, state) -> (stems, state)``."""

    def __init__(self, model):
        import tensorflow as tf

        check_streamable(model)
        self.model = model
        self.targets = list(model.targets)
        self.sample_rate, self.n_fft, self.hop_length = (model.sample_rate, model.n_fft,
                                                         model.hop_length)
        self.channels = model.audio_channels
        self.layout = state_layout(model)
        self._fn = tf.function(step_function(model), input_signature=input_signature(model))

    def initial_state(self) -> dict:
        return initial_state(self.layout)

    def __call__(self, audio: np.ndarray, state: dict):
        names = state_names(self.layout)
        out = self._fn(audio, *(state[name] for name in names))
        return out["stems"].numpy(), {name: out[name].numpy() for name in names}


class TFLiteStream:
    """An exported streaming ``.tflite`` (:mod:`bsrnn_tf.deploy.stream`) run
    by ``ai_edge_litert``: ``stream(hop, state) -> (stems, state)``."""

    def __init__(self, path: str, num_threads: Optional[int] = 1):
        from bsrnn_tf.console import open_tflite_interpreter
        from bsrnn_tf.inference.backends import read_tflite_metadata

        metadata = read_tflite_metadata(path)
        if metadata.get("variant") != SIGNATURE:
            raise StreamError(f"{path}: not a streaming TFLite graph (variant "
                              f"{metadata.get('variant', 'waveform')!r}); export one with "
                              f"export/export.py --format stream from a causal model")
        self.path = path
        self.metadata = metadata
        self.targets = list(metadata["targets"])
        self.sample_rate, self.n_fft, self.hop_length = (metadata["sample_rate"],
                                                         metadata["n_fft"],
                                                         metadata["hop_length"])
        self.channels = metadata["channels"]
        self.layout = [(name, tuple(shape)) for name, shape in metadata["state"]]
        try:
            self._interpreter = open_tflite_interpreter(path, num_threads)
            self._runner = self._interpreter.get_signature_runner(SIGNATURE)
        except (ValueError, RuntimeError) as e:
            raise StreamError(f"{path}: cannot open TFLite model ({e})") from e

    def initial_state(self) -> dict:
        return initial_state(self.layout)

    def __call__(self, audio: np.ndarray, state: dict):
        out = self._runner(audio=audio, **state)
        return out["stems"], {name: out[name] for name in state_names(self.layout)}


def open_stream(path: str, num_threads: Optional[int] = 1):
    """A :class:`TFLiteStream` for a ``.tflite`` file, else a
    :class:`KerasStream` for a causal ``.keras`` file or run directory."""
    if path.endswith(".tflite"):
        return TFLiteStream(path, num_threads)
    from bsrnn_tf.models.io import load_separator

    model = load_separator(path)
    check_streamable(model, path)
    return KerasStream(model)


def stream_metadata(model) -> dict:
    """What a caller of the exported step needs (embedded in the TFLite file
    and written to ``export.json``): the inputs, outputs and state list the
    ``norm_*`` tensors of a cumulative-norm model too."""
    layout = state_layout(model)
    return {"variant": SIGNATURE, "signature": SIGNATURE, "sample_rate": model.sample_rate,
            "channels": model.audio_channels, "targets": list(model.targets),
            "n_fft": model.n_fft, "hop_length": model.hop_length,
            "segment_samples": model.hop_length,
            "norm": model.norm,
            "inputs": [["audio", [1, model.hop_length, model.audio_channels]]] +
                      [[n, list(s)] for n, s in layout],
            "outputs": [["stems", [1, len(model.targets), model.hop_length,
                                   model.audio_channels]]] +
                       [[n, list(s)] for n, s in layout],
            "state": [[n, list(s)] for n, s in layout],
            "latency": algorithmic_latency(model.n_fft, model.hop_length, model.sample_rate)}


class TimedStep:
    """Wraps a step and records, per call, the wall time and the CPU time of
    the calling thread (seconds; with one interpreter thread the TFLite
    graph runs in the caller, so the CPU time is its compute, without the
    time other processes took the core; a TF function runs its ops on
    TensorFlow's thread pools, so for :class:`KerasStream` it undercounts)."""

    def __init__(self, step):
        self.step = step
        self.times: List[float] = []
        self.cpu_times: List[float] = []

    def __call__(self, audio, state):
        start, cpu = time.perf_counter(), time.thread_time()
        out = self.step(audio, state)
        self.cpu_times.append(time.thread_time() - cpu)
        self.times.append(time.perf_counter() - start)
        return out

    def clear(self) -> None:
        self.times.clear()
        self.cpu_times.clear()

    def summary(self, hop_seconds: float, skip: int = 0) -> dict:
        """p50, p99 and max per hop (ms) of the wall time and of the CPU
        time over the calls after the first ``skip``, and their p99 as a
        fraction of the hop's duration."""
        out = {"hops": len(self.times) - skip, "hop_ms": 1000.0 * hop_seconds}
        for prefix, values in (("", self.times), ("cpu_", self.cpu_times)):
            ms = np.asarray(values[skip:] or values) * 1000.0
            p50, p99 = np.percentile(ms, [50, 99])
            out.update({f"{prefix}p50_ms": float(p50), f"{prefix}p99_ms": float(p99),
                        f"{prefix}max_ms": float(ms.max()),
                        f"{prefix}p99_over_hop": float(p99 / (1000.0 * hop_seconds))})
        return out
