"""Speed of the BSRNN model on this machine, in one run.

For each preset (``paper``, ``small``): the analytic FLOP count per second of
audio, forward time of a 3 s stereo chunk at batch 1 and 4, real-time factor,
achieved GFLOP/s against the float32 matmul peak measured in the same run,
the training step at batch 2, peak memory, and the variants (naive per-band
layers, the Keras LSTM path instead of the fused kernel, XLA, bfloat16) as
ratios against the naive baseline.

    python benchmarks/model.py                 # both presets, table + JSON
    python benchmarks/model.py --presets small --repeats 3
    python benchmarks/model.py --presets small@L8   # N = 64, L = 8: the PyTorch "small"
    python benchmarks/model.py --onednn 0 1    # each preset with oneDNN off, then on
    python benchmarks/model.py --train-memory  # training step: stored vs recomputed blocks
    python benchmarks/model.py --precision     # SDR of float16 / bfloat16 against float32

``--train-memory`` measures only the training step at batch 2: with every
block's activations kept for the backward pass (the default), with
``Backbone.recompute_blocks`` (``fit.py --recompute-blocks``), and with the
Keras LSTM instead of the fused kernel; each in its own process, the order
reversed every other round: step time and peak memory, written to
``results/train_memory.json``.

Each preset runs in its own process so its peak memory is its own.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = os.path.dirname(os.path.abspath(__file__))

SECONDS = 3.0


# ----------------------------------------------------------------- FLOPs

def flop_breakdown(model, samples: int) -> dict:
    """Analytic FLOPs (a multiply-add counts 2) of one forward pass over one
    example of ``samples`` samples, by component.

    Per (frame, band) of each band-sequence block and each of its two BLSTMs:
    layer norm ~8N, two directions of an LSTM with H = 2N units
    (input and recurrent matmuls 2*4H*(N+H), gates ~12H), the FC 2*2H*N and
    the residual N.
    """
    frames = 1 + samples // model.hop_length
    bins = model.n_fft // 2 + 1
    channels = model.audio_channels
    per_bin = 2 * channels
    k = len(model.band_ranges)
    n = model.feature_dim
    h = 2 * n
    hidden = model.mlp_ratio * n
    fft = 2.5 * model.n_fft * math.log2(model.n_fft)  # real FFT of one frame
    out = {"stft": frames * channels * (fft + 4 * model.n_fft)}
    out["band_split"] = frames * (8 * bins * per_bin + 2 * bins * per_bin * n + k * n)
    lstm = 2 * (2 * 4 * h * (n + h) + 12 * h)
    rnn = 8 * n + lstm + 2 * 2 * h * n + n
    for i in range(model.num_layers):
        out[f"block{i}.time_blstm"] = frames * k * rnn
        out[f"block{i}.band_blstm"] = frames * k * rnn
    head = (k * (8 * n + 2 * n * hidden + 4 * hidden) + 2 * hidden * bins * per_bin * 2
            + bins * per_bin * 6 + bins * channels * 6)
    istft = channels * (fft + 6 * model.n_fft)
    for t in model.targets:
        out[f"head.{t}"] = frames * head
        out[f"istft.{t}"] = frames * istft
    return out


# ------------------------------------------------------------- measuring

def median_seconds(fn, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        _block(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        _block(fn())
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def _block(result):
    import tensorflow as tf
    for value in tf.nest.flatten(result):
        if hasattr(value, "numpy"):
            value.numpy()


def matmul_peak(repeats: int = 10) -> float:
    """float32 GFLOP/s of a 2048 x 2048 matmul."""
    import tensorflow as tf
    a = tf.random.normal([2048, 2048])
    b = tf.random.normal([2048, 2048])
    fn = tf.function(lambda: tf.matmul(a, b))
    seconds = median_seconds(fn, repeats, warmup=3)
    return 2 * 2048 ** 3 / seconds / 1e9


def _song_chunk(batch: int, samples: int):
    """Music-like stereo test input: a generated song if available."""
    import numpy as np
    try:
        from bsrnn_tf.datasets.synth import render_song
        stems = render_song(7, "test", 0, max(4.0, samples / 44100 + 1))
        mix = sum(np.asarray(v, np.float32) for v in stems.values())
        mix = mix[:samples]
        return np.stack([np.roll(mix, i * 4410, axis=0) for i in range(batch)])
    except Exception:  # noqa: BLE001  (fallback: noise)
        return (np.random.default_rng(0).standard_normal((batch, samples, 2)) * 0.1).astype(
            np.float32)


def sdr(reference, estimate) -> float:
    import numpy as np
    ref = np.asarray(reference, np.float64)
    err = ref - np.asarray(estimate, np.float64)
    return float(10 * np.log10((np.sum(ref ** 2) + 1e-12) / (np.sum(err ** 2) + 1e-12)))


def bf16_supported() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def onednn_enabled():
    """Whether TensorFlow's oneDNN kernels are on in this process (None:
    cannot tell)."""
    try:
        from tensorflow.python.util import _pywrap_util_port
        return bool(_pywrap_util_port.IsMklEnabled())
    except Exception:  # noqa: BLE001
        return None


def config_for(name: str):
    """The ModelConfig of a preset name; ``small@L8`` is ``small`` with
    eight blocks."""
    from bsrnn_tf.models import preset

    config = preset(name.split("@")[0])
    if "@L" in name:
        config.num_layers = int(name.split("@L")[1])
    return config


def vocals_model(name: str):
    """``(config, samples, model)``: the preset's config, the samples of one
    ``SECONDS`` chunk, and a one-target (vocals) separator built from it."""
    from bsrnn_tf.models import build_separator

    config = config_for(name)
    return config, int(SECONDS * config.stft.sample_rate), build_separator(config,
                                                                            targets=["vocals"])


def run_preset(name: str, repeats: int, naive: bool) -> dict:
    import numpy as np
    import tensorflow as tf

    from bsrnn_tf.layers import get_lstm_implementation, lstm_implementation
    from bsrnn_tf.models import count_parameters

    config, samples, model = vocals_model(name)
    flops = flop_breakdown(model, samples)
    total = sum(flops.values())
    result = {"preset": name, "parameters": count_parameters(model),
              "bands": len(model.band_ranges), "samples": samples,
              "gflop_per_chunk": total / 1e9,
              "gflop_per_audio_second": total / 1e9 / SECONDS,
              "flops_breakdown_gflop_per_chunk": {k: v / 1e9 for k, v in flops.items()},
              "matmul_peak_gflops": matmul_peak(), "onednn": onednn_enabled(),
              "lstm_implementation": get_lstm_implementation()}
    x1 = _song_chunk(1, samples)
    x4 = _song_chunk(4, samples)
    forward = tf.function(lambda x: model(x), reduce_retracing=True)
    result["forward_b1_s"] = median_seconds(lambda: forward(x1), repeats)
    result["forward_b4_s"] = median_seconds(lambda: forward(x4), max(2, repeats // 2))
    reference = forward(x1)["vocals"].numpy()

    # The Keras LSTM path (a while loop of small ops) against the fused
    # kernel that "auto" takes on CPUs; weights are shared.
    with lstm_implementation("keras"):  # timed inside: a retrace keeps the Keras path
        keras_lstm = tf.function(lambda x: model(x), reduce_retracing=True)
        keras_out = keras_lstm(x1)["vocals"].numpy()
        result["forward_b1_keras_lstm_s"] = median_seconds(lambda: keras_lstm(x1), repeats)
    result["keras_lstm_max_rel_error"] = float(np.abs(keras_out - reference).max()
                                               / np.abs(reference).max())

    xla = tf.function(lambda x: model(x), jit_compile=True)
    try:
        result["forward_b1_xla_s"] = median_seconds(lambda: xla(x1), repeats)
        result["xla_max_rel_error"] = float(np.abs(xla(x1)["vocals"].numpy() - reference).max()
                                            / np.abs(reference).max())
    except Exception as e:  # noqa: BLE001
        result["forward_b1_xla_s"] = None
        result["xla_error"] = f"{type(e).__name__}: {str(e)[:200]}"

    if naive:
        from naive import NaiveSeparator, max_relative_error
        slow = NaiveSeparator(model)
        naive_fn = tf.function(lambda x: slow(x), reduce_retracing=True)
        with lstm_implementation("keras"):  # the baseline: no batching, no fused kernel
            naive_out = naive_fn(x1)["vocals"].numpy()
            result["forward_b1_naive_s"] = median_seconds(lambda: naive_fn(x1),
                                                          max(2, repeats // 2))
        result["naive_max_rel_error"] = max_relative_error({"vocals": reference},
                                                           {"vocals": naive_out})

    if bf16_supported():
        half_fn, result["bf16_sdr_vs_float32_db"] = reduced_precision(
            model, config, "mixed_bfloat16", x1, reference)
        result["forward_b1_bf16_s"] = median_seconds(lambda: half_fn(x1), repeats)

    result["profile_b1_ms"] = profile_forward(model, x1, repeats)
    result["train_step_b2_s"] = train_step_seconds(model, x1.repeat(2, axis=0),
                                                   max(2, repeats // 2))
    with lstm_implementation("keras"):
        result["train_step_b2_keras_lstm_s"] = train_step_seconds(
            model, x1.repeat(2, axis=0), max(2, repeats // 2))
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    _derive(result)
    return result


def profile_forward(model, x, repeats: int) -> dict:
    """Where one batch-1 forward pass spends its time: each stage timed on
    its own (graph mode, its real input), the first block's pieces standing
    for every block (they are identical). Milliseconds per stage."""
    import tensorflow as tf

    from bsrnn_tf.layers.blstm import fused_bidirectional_time_major, use_fused
    samples = x.shape[1]
    block = model.backbone.blocks[0]
    n = model.feature_dim
    width = 2 * block.hidden_ratio  # the FC layers see both LSTM directions
    spectrum = model.stft(x)
    features = model.backbone.band_split(spectrum)
    _, frames, bands, _ = features.shape

    fused = use_fused(block.time_rnn)

    def time_seq(y):  # (bands, frames, N) sequences along time (frames-major if fused)
        return (fused_bidirectional_time_major(block.time_rnn, y) if fused
                else block.time_rnn(y))

    def band_seq(y):  # (frames, bands, N) sequences along bands (bands-major if fused)
        return (fused_bidirectional_time_major(block.band_rnn, y) if fused
                else block.band_rnn(y))

    def rest(y):  # norms, transposes, the two FC layers and the residuals
        t = tf.reshape(tf.transpose(block.normalize_time(y), [0, 2, 1, 3]), [bands, frames, n])
        t = block.time_fc(tf.tile(t, [1, 1, width]))
        y = y + tf.transpose(tf.reshape(t, [1, bands, frames, n]), [0, 2, 1, 3])
        b = tf.reshape(block.normalize_band(y), [frames, bands, n])
        return y + tf.reshape(block.band_fc(tf.tile(b, [1, 1, width])), [1, frames, bands, n])

    mask = model.masks(spectrum)["vocals"]
    seq_t = tf.reshape(tf.transpose(features, [0, 2, 1, 3]), [bands, frames, n])
    seq_b = tf.reshape(features, [frames, bands, n])
    if fused:  # the fused kernel's step-major layouts
        seq_t, seq_b = tf.transpose(seq_t, [1, 0, 2]), tf.transpose(seq_b, [1, 0, 2])
    stages = {
        "stft": (model.stft, x),
        "band_split": (model.backbone.band_split, spectrum),
        "time_blstm (per block)": (time_seq, seq_t),
        "band_blstm (per block)": (band_seq, seq_b),
        "norms+fc+residual (per block)": (rest, features),
        "mask_head": (model.heads["vocals"], features),
        "mask_product+istft": (lambda m: model.istft(m * 1.0, samples), mask),
    }
    out = {}
    for name, (fn, arg) in stages.items():
        graph = tf.function(fn)
        out[name] = 1000 * median_seconds(lambda: graph(arg), repeats)
    blocks = len(model.backbone.blocks)
    out["all blocks (extrapolated)"] = blocks * sum(
        v for k, v in out.items() if "per block" in k)
    return out


def train_step_function(model, mixture):
    """One training step (forward, BSRNN loss on every target, backward,
    Adam) on the batch ``mixture`` ``(batch, samples, channels)``, as a
    callable that returns when the step is done."""
    import keras
    import tensorflow as tf

    from bsrnn_tf.training.losses import bsrnn_loss
    samples = mixture.shape[1]
    reference = mixture * 0.5
    optimizer = keras.optimizers.Adam(1e-4)
    optimizer.build(model.trainable_variables)

    @tf.function(reduce_retracing=True)
    def step(mix, ref):
        with tf.GradientTape() as tape:
            spec = model.stft(mix)
            ref_spec = model.stft(ref)
            loss = 0.0
            for est in model.estimate_spectra(spec, training=True).values():
                wave = model.istft(est, samples)
                loss += tf.reduce_mean(bsrnn_loss(est, ref_spec, wave, ref))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    return lambda: step(mixture, reference)


def train_step_seconds(model, mixture, repeats: int) -> float:
    """Median time of one :func:`train_step_function` step."""
    return median_seconds(train_step_function(model, mixture), repeats)


def reduced_precision(model, config, policy: str, x, reference):
    """``model``'s weights under a mixed-precision ``policy``: its forward
    function and the SDR of its output for ``x`` against ``reference``, the
    float32 output."""
    import tensorflow as tf

    from bsrnn_tf.models import build_separator
    half = build_separator(config, targets=list(model.targets), dtype=policy)
    half.set_weights(model.get_weights())
    fn = tf.function(lambda x: half(x), reduce_retracing=True)
    return fn, sdr(reference, fn(x)[model.targets[0]].numpy())


def run_precision(name: str) -> dict:
    """SDR of float16 and bfloat16 compute against float32, on one 3 s chunk
    of a generated song (emulated where the CPU lacks the type: accuracy
    only, no timing)."""
    config, samples, model = vocals_model(name)
    x1 = _song_chunk(1, samples)
    reference = model(x1)["vocals"].numpy()
    result = {"preset": name}
    for policy in ("mixed_float16", "mixed_bfloat16"):
        result[f"{policy}_sdr_vs_float32_db"] = reduced_precision(model, config, policy, x1,
                                                                  reference)[1]
    return result


def run_train_memory(name: str, recompute: bool, repeats: int) -> dict:
    """Training step time and peak RSS of one preset, blocks recomputed in the
    backward pass or not (one process per measurement: peak RSS only grows)."""
    from bsrnn_tf.layers import get_lstm_implementation

    _, samples, model = vocals_model(name)
    model.backbone.recompute_blocks = recompute
    x2 = _song_chunk(2, samples)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    seconds = train_step_seconds(model, x2, repeats)
    return {"preset": name, "recompute_blocks": recompute,
            "lstm_implementation": get_lstm_implementation(), "train_step_b2_s": seconds,
            "rss_before_step_mb": before,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def train_memory_table(rounds: list) -> str:
    rows = [("preset", "round", "stored: step", "stored: peak MB", "recomputed: step",
             "recomputed: peak MB", "time ratio", "peak ratio", "growth ratio",
             "Keras LSTM: step", "Keras LSTM: peak MB")]
    for r in rounds:
        s, c, k = r["stored"], r["recomputed"], r.get("keras_lstm")
        growth = ((s["peak_rss_mb"] - s["rss_before_step_mb"])
                  / max(1.0, c["peak_rss_mb"] - c["rss_before_step_mb"]))
        rows.append((r["preset"], r["round"], f"{s['train_step_b2_s']:.2f} s",
                     f"{s['peak_rss_mb']:.0f}", f"{c['train_step_b2_s']:.2f} s",
                     f"{c['peak_rss_mb']:.0f}",
                     f"{c['train_step_b2_s'] / s['train_step_b2_s']:.2f}x",
                     f"{s['peak_rss_mb'] / c['peak_rss_mb']:.2f}x", f"{growth:.2f}x",
                     f"{k['train_step_b2_s']:.2f} s" if k else "-",
                     f"{k['peak_rss_mb']:.0f}" if k else "-"))
    return markdown_table(rows)


def _derive(r: dict) -> None:
    r["rtf_b1"] = SECONDS / r["forward_b1_s"]
    r["rtf_b4"] = 4 * SECONDS / r["forward_b4_s"]
    r["gflops_b1"] = r["gflop_per_chunk"] / r["forward_b1_s"]
    r["gflops_b4"] = 4 * r["gflop_per_chunk"] / r["forward_b4_s"]
    r["peak_fraction_b1"] = r["gflops_b1"] / r["matmul_peak_gflops"]
    r["peak_fraction_b4"] = r["gflops_b4"] / r["matmul_peak_gflops"]
    if r.get("forward_b1_naive_s"):
        base = r["forward_b1_naive_s"]
        r["speedup_vs_naive"] = {k.replace("forward_", "").replace("_s", ""): base / v
                                 for k, v in r.items()
                                 if k.startswith("forward_b1") and isinstance(v, float)}
    if r.get("train_step_b2_keras_lstm_s"):
        r["train_speedup_fused_vs_keras_lstm"] = (r["train_step_b2_keras_lstm_s"]
                                                  / r["train_step_b2_s"])


# ----------------------------------------------------------------- report

def table(results: list) -> str:
    rows = [("preset", "oneDNN", "params", "GFLOP/s audio", "b1 s", "RTF b1", "b4 s", "RTF b4",
             "GFLOP/s b4", "% peak b1", "% peak b4", "naive b1 s", "Keras-LSTM b1 s", "XLA b1 s",
             "bf16 b1 s", "bf16 SDR", "train b2 s", "Keras-LSTM train b2 s", "peak MB")]
    for r in results:
        f = lambda key, fmt="{:.3f}": fmt.format(r[key]) if r.get(key) is not None else "-"  # noqa
        onednn = {True: "on", False: "off"}.get(r.get("onednn"), "?")
        rows.append((r["preset"], onednn, f"{r['parameters'] / 1e6:.1f}M",
                     f"{r['gflop_per_audio_second']:.1f}", f("forward_b1_s"), f("rtf_b1", "{:.2f}"),
                     f("forward_b4_s"), f("rtf_b4", "{:.2f}"), f("gflops_b4", "{:.0f}"),
                     f"{100 * r['peak_fraction_b1']:.0f}%", f"{100 * r['peak_fraction_b4']:.0f}%",
                     f("forward_b1_naive_s"), f("forward_b1_keras_lstm_s"),
                     f("forward_b1_xla_s"), f("forward_b1_bf16_s"),
                     f("bf16_sdr_vs_float32_db", "{:.1f}"), f("train_step_b2_s"),
                     f("train_step_b2_keras_lstm_s"), f("peak_rss_mb", "{:.0f}")))
    return markdown_table(rows)


def markdown_table(rows: list) -> str:
    """A Markdown table with aligned columns; ``rows[0]`` is the header."""
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(row, widths)) + " |"
             for row in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


class WorkerError(RuntimeError):
    """A benchmark worker process failed; the message ends with its stderr."""


def run_json_worker(command: list, label: str, env=None) -> dict:
    """Runs a benchmark worker process and returns the JSON object it prints
    on its last line of stdout."""
    out = subprocess.run(command, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise WorkerError(f"{label} failed ({out.returncode}):\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _worker_command(name: str, *options: str) -> list:
    return [sys.executable, os.path.abspath(__file__), "--worker", name, *options]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["small", "paper"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-naive", action="store_true", help="skip the naive baseline")
    parser.add_argument("--onednn", nargs="+", choices=["inherit", "0", "1"], default=["inherit"],
                        help="TF_ENABLE_ONEDNN_OPTS for the workers; several values run each "
                             "preset once per value, alternating (e.g. --onednn 0 1)")
    parser.add_argument("--train-memory", action="store_true",
                        help="only the training step: stored or recomputed blocks, Keras LSTM")
    parser.add_argument("--precision", action="store_true",
                        help="only the SDR of float16 / bfloat16 compute against float32")
    parser.add_argument("--rounds", type=int, default=2,
                        help="--train-memory: rounds of the three workers")
    parser.add_argument("--out", help="JSON results (default results/model.json, "
                                      "train_memory.json or precision.json)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--recompute", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        from bsrnn_tf.console import prefer_onednn
        prefer_onednn()  # our commands' oneDNN default, before TensorFlow loads
        if args.precision:
            print(json.dumps(run_precision(args.worker)))
        elif args.recompute is not None:
            print(json.dumps(run_train_memory(args.worker, bool(args.recompute), args.repeats)))
        else:
            print(json.dumps(run_preset(args.worker, args.repeats, not args.no_naive)))
        return 0
    drive = (train_memory_main if args.train_memory else
             precision_main if args.precision else forward_main)
    try:
        return drive(args)
    except WorkerError as e:
        print(e, file=sys.stderr)
        return 1


def forward_main(args) -> int:
    results = []
    for name in args.presets:
        for onednn in args.onednn:
            command = _worker_command(name, "--repeats", str(args.repeats),
                                      *(["--no-naive"] if args.no_naive else []))
            env = dict(os.environ)
            if onednn != "inherit":
                env["TF_ENABLE_ONEDNN_OPTS"] = onednn
            results.append(run_json_worker(command, f"{name} worker (oneDNN {onednn})", env))
            print(f"{name} (oneDNN {onednn}): done", file=sys.stderr)
    print(table(results))
    for r in results:
        if r.get("speedup_vs_naive"):
            ratios = ", ".join(f"{k} {v:.2f}x" for k, v in r["speedup_vs_naive"].items())
            print(f"{r['preset']}: speed-up against the naive per-band baseline: {ratios}")
    for r in results:
        total = 1000 * r["forward_b1_s"]
        print(f"\n{r['preset']} (oneDNN {r.get('onednn')}, LSTM {r.get('lstm_implementation')}): "
              f"profile of one forward pass (batch 1, {total:.0f} ms measured end to end)")
        for stage, ms in r["profile_b1_ms"].items():
            print(f"  {stage:<32} {ms:8.1f} ms  {100 * ms / total:5.1f} %")
    _write_json(args.out or os.path.join(HERE, "results", "model.json"), results)
    return 0


def train_memory_main(args) -> int:
    rounds = []
    for name in args.presets:
        for i in range(args.rounds):
            entry = {"preset": name, "round": i + 1}
            variants = [("stored", 0, "auto"), ("recomputed", 1, "auto"),
                        ("keras_lstm", 0, "keras")]
            for key, recompute, lstm in (variants if i % 2 == 0 else variants[::-1]):
                command = _worker_command(name, "--recompute", str(recompute),
                                          "--repeats", str(args.repeats))
                entry[key] = run_json_worker(command, f"{name} {key} worker",
                                             {**os.environ, "BSRNN_TF_LSTM": lstm})
            rounds.append(entry)
            print(f"{name} round {i + 1}: done", file=sys.stderr)
    print(train_memory_table(rounds))
    _write_json(args.out or os.path.join(HERE, "results", "train_memory.json"), rounds)
    return 0


def precision_main(args) -> int:
    results = []
    for name in args.presets:
        results.append(run_json_worker(_worker_command(name, "--precision"),
                                       f"{name} precision worker"))
    rows = [("preset", "float16 SDR vs float32", "bfloat16 SDR vs float32")]
    rows += [(r["preset"], f"{r['mixed_float16_sdr_vs_float32_db']:.1f} dB",
              f"{r['mixed_bfloat16_sdr_vs_float32_db']:.1f} dB") for r in results]
    print(markdown_table(rows))
    _write_json(args.out or os.path.join(HERE, "results", "precision.json"), results)
    return 0


def _write_json(path: str, results) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=os.path.dirname(os.path.abspath(path)),
                                     delete=False) as f:
        json.dump({"machine": _machine(), "command": " ".join(sys.argv), "results": results},
                  f, indent=2)
    os.replace(f.name, path)
    print(f"wrote {path}")


def _machine() -> dict:
    import platform
    return {"cpu_count": os.cpu_count(), "platform": platform.platform(),
            "bf16": bf16_supported()}


if __name__ == "__main__":
    from bsrnn_tf.console import quiet_tensorflow

    quiet_tensorflow("3")  # TensorFlow's start-up notices filtered from stderr
    sys.exit(main())
