"""bsrnn_tf against a PyTorch BSRNN of the same architecture, on this machine.

Issue 9's PyTorch figures come from another machine. This script builds, in
PyTorch, the function a bsrnn_tf ``Separator`` computes (centred STFT,
per-example standardisation, per-band layer norm + linear projection, L
blocks of time-axis and band-axis BLSTMs with 2N units and FC + residual,
per-band MLP + GLU mask head, complex mask, iSTFT), written the way the
public PyTorch BSRNN implementations write it: ``nn.LSTM`` (PyTorch's
oneDNN / MKL kernels on CPUs) for the BLSTMs and one ``nn.Linear`` per band in
Python loops for the split and the head. It copies a bsrnn_tf model's
weights into it, checks that both give the same separation, then times both
in alternating worker processes (a TensorFlow one and a PyTorch one per
round, so each framework has its own process, threads and peak memory):
forward of a 3 s stereo chunk at batch 1 and 4, and a training step (BSRNN
loss, Adam) at batch 2.

    pip install torch==2.13.0        # not a dependency of bsrnn_tf
    python benchmarks/torch_reference.py
    python benchmarks/torch_reference.py --presets paper small@L8 small --rounds 2

Ratios are TensorFlow's speed over PyTorch's (above 1: bsrnn_tf is faster),
one per round; the table gives the median over rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
HERE = os.path.dirname(os.path.abspath(__file__))

SECONDS = 3.0


# ------------------------------------------------------- TensorFlow worker

def tf_worker(name: str, repeats: int, exchange: str, write: bool) -> dict:
    """Times bsrnn_tf; with ``write``, also stores the inputs, the weights
    in PyTorch's layout and the reference output in ``exchange``."""
    from bsrnn_tf.console import prefer_onednn
    prefer_onednn()  # our commands' CPU default, before TensorFlow loads
    import keras
    import numpy as np
    import tensorflow as tf

    import model as bench
    from bsrnn_tf.layers import get_lstm_implementation
    from bsrnn_tf.models import count_parameters

    keras.utils.set_random_seed(0)
    _, samples, model = bench.vocals_model(name)
    if not write:  # the same weights in every round
        with np.load(exchange) as data:
            model.set_weights([data[f"tf_weight_{i}"] for i in range(len(model.weights))])
            x1, x4 = data["x1"], data["x4"]
    else:
        x1, x4 = bench._song_chunk(1, samples), bench._song_chunk(4, samples)
    forward = tf.function(lambda x: model(x), reduce_retracing=True)
    reference = forward(x1)["vocals"].numpy()
    if write:
        arrays = {f"tf_weight_{i}": w.numpy() for i, w in enumerate(model.weights)}
        arrays.update({f"torch.{k}": v for k, v in torch_state(model).items()})
        np.savez(exchange, x1=x1, x4=x4, reference=reference, **arrays)
    flops = sum(bench.flop_breakdown(model, samples).values())
    result = {"framework": "tensorflow", "version": tf.__version__,
              "parameters": count_parameters(model), "gflop_per_chunk": flops / 1e9,
              "onednn": bench.onednn_enabled(), "lstm": get_lstm_implementation(),
              "matmul_peak_gflops": bench.matmul_peak()}
    result["forward_b1_s"] = bench.median_seconds(lambda: forward(x1), repeats)
    result["forward_b4_s"] = bench.median_seconds(lambda: forward(x4), max(2, repeats // 2))
    result["train_step_b2_s"] = bench.train_step_seconds(model, x1.repeat(2, axis=0),
                                                         max(2, repeats // 2))
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def torch_state(model) -> dict:
    """The weights of a bsrnn_tf ``Separator`` (one target) as the state
    dict of :class:`TorchBSRNN` (numpy arrays).

    Keras LSTM kernels are ``(inputs, 4H)`` with gates (i, f, c, o), the
    order PyTorch uses, so they only transpose; Keras has one bias per gate,
    PyTorch two (``bias_hh`` is set to zero)."""
    import numpy as np

    state = {}
    split = model.backbone.band_split
    per_bin = split.features_per_bin
    gamma, beta = split.norm_gamma.numpy(), split.norm_beta.numpy()
    kernel, bias = split.kernel.numpy(), split.bias.numpy()
    for k, (a, b) in enumerate(split.band_ranges):
        rows = slice(a * per_bin, b * per_bin)
        state[f"split_norms.{k}.weight"] = gamma[rows]
        state[f"split_norms.{k}.bias"] = beta[rows]
        state[f"split_fcs.{k}.weight"] = kernel[rows].T
        state[f"split_fcs.{k}.bias"] = bias[k]
    for i, block in enumerate(model.backbone.blocks):
        for axis in ("time", "band"):
            norm, rnn, fc = (getattr(block, f"{axis}_{part}") for part in ("norm", "rnn", "fc"))
            prefix = f"blocks.{i}.{axis}_"
            state[prefix + "norm.weight"] = norm.gamma.numpy()
            state[prefix + "norm.bias"] = norm.beta.numpy()
            for suffix, layer in (("", rnn.forward_layer), ("_reverse", rnn.backward_layer)):
                cell = layer.cell
                state[f"{prefix}rnn.weight_ih_l0{suffix}"] = cell.kernel.numpy().T
                state[f"{prefix}rnn.weight_hh_l0{suffix}"] = cell.recurrent_kernel.numpy().T
                state[f"{prefix}rnn.bias_ih_l0{suffix}"] = cell.bias.numpy()
                state[f"{prefix}rnn.bias_hh_l0{suffix}"] = np.zeros_like(cell.bias.numpy())
            state[prefix + "fc.weight"] = fc.kernel.numpy().T
            state[prefix + "fc.bias"] = fc.bias.numpy()
    head = model.heads["vocals"]
    out_per_bin = 2 * head.features_per_bin
    for k, (a, b) in enumerate(head.band_ranges):
        rows = slice(a * out_per_bin, b * out_per_bin)
        state[f"head_norms.{k}.weight"] = head.norm_gamma.numpy()[k]
        state[f"head_norms.{k}.bias"] = head.norm_beta.numpy()[k]
        state[f"head_hidden.{k}.weight"] = head.hidden_kernel.numpy()[k].T
        state[f"head_hidden.{k}.bias"] = head.hidden_bias.numpy()[k]
        state[f"head_out.{k}.weight"] = head.output_kernel.numpy()[rows]
        state[f"head_out.{k}.bias"] = head.output_bias.numpy()[rows]
    state["_dims"] = np.array([model.feature_dim, len(model.backbone.blocks), model.mlp_ratio,
                               model.audio_channels, model.n_fft, model.hop_length])
    state["_bands"] = np.array(split.band_ranges)
    return state


# ---------------------------------------------------------- PyTorch model

def torch_model(dims, bands):
    """A :class:`TorchBSRNN` (class defined here so that importing this file
    does not need PyTorch)."""
    import torch
    from torch import nn

    feature_dim, num_layers, mlp_ratio, channels, n_fft, hop = (int(v) for v in dims)
    bands = [(int(a), int(b)) for a, b in bands]
    eps = 1e-5
    per_bin = 2 * channels

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            n = feature_dim
            for axis in ("time", "band"):
                setattr(self, f"{axis}_norm", nn.LayerNorm(n, eps=eps))
                setattr(self, f"{axis}_rnn", nn.LSTM(n, 2 * n, batch_first=True,
                                                     bidirectional=True))
                setattr(self, f"{axis}_fc", nn.Linear(4 * n, n))

        def forward(self, x):  # (batch, frames, bands, n)
            b, t, k, n = x.shape
            y = self.time_norm(x).permute(0, 2, 1, 3).reshape(b * k, t, n)
            y = self.time_fc(self.time_rnn(y)[0])
            x = x + y.reshape(b, k, t, n).permute(0, 2, 1, 3)
            y = self.band_norm(x).reshape(b * t, k, n)
            y = self.band_fc(self.band_rnn(y)[0])
            return x + y.reshape(b, t, k, n)

    class TorchBSRNN(nn.Module):
        def __init__(self):
            super().__init__()
            n, hidden = feature_dim, mlp_ratio * feature_dim
            widths = [b - a for a, b in bands]
            self.split_norms = nn.ModuleList(nn.LayerNorm(w * per_bin, eps=eps) for w in widths)
            self.split_fcs = nn.ModuleList(nn.Linear(w * per_bin, n) for w in widths)
            self.blocks = nn.ModuleList(Block() for _ in range(num_layers))
            self.head_norms = nn.ModuleList(nn.LayerNorm(n, eps=eps) for _ in widths)
            self.head_hidden = nn.ModuleList(nn.Linear(n, hidden) for _ in widths)
            self.head_out = nn.ModuleList(nn.Linear(hidden, w * 2 * per_bin) for w in widths)
            self.register_buffer("window", torch.hann_window(n_fft, periodic=True))

        def spectrum(self, wave):  # (batch, samples, C) -> (batch, frames, bins, C, 2)
            b, s, c = wave.shape
            spec = torch.stft(wave.transpose(1, 2).reshape(b * c, s), n_fft, hop,
                              window=self.window, center=True, pad_mode="constant",
                              return_complex=True)  # (b*c, bins, frames)
            spec = torch.view_as_real(spec).reshape(b, c, spec.shape[1], spec.shape[2], 2)
            return spec.permute(0, 3, 2, 1, 4)

        def waveform(self, spec, length):  # (batch, frames, bins, C, 2) -> (batch, samples, C)
            b, t, f, c, _ = spec.shape
            z = torch.view_as_complex(spec.permute(0, 3, 2, 1, 4).contiguous())
            wave = torch.istft(z.reshape(b * c, f, t), n_fft, hop, window=self.window,
                               center=True, length=length)
            return wave.reshape(b, c, length).transpose(1, 2)

        def masked(self, spec):  # -> the estimated packed spectrum
            b, t, f, c, _ = spec.shape
            x = spec.reshape(b, t, f, c * 2)
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            var = x.var(dim=(1, 2, 3), unbiased=False, keepdim=True)
            x = (x - mean) * torch.rsqrt(var + eps)
            z = torch.stack([fc(norm(x[:, :, a:e].reshape(b, t, -1)))
                             for (a, e), norm, fc in zip(bands, self.split_norms,
                                                         self.split_fcs)], dim=2)
            for block in self.blocks:
                z = block(z)
            masks = []
            for k, (a, e) in enumerate(bands):
                h = torch.tanh(self.head_hidden[k](self.head_norms[k](z[:, :, k])))
                o = self.head_out[k](h).reshape(b, t, e - a, 2 * per_bin)
                masks.append(nn.functional.glu(o, dim=-1))
            mask = torch.view_as_complex(torch.cat(masks, dim=2).reshape(b, t, f, c, 2))
            return torch.view_as_real(mask * torch.view_as_complex(spec.contiguous()))

        def forward(self, wave):
            return self.waveform(self.masked(self.spectrum(wave)), wave.shape[1])

    return TorchBSRNN()


def torch_worker(name: str, repeats: int, exchange: str) -> dict:
    import numpy as np
    import torch

    torch.manual_seed(0)
    with np.load(exchange) as data:
        state = {k[len("torch."):]: data[k] for k in data.files if k.startswith("torch.")}
        x1, x4, reference = data["x1"], data["x4"], data["reference"]
    net = torch_model(state.pop("_dims"), state.pop("_bands"))
    loaded = net.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v))
                                  for k, v in state.items()}, strict=False)
    missing = set(loaded.missing_keys) - {"window"}  # the STFT window is the model's own
    if missing or loaded.unexpected_keys:
        raise RuntimeError(f"weights not copied: missing {sorted(missing)[:5]}, unexpected "
                           f"{sorted(loaded.unexpected_keys)[:5]}")
    net.eval()
    t1, t4 = torch.from_numpy(x1), torch.from_numpy(x4)
    with torch.inference_mode():
        out = net(t1).numpy()
    result = {"framework": "pytorch", "version": torch.__version__,
              "threads": torch.get_num_threads(),
              "parameters": sum(p.numel() for p in net.parameters()),
              "max_rel_error_vs_tf": float(np.abs(out - reference).max()
                                           / np.abs(reference).max()),
              "matmul_peak_gflops": torch_matmul_peak()}

    def forward(x):
        with torch.inference_mode():
            return net(x)

    result["forward_b1_s"] = median_seconds(lambda: forward(t1), repeats)
    result["forward_b4_s"] = median_seconds(lambda: forward(t4), max(2, repeats // 2))
    result["train_step_b2_s"] = torch_train_step_seconds(net, t1.repeat(2, 1, 1),
                                                         max(2, repeats // 2))
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def torch_train_step_seconds(net, mixture, repeats: int) -> float:
    """One step of what ``model.train_step_seconds`` times for bsrnn_tf:
    forward, BSRNN loss (2 x spectrum L1 + waveform L1), backward, Adam."""
    import torch

    net.train()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-4)
    reference = mixture * 0.5
    length = mixture.shape[1]

    def step():
        optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            ref_spec = net.spectrum(reference)
        est = net.masked(net.spectrum(mixture))
        wave = net.waveform(est, length)
        loss = 2 * (est - ref_spec).abs().mean() + (wave - reference).abs().mean()
        loss.backward()
        optimizer.step()
        return loss

    return median_seconds(step, repeats)


def median_seconds(fn, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def torch_matmul_peak() -> float:
    import torch
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    return 2 * 2048 ** 3 / median_seconds(lambda: a @ b, 10, warmup=3) / 1e9


# ----------------------------------------------------------------- driver

def run_worker(args, framework: str, name: str, exchange: str, write: bool) -> dict:
    command = [sys.executable, os.path.abspath(__file__), "--worker", framework, name,
               "--repeats", str(args.repeats), "--exchange", exchange]
    if write:
        command.append("--write")
    from model import run_json_worker
    return run_json_worker(command, f"{framework} worker for {name}")


def summarize(name: str, rounds: list) -> dict:
    """Medians over rounds and TF-over-PyTorch speed ratios per round."""
    import statistics

    keys = ("forward_b1_s", "forward_b4_s", "train_step_b2_s")
    row = {"preset": name, "rounds": rounds}
    for framework in ("tensorflow", "pytorch"):
        for key in keys + ("matmul_peak_gflops", "peak_rss_mb"):
            row[f"{framework}.{key}"] = statistics.median(r[framework][key] for r in rounds)
    for key in keys:
        row[f"speedup.{key}"] = [r["pytorch"][key] / r["tensorflow"][key] for r in rounds]
    first = rounds[0]
    row["parameters"] = {f: first[f]["parameters"] for f in ("tensorflow", "pytorch")}
    row["max_rel_error_vs_tf"] = max(r["pytorch"]["max_rel_error_vs_tf"] for r in rounds)
    row["gflop_per_chunk"] = first["tensorflow"]["gflop_per_chunk"]
    return row


def table(rows: list) -> str:
    from model import markdown_table

    head = ("preset", "params TF / PyTorch", "parity", "b1 TF", "b1 PyTorch", "b1 ratio",
            "b4 TF", "b4 PyTorch", "b4 ratio", "train b2 TF", "train b2 PyTorch",
            "train ratio", "RTF b1 TF / PyTorch", "peak GFLOP/s TF / PyTorch", "RSS MB TF / PyTorch")
    lines = [head]
    for r in rows:
        def pair(key, fmt="{:.2f} s"):
            return fmt.format(r[f"tensorflow.{key}"]), fmt.format(r[f"pytorch.{key}"])

        def ratio(key):
            return " / ".join(f"{v:.2f}x" for v in r[f"speedup.{key}"])

        rtf = (f"{SECONDS / r['tensorflow.forward_b1_s']:.2f} / "
               f"{SECONDS / r['pytorch.forward_b1_s']:.2f}")
        lines.append((r["preset"], f"{r['parameters']['tensorflow'] / 1e6:.2f}M / "
                      f"{r['parameters']['pytorch'] / 1e6:.2f}M",
                      f"{r['max_rel_error_vs_tf']:.1e}", *pair("forward_b1_s"),
                      ratio("forward_b1_s"), *pair("forward_b4_s"), ratio("forward_b4_s"),
                      *pair("train_step_b2_s"), ratio("train_step_b2_s"), rtf,
                      " / ".join(pair("matmul_peak_gflops", "{:.0f}")),
                      " / ".join(pair("peak_rss_mb", "{:.0f}"))))
    return markdown_table(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["paper", "small@L8", "small"])
    parser.add_argument("--rounds", type=int, default=2,
                        help="alternating TensorFlow / PyTorch worker pairs per preset")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=os.path.join(HERE, "results", "torch_reference.json"))
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--exchange", help=argparse.SUPPRESS)
    parser.add_argument("--write", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        framework, name = args.worker
        result = (tf_worker(name, args.repeats, args.exchange, args.write)
                  if framework == "tensorflow" else torch_worker(name, args.repeats,
                                                                 args.exchange))
        print(json.dumps(result))
        return 0
    try:
        import torch  # noqa: F401
    except ImportError:
        print("PyTorch is not installed (pip install torch); this benchmark compares against it.",
              file=sys.stderr)
        return 2
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.presets:
            exchange = os.path.join(tmp, f"{name.replace('@', '_')}.npz")
            rounds = []
            for i in range(args.rounds):
                tf_result = run_worker(args, "tensorflow", name, exchange, write=i == 0)
                torch_result = run_worker(args, "pytorch", name, exchange, write=False)
                rounds.append({"tensorflow": tf_result, "pytorch": torch_result})
                print(f"{name} round {i + 1}: b1 TF {tf_result['forward_b1_s']:.2f} s, "
                      f"PyTorch {torch_result['forward_b1_s']:.2f} s; parity "
                      f"{torch_result['max_rel_error_vs_tf']:.1e}", file=sys.stderr)
            rows.append(summarize(name, rounds))
    print(table(rows))
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=os.path.dirname(args.out), delete=False) as f:
        json.dump({"machine": {"cpu_count": os.cpu_count()}, "command": " ".join(sys.argv),
                   "results": rows}, f, indent=2)
    os.replace(f.name, args.out)
    print(f"wrote {args.out}")
    worst = max(r["max_rel_error_vs_tf"] for r in rows)
    if worst > 1e-4:
        print(f"PARITY FAILED: the PyTorch model differs from bsrnn_tf by {worst:.1e} "
              "(relative); the timings compare different functions", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    from bsrnn_tf.console import quiet_tensorflow

    quiet_tensorflow("3")  # TensorFlow's start-up notices filtered from stderr
    sys.exit(main())
