"""The causal model and its stream (bsrnn_tf.inference.streaming, bsrnn_tf.deploy.stream).

Every parity figure is measured here: a generated song streamed hop by hop
(through the TF step and through the exported TFLite files) against the
offline causal model on the whole song, first and last hops included, for
both causal norms ("frame", and "cumulative" whose state carries the
running statistics).
"""

import json
import os

import keras
import numpy as np
import pytest

from bsrnn_tf.config import ConfigError, ExperimentConfig, model_config_from_dict
from bsrnn_tf.deploy.parity import music_chunks, sdr_db
from bsrnn_tf.inference.streaming import (KerasStream, StreamError, TFLiteStream,
                                          algorithmic_latency, state_layout, stream_song)
from bsrnn_tf.layers.stft import causal_padding, num_frames, steady_envelope
from bsrnn_tf.models import build_separator, count_parameters, load_separator, preset
from bsrnn_tf.models.io import save_separator

LEGACY = os.path.join(os.path.dirname(__file__), "data", "legacy_tiny")
CAUSAL_NORMS = ["frame", "cumulative"]


def _causal_tiny(targets=("drums", "bass"), seed=0, norm="frame"):
    keras.utils.set_random_seed(seed)
    config = preset("tiny")
    config.causal, config.norm, config.standardize = True, norm, False
    model = build_separator(config, targets=list(targets))
    rng = np.random.default_rng(seed)  # non-trivial norms and biases
    for w in model.weights:
        if any(k in w.path for k in ("gamma", "beta", "bias")):
            w.assign(w.numpy() + 0.3 * rng.standard_normal(w.shape).astype(np.float32))
    return model


def _song(model, seconds):
    samples = int(seconds * model.sample_rate)
    return music_chunks(model.sample_rate, samples, model.audio_channels, 1)[1][0]


def _relative_errors(reference, streamed, hop):
    """Max |error| / max |reference| over the whole song, its first and its
    last hop (all targets)."""
    out = {}
    for name, part in (("song", slice(None)), ("first_hop", slice(0, hop)),
                       ("last_hop", slice(-hop, None))):
        err = max(np.abs(streamed[i][part] - reference[t][part]).max()
                  for i, t in enumerate(reference))
        peak = max(np.abs(reference[t][part]).max() for t in reference)
        out[name] = err / peak
    return out


# -------------------------------------------------------------- configuration

def test_cpu_stream_preset_is_causal_and_the_size_of_cpu():
    config = preset("cpu-stream")
    assert config.causal and config.norm == "cumulative" and not config.standardize
    targets = ["drums", "bass", "other", "vocals"]
    stream, offline = (build_separator(preset(p), targets=targets) for p in ("cpu-stream", "cpu"))
    assert abs(count_parameters(stream) / count_parameters(offline) - 1) < 0.02
    block = stream.backbone.blocks[0]
    assert block.time_units == 3 * config.feature_dim and not hasattr(block.time_rnn, "forward_layer")
    assert hasattr(block.band_rnn, "forward_layer")  # the band axis stays bidirectional


def test_causal_needs_a_causal_norm_and_no_chunk_standardisation():
    for changes in ({"norm": "chunk"}, {"standardize": True},
                    {"norm": "cumulative", "standardize": True}):
        config = preset("cpu-stream")
        for k, v in changes.items():
            setattr(config, k, v)
        with pytest.raises(ConfigError, match="model.causal needs norm 'frame' or "
                                              "'cumulative' and standardize false") as e:
            config.validate()
        assert f"got norm {config.norm!r}, standardize {config.standardize}" in str(e.value)
    for norm in ("frame", "cumulative"):  # accepted, causal or not
        for causal in (True, False):
            config = preset("cpu-stream")
            config.norm, config.causal = norm, causal
            config.validate()
    config = preset("cpu")
    config.norm = "cumulative"
    config.validate()
    # The layer refuses it too (a config written by hand past validation).
    from bsrnn_tf.layers import BandSequence
    with pytest.raises(ValueError, match="causal block needs norm 'frame' or 'cumulative'"):
        BandSequence(8, norm="chunk", causal=True)


