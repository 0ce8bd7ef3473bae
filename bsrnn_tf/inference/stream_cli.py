"""``bsrnn-tf stream``: a causal model run hop by hop on a file or on raw PCM
from standard input, as a device would run it (:mod:`bsrnn_tf.inference.streaming`)::

    bsrnn-tf stream song.wav -m export/stream/cpu-stream-stream-dynamic-int8.tflite -o separated
    arecord -f FLOAT_LE -c 2 -r 44100 -t raw | \\
        bsrnn-tf stream - -m model.tflite --stdout vocals | aplay -f FLOAT_LE -c 2 -r 44100

Writes the stems (``OUT/<track>/<target>.wav``; for standard input once it
ends) and reports the algorithmic latency and the per-hop compute time
(p50, p99, max) against the hop's duration on standard error.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Iterator

import numpy as np

from bsrnn_tf.audio import AudioError, from_stereo, load_audio, resample, save_audio, to_stereo
from bsrnn_tf.inference.streaming import (StreamError, TimedStep, algorithmic_latency, open_stream,
                                          stream_hops)

RAW_FORMATS = {"f32le": np.dtype("<f4"), "s16le": np.dtype("<i2")}
NAME = "bsrnn-tf stream"


def register_cli(subparsers) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "stream", help="separate hop by hop with a causal model (real-time path)",
        description="Run a causal model's streaming graph hop by hop on an audio file or on "
                    "raw PCM from standard input (-), write the stems and report the latency "
                    "and the per-hop compute time.")
    p.add_argument("input", help="audio file, or - for raw interleaved PCM on standard input "
                                 "at the model's rate")
    p.add_argument("-m", "--model", required=True,
                   help="a streaming .tflite (export/export.py --format stream), or a causal "
                        ".keras file or run directory (run as a TF function)")
    p.add_argument("-o", "--out", default="separated", help="output folder (default separated)")
    p.add_argument("--name", help="track folder under OUT (default: the input's name; "
                                  "stdin for -)")
    p.add_argument("--raw-format", default="f32le", choices=sorted(RAW_FORMATS),
                   help="sample format of standard input (default f32le)")
    p.add_argument("--channels", type=int, default=2, choices=[1, 2],
                   help="channels of standard input (default 2; mono is duplicated)")
    p.add_argument("--stdout", metavar="TARGET",
                   help="also write TARGET's stem to standard output as it is produced, raw "
                        "PCM in --raw-format (the stream's delay of n_fft - hop samples kept)")
    p.add_argument("--gain-db", type=float, default=0.0,
                   help="gain applied to the input (the model was trained on mixtures at "
                        "-20 dBFS RMS; a stream cannot measure the song first)")
    p.add_argument("--threads", type=int, default=1, help="TFLite interpreter threads")
    p.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    p.set_defaults(func=_cli_stream)
    return p


def _error(message: str) -> int:
    print(f"{NAME}: error: {message}", file=sys.stderr)
    return 2


def _cli_stream(args: argparse.Namespace) -> int:
    try:
        stream = open_stream(args.model, args.threads)
    except (StreamError, ValueError) as e:  # BackendError, ModelLoadError
        return _error(str(e))
    if args.stdout and args.stdout not in stream.targets:
        return _error(f"--stdout {args.stdout}: the model's targets are {stream.targets}")
    track = args.name or ("stdin" if args.input == "-" else
                          os.path.splitext(os.path.basename(args.input))[0])
    outputs = {t: os.path.join(args.out, track, f"{t}.wav") for t in stream.targets}
    existing = [p for p in outputs.values() if os.path.exists(p)]
    if existing and not args.overwrite:
        return _error(f"{existing[0]} already exists (use --overwrite to replace it)")
    try:
        hops = _Input(args, stream)
    except AudioError as e:
        return _error(str(e))
    timed = TimedStep(stream)
    sink = _raw_sink(args, stream.targets.index(args.stdout)) if args.stdout else None
    pieces = []
    try:
        for stems in stream_hops(timed, hops, stream.hop_length, stream.n_fft,
                                 stream.initial_state()):
            pieces.append(stems)
            if sink is not None:
                sink(stems)
    except KeyboardInterrupt:
        print(f"{NAME}: interrupted after {len(pieces)} hops; nothing written", file=sys.stderr)
        return 130
    if not pieces:
        return _error(f"{args.input}: no audio")
    delay = stream.n_fft - stream.hop_length
    samples, rate, channels = hops.samples, hops.rate, hops.channels
    gain = 10.0 ** (-args.gain_db / 20.0)
    stems = np.concatenate(pieces, axis=1)[:, delay:delay + samples] * gain
    try:
        for i, (target, path) in enumerate(outputs.items()):
            audio = from_stereo(resample(stems[i], stream.sample_rate, rate), channels)
            save_audio(path, audio, rate, overwrite=args.overwrite)
    except AudioError as e:
        return _error(str(e))
    _report(stream, timed, samples, args.out, track)
    return 0


class _Input:
    """The input as hops ``(<= hop, 2)`` float32 at the model's rate (times
    the gain); ``samples`` counts what was read, ``rate`` and ``channels``
    are the input's own."""

    def __init__(self, args, stream):
        self.hop, self.gain = stream.hop_length, 10.0 ** (args.gain_db / 20.0)
        self.samples, self.audio = 0, None
        if args.input == "-":
            self.dtype, self.channels = RAW_FORMATS[args.raw_format], args.channels
            self.rate = stream.sample_rate
        else:
            audio, self.rate = load_audio(args.input)
            self.channels = min(audio.shape[1], 2)
            self.audio = to_stereo(resample(audio, self.rate, stream.sample_rate)) * self.gain

    def __iter__(self) -> Iterator[np.ndarray]:
        if self.audio is not None:
            for i in range(0, len(self.audio), self.hop):
                self.samples = min(i + self.hop, len(self.audio))
                yield self.audio[i:i + self.hop]
            return
        frame = self.channels * self.dtype.itemsize
        scale = 1.0 / 32768.0 if self.dtype.kind == "i" else 1.0
        size = self.hop * frame
        while True:
            data = sys.stdin.buffer.read(size)
            block = np.frombuffer(data[:len(data) - len(data) % frame], self.dtype)
            if len(block):
                block = to_stereo(block.astype(np.float32).reshape(-1, self.channels) * scale)
                self.samples += len(block)
                yield block * self.gain
            if len(data) < size:
                return