def test_configs_and_models_saved_without_causal_load_bidirectional_with_same_outputs():
    with open(os.path.join(LEGACY, "config.json")) as f:
        saved = json.load(f)
    assert "causal" not in saved["model"]
    assert model_config_from_dict(saved["model"]).causal is False
    assert ExperimentConfig.from_json(os.path.join(LEGACY, "config.json"), saved=True).model.causal is False
    model = load_separator(LEGACY)
    assert not model.causal and model.framing == "centre"
    assert all(hasattr(b.time_rnn, "forward_layer") for b in model.backbone.blocks)
    data = np.load(os.path.join(LEGACY, "outputs.npz"))
    out = model(data["input"])
    for target in model.targets:
        np.testing.assert_allclose(out[target].numpy(), data[target], rtol=0, atol=1e-6)


@pytest.mark.parametrize("norm", CAUSAL_NORMS)
def test_causal_model_round_trips_through_keras_file(tmp_path, norm):
    model = _causal_tiny(norm=norm)
    wave = _song(model, 0.2)[None]
    save_separator(model, str(tmp_path / "run"))
    loaded = load_separator(str(tmp_path / "run"))
    assert loaded.causal and loaded.config_object().causal
    assert loaded.norm == loaded.config_object().norm == norm
    for t in model.targets:
        np.testing.assert_allclose(loaded(wave)[t].numpy(), model(wave)[t].numpy(), atol=1e-6)


# ----------------------------------------------------- framing and latency

def test_causal_framing_arithmetic_by_hand():
    # n_fft 2048, hop 512: 1536 zeros before; 44100 samples need frames up to
    # floor((44099 + 1536) / 512) = 89, so 90 frames ending at 90 * 512 - 1536.
    left, right = causal_padding(44100, 2048, 512)
    assert left == 1536 and left + 44100 + right == 89 * 512 + 2048
    assert num_frames(44100, 2048, 512, "causal") == 90
    assert num_frames(44100, 2048, 512) == 1 + 44100 // 512  # centred, unchanged
    # Hann^2 overlap-added at hop n_fft / 4 is 1.5 everywhere.
    np.testing.assert_allclose(steady_envelope(2048, 512), 1.5, atol=1e-12)
    # Latency: one window; within the limits.
    assert algorithmic_latency(2048, 512, 44100)["samples"] == 2048
    for n_fft, ms, limit in ((2048, 46.44, 60), (1024, 23.22, 30)):
        latency = algorithmic_latency(n_fft, n_fft // 4, 44100)["ms"]
        assert latency == pytest.approx(ms, abs=0.01) and latency <= limit


@pytest.mark.parametrize("norm", CAUSAL_NORMS)
def test_offline_causal_output_never_depends_on_input_more_than_a_window_ahead(norm):
    """Input changed from sample p on: output samples before p - n_fft + 1
    are untouched (the latency is at most n_fft), the next ones move."""
    model = _causal_tiny(norm=norm)
    n_fft, p = model.n_fft, 3000
    x = _song(model, 0.1)[None]
    y = x.copy()
    y[:, p:] += 0.3
    a, b = model(x), model(y)
    first = p - n_fft + 1
    for t in model.targets:
        diff = np.abs(a[t].numpy()[0] - b[t].numpy()[0]).max(axis=1)
        assert diff[:first].max() == 0.0
        assert diff[first:first + model.hop_length].max() > 0.0


# -------------------------------------------------------------- stream parity

@pytest.mark.parametrize("norm", CAUSAL_NORMS)
@pytest.mark.parametrize("seconds", [0.5, 0.5 + 77 / 44100])  # whole hops, and not
def test_tf_stream_equals_the_offline_model_on_a_whole_song(seconds, norm):
    model = _causal_tiny(norm=norm)
    song = _song(model, seconds)
    offline = {t: v.numpy()[0] for t, v in model(song[None]).items()}
    stream = KerasStream(model)
    streamed = stream_song(stream, song, model.hop_length, model.n_fft, stream.initial_state())
    assert streamed.shape == (len(model.targets),) + song.shape
    errors = _relative_errors(offline, streamed, model.hop_length)
    assert max(errors.values()) < 1e-4, errors


def test_state_layout_names_shapes_and_order():
    """A frame-norm model's layout is the one exported graphs were made
    with; a cumulative-norm model's adds the running statistics, one row per
    norm that pools over frames (band split, L blocks, T heads)."""
    layouts = {norm: state_layout(_causal_tiny(targets=("a", "b", "c"), norm=norm))
               for norm in CAUSAL_NORMS}
    n, k = preset("tiny").feature_dim, 41  # v7 at n_fft 512
    frame = [("stft_buffer", (1, 512 - 128, 2)), ("istft_tail", (1, 3, 512 - 128, 2)),
             ("lstm_h", (1, k, 3 * n)), ("lstm_c", (1, k, 3 * n))]
    assert layouts["frame"] == frame
    rows = 1 + 1 + 3
    assert layouts["cumulative"] == frame + [("norm_sum", (1, rows, k)),
                                             ("norm_sumsq", (1, rows, k)),
                                             ("norm_frames", (1,))]


def test_cumulative_stream_state_holds_the_running_statistics():
    """After a song, norm_frames counts its frames and row 0 of norm_sum /
    norm_sumsq holds the per-band sums of the band split's input."""
    model = _causal_tiny(norm="cumulative")
    stream = KerasStream(model)
    song = _song(model, 0.1)
    state = stream.initial_state()
    hops = range(0, len(song), model.hop_length)
    for i in hops:
        hop = song[i:i + model.hop_length]
        hop = np.pad(hop, [(0, model.hop_length - len(hop)), (0, 0)])
        _, state = stream(hop[None].astype(np.float32), state)
    assert state["norm_frames"].tolist() == [len(hops)]
    padded = np.concatenate([song, np.zeros((len(hops) * model.hop_length - len(song), 2),
                                            np.float32)])
    spectrum = model.stft(padded[None]).numpy()[0, :len(hops)]  # the frames streamed so far
    ranges = model.backbone.band_ranges
    sums = [spectrum[:, a:b].astype(np.float64).sum() for a, b in ranges]
    squares = [(spectrum[:, a:b].astype(np.float64) ** 2).sum() for a, b in ranges]
    np.testing.assert_allclose(state["norm_sum"][0, 0], sums, rtol=1e-3,
                               atol=1e-4 * np.abs(sums).max())
    np.testing.assert_allclose(state["norm_sumsq"][0, 0], squares, rtol=1e-3)


def test_a_bidirectional_model_is_refused_in_one_line():
    model = build_separator(preset("tiny"), targets=["drums"])
    with pytest.raises(StreamError, match="not a causal"):
        KerasStream(model)


# ----------------------------------------------------------- TFLite export

@pytest.fixture(scope="module", params=CAUSAL_NORMS)
def exported(tmp_path_factory, request):
    from bsrnn_tf.deploy.stream import export_stream

    model = _causal_tiny(norm=request.param)
    out = tmp_path_factory.mktemp(f"stream-{request.param}")
    paths = export_stream(model, str(out), "tiny", parity=False)
    song = _song(model, 1.0)
    offline = {t: v.numpy()[0] for t, v in model(song[None]).items()}
    return model, paths, song, offline


# Relative error bounds of the quantized graphs, measured on this untrained
# model: float16 4.3e-3 (SDR 59 dB), dynamic-range int8 1.8e-2 (36 dB).
BOUNDS = {"float32": (1e-4, 90.0), "float16": (2e-2, 45.0), "dynamic-int8": (8e-2, 25.0)}


@pytest.mark.parametrize("label", list(BOUNDS))
def test_tflite_stream_equals_the_offline_model(exported, label):
    from bsrnn_tf.deploy.tflite import tflite_op_names

    model, paths, song, offline = exported
    path = next(p for p in paths if p.endswith(f"-stream-{label}.tflite"))
    with open(path, "rb") as f:
        assert not [op for op in tflite_op_names(f.read()) if op.startswith("CUSTOM")]
    stream = TFLiteStream(path)
    assert stream.targets == model.targets and stream.layout == state_layout(model)
    # The metadata and the signature list every state tensor, in and out.
    names = [name for name, _ in state_layout(model)]
    assert [n for n, _ in stream.metadata["inputs"]] == ["audio"] + names
    assert [n for n, _ in stream.metadata["outputs"]] == ["stems"] + names
    signature = stream._interpreter.get_signature_list()["stream"]
    assert sorted(signature["inputs"]) == sorted(["audio"] + names)
    assert sorted(signature["outputs"]) == sorted(["stems"] + names)
    assert ("norm_sum" in names) == (model.norm == "cumulative")
    streamed = stream_song(stream, song, stream.hop_length, stream.n_fft, stream.initial_state())
    errors = _relative_errors(offline, streamed, model.hop_length)
    max_rel, min_sdr = BOUNDS[label]
    assert max(errors.values()) < max_rel, errors
    assert min(sdr_db(offline[t], streamed[i]) for i, t in enumerate(model.targets)) > min_sdr


def test_stream_savedmodel_runs_without_bsrnn_tf_objects(exported):
    import tensorflow as tf

    model, paths, song, offline = exported
    loaded = tf.saved_model.load(paths[0])
    fn = loaded.signatures["stream"]
    state = KerasStream(model).initial_state()

    def step(hop, state):
        out = fn(audio=tf.constant(hop), **{k: tf.constant(v) for k, v in state.items()})
        return out["stems"].numpy(), {k: out[k].numpy() for k in state}

    part = song[:4000]
    streamed = stream_song(step, part, model.hop_length, model.n_fft, state)
    reference = {t: v.numpy()[0] for t, v in model(part[None]).items()}
    assert max(_relative_errors(reference, streamed, model.hop_length).values()) < 1e-4


def test_the_waveform_backend_refuses_a_stream_file(exported):
    from bsrnn_tf.inference.backends import BackendError, load_backend

    with pytest.raises(BackendError, match="bsrnn-tf stream"):
        load_backend(exported[1][1])


# ------------------------------------------------------------------ the command

class _Pipe:
    def __init__(self, data=b""):
        import io
        self.buffer = io.BytesIO(data)


def test_stream_command_on_a_file_and_on_stdin_gives_the_offline_stems(exported, tmp_path,
                                                                          monkeypatch, capsys):
    import soundfile as sf

    from bsrnn_tf.cli import main

    model, paths, song, offline = exported
    part = song[:6000]
    reference = {t: v.numpy()[0] for t, v in model(part[None]).items()}
    sf.write(str(tmp_path / "song.wav"), part, model.sample_rate, subtype="FLOAT")
    tflite = paths[1]
    assert main(["stream", str(tmp_path / "song.wav"), "-m", tflite, "-o", str(tmp_path / "out")]) == 0
    report = capsys.readouterr().err
    assert "algorithmic latency 512 samples = 11.6 ms" in report and "p99" in report
    for t in model.targets:
        got, rate = sf.read(str(tmp_path / "out" / "song" / f"{t}.wav"), dtype="float32")
        assert rate == model.sample_rate and got.shape == part.shape
        np.testing.assert_allclose(got, reference[t], atol=2e-4 * np.abs(reference[t]).max() + 2 / 32768)
    # Raw float32 PCM on stdin, one stem live on stdout (with the stream's delay).
    monkeypatch.setattr("sys.stdin", _Pipe(part.astype("<f4").tobytes()))
    stdout = _Pipe()
    monkeypatch.setattr("sys.stdout", stdout)
    assert main(["stream", "-", "-m", tflite, "-o", str(tmp_path / "out"), "--stdout", "bass"]) == 0
    got, _ = sf.read(str(tmp_path / "out" / "stdin" / "bass.wav"), dtype="float32")
    np.testing.assert_allclose(got, reference["bass"],
                               atol=2e-4 * np.abs(reference["bass"]).max() + 2 / 32768)
    live = np.frombuffer(stdout.buffer.getvalue(), "<f4").reshape(-1, 2)
    delay = model.n_fft - model.hop_length
    np.testing.assert_allclose(live[delay:delay + len(part)], reference["bass"],
                               atol=1e-4 * np.abs(reference["bass"]).max())


def test_stream_command_refuses_a_bidirectional_model_in_one_line(tmp_path, capsys):
    from bsrnn_tf.cli import main

    save_separator(build_separator(preset("tiny"), targets=["drums"]), str(tmp_path / "run"))
    assert main(["stream", "x.wav", "-m", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a causal (streaming) model" in err[0]


def test_exporting_a_stream_of_a_bidirectional_model_is_one_error(tmp_path):
    from bsrnn_tf.deploy import ExportError, export_model

    save_separator(build_separator(preset("tiny"), targets=["drums"]), str(tmp_path / "run"))
    with pytest.raises(ExportError, match="--format stream needs a causal model"):
        export_model(str(tmp_path / "run"), str(tmp_path / "out"), ["stream"])
    assert not (tmp_path / "out").exists()