def _raw_sink(args, index: int):
    """Writes one target's stem of each call to standard output as raw PCM."""
    dtype, out = RAW_FORMATS[args.raw_format], sys.stdout.buffer
    gain = 10.0 ** (-args.gain_db / 20.0)
    channels = args.channels if args.input == "-" else 2

    def write(stems: np.ndarray) -> None:
        audio = from_stereo(stems[index] * gain, channels)
        if dtype.kind == "i":
            audio = np.clip(np.round(audio * 32767.0), -32768, 32767)
        out.write(np.ascontiguousarray(audio, dtype).tobytes())
        out.flush()

    return write


def _report(stream, timed: TimedStep, samples: int, out: str, track: str) -> None:
    latency = algorithmic_latency(stream.n_fft, stream.hop_length, stream.sample_rate)
    summary = timed.summary(stream.hop_length / stream.sample_rate, skip=min(10, len(timed.times) // 10))
    print(f"{NAME}: {samples / stream.sample_rate:.2f} s in {len(timed.times)} hops of "
          f"{latency['hop_samples']} samples ({latency['hop_ms']:.2f} ms); stems in "
          f"{os.path.join(out, track)}", file=sys.stderr)
    print(f"{NAME}: algorithmic latency {latency['samples']} samples = {latency['ms']:.1f} ms "
          f"(n_fft {stream.n_fft}: one hop of buffering + {latency['output_delay_samples']} "
          f"samples of overlap), plus one hop's compute", file=sys.stderr)
    print(f"{NAME}: compute per hop p50 {summary['p50_ms']:.2f} ms, p99 {summary['p99_ms']:.2f} "
          f"ms, max {summary['max_ms']:.2f} ms (wall); CPU time p50 {summary['cpu_p50_ms']:.2f} "
          f"ms, p99 {summary['cpu_p99_ms']:.2f} ms; wall p99 = "
          f"{100 * summary['p99_over_hop']:.0f}% of the hop", file=sys.stderr)
